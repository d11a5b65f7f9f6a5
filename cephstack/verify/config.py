"""Config checks on the files `cephstack render` wrote (plain layout): what the services
will read must agree with the cluster and with each other."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from cephstack.errors import CephstackError
from cephstack.render.openstack import libvirt_secret
from cephstack.verify.runner import CheckFailed, Explanation, Runner, expect
from cephstack.verify.workflows import Context

SERVICE = "config"
_RENDER_FIX = ("cephstack apply -f {spec} (rewrites drifted rendered files), then cephstack "
               "host install {directory}/<role> on each host of that role")


def _ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text())
    except (OSError, configparser.Error) as e:
        raise CheckFailed(f"cannot read {path}: {e}") from None
    return parser


def checks(ctx: Context, runner: Runner) -> None:
    render = ctx.spec.render
    if render is None or render.format != "plain" or not Path(render.directory).is_dir():
        runner.skip(SERVICE, "rendered configuration agrees with the cluster",
                    "no rendered plain layout (render.directory in the spec, then "
                    "cephstack render)")
        return
    root = Path(render.directory)

    def explain(_: CephstackError) -> Explanation:
        return Explanation("", _RENDER_FIX.format(spec=ctx.spec.path, directory=root))

    def fsid() -> str:
        fsids = {}
        for service in ("glance", "cinder-volume", "nova"):
            ident = ctx.identities.get(service)
            if ident is not None and ident.conn is not None:
                fsids[service] = ident.conn.fsid()
        expect(len(set(fsids.values())) <= 1,
               f"the services reach different clusters: {fsids}")
        cluster = next(iter(fsids.values()), None)
        for conf in sorted(root.glob("*/etc/ceph/ceph.conf")):
            got = _ini(conf)["global"]["fsid"]
            expect(cluster is None or got == cluster,
                   f"{conf} names fsid {got}, but the services' cluster is {cluster}: "
                   "Glance locations (rbd://<fsid>/...) would not be cloneable")
        return f"Glance locations rbd://{cluster}/... match the cluster of Cinder and Nova"

    def chunk_sizes() -> str:
        found = []
        for path, section, key, service in (
                (root / "controller/fragments/glance-api.conf", "rbd", "rbd_store_chunk_size",
                 "glance"),
                (root / "controller/fragments/cinder.conf", None, "rbd_store_chunk_size",
                 "cinder-volume")):
            if not path.exists():
                continue
            parser = _ini(path)
            sections = [section] if section else [s for s in parser.sections()
                                                  if parser.has_option(s, "rbd_pool")]
            for s in sections:
                value = int(parser[s][key])
                expect(value in (1, 2, 4, 8, 16, 32),
                       f"{path} [{s}] {key} = {value}: not an RBD object size (1-32 MiB)")
                spec_value = ctx.spec.services[service].chunk_size_mib
                expect(spec_value is None or spec_value == value,
                       f"{path} [{s}] {key} = {value}, the spec says {spec_value}")
                found.append(f"{service} {value} MiB")
        return ", ".join(found) or "no chunk size rendered"

    def secrets() -> str:
        nova_conf = root / "compute/fragments/nova.conf"
        cinder_conf = root / "controller/fragments/cinder.conf"
        if not nova_conf.exists():
            raise CephstackError(f"no {nova_conf} rendered")
        fsid_now = ctx.conn("nova").fsid() if "nova" in ctx.identities else ""
        pairs = [(_ini(nova_conf)["libvirt"]["rbd_secret_uuid"], "nova")]
        if cinder_conf.exists() and "cinder-volume" in ctx.identities:
            parser = _ini(cinder_conf)
            pairs += [(parser[s]["rbd_secret_uuid"], "cinder-volume")
                      for s in parser.sections() if parser.has_option(s, "rbd_secret_uuid")]
        for uuid, kind in pairs:
            entity = ctx.identities[kind].entity
            xml = root / "compute" / "secrets" / f"{uuid}.xml"
            expect(xml.exists(), f"no libvirt secret {uuid} for {entity} on the compute hosts: "
                   "volume attach or guest disks fail to authenticate")
            usage = re.search(r"<name>(.*)</name>", xml.read_text())
            expect(usage is not None and usage.group(1).startswith(f"{entity} secret"),
                   f"libvirt secret {uuid} is not {entity}'s")
            expect(uuid == libvirt_secret(ctx.spec, fsid_now, kind),
                   f"{entity}'s secret UUID {uuid} is not the one for this cluster")
        return "; ".join(f"{ctx.identities[k].entity}: {u}" for u, k in pairs)

    runner.step(SERVICE, "Glance locations' fsid is the services' cluster", fsid,
                explain=explain)
    runner.step(SERVICE, "chunk sizes are RBD object sizes and match the spec", chunk_sizes,
                explain=explain)
    if "nova" in ctx.identities:
        runner.step(SERVICE, "Cinder's and Nova's secret UUIDs are the computes' libvirt "
                    "secrets", secrets, explain=explain,
                    needs=("nova: connect with its own keyring",))
