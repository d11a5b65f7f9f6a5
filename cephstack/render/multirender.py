"""`cephstack render` for a spec with `clusters:`: per-host-role bundles as for one cluster
(render/plain.py: same MANIFEST.json, so `cephstack host install` reads them), with every
cluster's files under its own name, as librados and os-brick look them up:

    <role>/etc/ceph/<cluster>.conf
    <role>/etc/ceph/<cluster>.client.<user>.keyring

Roles: controller (every Glance store and Cinder backend), backup (its cluster, and
Cinder's keyring on each volume cluster: the backup driver reads the source volumes),
compute-<zone> (one per cluster with a Nova pool: that cluster, plus the mirroring
secondary's conf and Cinder's secret there when the zone's volumes are mirrored), and
rbd-mirror-<cluster> on both sides of a mirroring pair (the daemon's own conf and keyring;
the peer's credentials come from the bootstrap token stored in the cluster).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial

from cephstack.keyfiles import Secret, keyring_text
from cephstack.render import libvirt, openstack
from cephstack.render import multiopenstack as mo
from cephstack.render.bundle import INDEX, index_text
from cephstack.render.cephconf import QEMU_DIRECTORIES, ceph_conf
from cephstack.render.ini import Section, ini_text, merged_sections, sections_to_data
from cephstack.render.model import CEPH_DIR, ClusterFacts, RenderedFile, key_file
from cephstack.render.plain import (
    FRAGMENT_HEADER,
    ROOT_FILE,
    SERVICE_FILE_KINDS,
    SERVICE_FILES,
    SERVICE_UNITS,
    readme,
)
from cephstack.spec.fleet import availability_zone, mirror_user, split
from cephstack.spec.load import FileAccess, Spec


@dataclass
class _Role:
    """What one host role's bundle holds, before it becomes files."""

    name: str
    services: list[str]
    confs: list[str] = field(default_factory=list)  # clusters
    # (cluster, entity) -> (file access, reader service kind, a pool it can list)
    keyrings: dict[tuple[str, str], tuple[FileAccess, str, str]] = field(default_factory=dict)
    fragments: dict[str, list[Section]] = field(default_factory=dict)  # target -> sections
    secrets: list[tuple[str, str]] = field(default_factory=list)  # (cluster, service kind)
    restart: list[str] = field(default_factory=list)
    qemu: bool = False
    notes: list[str] = field(default_factory=list)

    def conf(self, cluster: str) -> None:
        if cluster not in self.confs:
            self.confs.append(cluster)

    def keyring(self, spec: Spec, cluster: str, owner_kind: str, reader_kind: str,
                pool: str) -> None:
        self.conf(cluster)
        reader = spec.services[reader_kind]
        entity = f"client.{spec.services[owner_kind].user}"
        self.keyrings.setdefault((cluster, entity), (reader.keyring, reader_kind, pool))

    def fragment(self, kind: str, sections: list[Section]) -> None:
        target = SERVICE_FILES[kind]
        self.fragments[target] = merged_sections(self.fragments.get(target, []), sections)
        if kind not in self.services:
            self.services.append(kind)
        if SERVICE_UNITS[kind] not in self.restart:
            self.restart.append(SERVICE_UNITS[kind])


def _pools_by_cluster(spec: Spec, kind: str) -> list[tuple[str, str]]:
    return [(mo.pool_cluster(spec, p), p) for p in spec.services[kind].pools]


def roles(spec: Spec, fsids: dict[str, str]) -> list[_Role]:
    out = []
    controller = _Role("controller", [])
    if "glance" in spec.services:
        for cluster, pool in _pools_by_cluster(spec, "glance"):
            controller.keyring(spec, cluster, "glance", "glance", pool)
        controller.fragment("glance", mo.glance(spec))
    if "cinder-volume" in spec.services:
        for cluster, pool in _pools_by_cluster(spec, "cinder-volume"):
            controller.keyring(spec, cluster, "cinder-volume", "cinder-volume", pool)
        controller.fragment("cinder-volume", mo.cinder_volume(spec, fsids))
        if spec.mirroring:  # failover: the driver then connects to the secondary
            m = spec.mirroring
            controller.keyring(spec, m.secondary, "cinder-volume", "cinder-volume", m.pools[0])
    out.append(controller)
    if "cinder-backup" in spec.services:
        backup = _Role("backup", [])
        [(cluster, pool)] = _pools_by_cluster(spec, "cinder-backup")
        backup.keyring(spec, cluster, "cinder-backup", "cinder-backup", pool)
        if "cinder-volume" in spec.services:
            for vcluster, vpool in _pools_by_cluster(spec, "cinder-volume"):
                backup.keyring(spec, vcluster, "cinder-volume", "cinder-backup", vpool)
        backup.fragment("cinder-backup", mo.cinder_backup(spec))
        out.append(backup)
    for zone in mo.nova_zones(spec):
        compute = _Role(f"compute-{zone}", [], qemu=True)
        [pool] = [p for c, p in _pools_by_cluster(spec, "nova") if c == zone]
        compute.keyring(spec, zone, "nova", "nova", pool)
        compute.fragment("nova", mo.nova(spec, fsids, zone))
        compute.secrets.append((zone, "nova"))
        volumes = _pools_by_cluster(spec, "cinder-volume") if "cinder-volume" in spec.services \
            else []
        if any(c == zone for c, _ in volumes):
            compute.secrets.append((zone, "cinder-volume"))
        m = spec.mirroring
        if m and m.primary == zone and volumes:
            compute.conf(m.secondary)  # attach the failed-over volumes from the secondary
            compute.secrets.append((m.secondary, "cinder-volume"))
        compute.notes.append(f"Put these compute hosts in availability zone "
                             f"{availability_zone(spec, zone)!r} (a host aggregate).")
        compute.notes += openstack.notes(spec)
        out.append(compute)
    if spec.mirroring:
        m = spec.mirroring
        for cluster in (m.primary, m.secondary):
            user = mirror_user(spec, cluster)
            daemon = _Role(f"rbd-mirror-{cluster}", [], confs=[cluster], restart=[
                f"ceph-rbd-mirror@{user}"], notes=[
                f"Run the daemon as rbd-mirror --cluster {cluster} --id {user} (the "
                f"systemd unit: CLUSTER={cluster} in /etc/default/ceph); the peer's key "
                "comes from the bootstrap token cephstack apply imported."])
            # The daemon runs as Unix user ceph (Debian's unit: --setuser ceph).
            daemon.keyrings[(cluster, f"client.{user}")] = (FileAccess("root", "ceph", 0o640),
                                                            "", "")
            out.append(daemon)
    return [r for r in out if r.confs]


def _mode(access: FileAccess) -> dict[str, str]:
    return {"owner": access.owner, "group": access.group, "mode": f"{access.mode:04o}"}


def _files(spec: Spec, facts: dict[str, ClusterFacts], role: _Role) -> list[RenderedFile]:
    r, render = role.name, spec.render
    files = [RenderedFile(f"{r}{mo.conf_path(c)}", ceph_conf(facts[c], role.qemu),
                          access=ROOT_FILE) for c in role.confs]
    manifest: dict = {"format_version": "1", "role": r, "fsid": facts[role.confs[0]].fsid,
                      "clusters": {c: facts[c].fsid for c in role.confs},
                      "services": role.services, "files": [], "directories": [{
                          "host_path": CEPH_DIR, **_mode(FileAccess(
                              "root", "root", render.ceph_dir_mode if render else 0o755))}],
                      "fragments": [], "secrets": [], "checks": [], "writable_by": [],
                      "restart": role.restart, "volume_types": [], "notes": role.notes}
    for (cluster, entity), (access, reader, pool) in role.keyrings.items():
        path = mo.keyring_path(cluster, entity)
        files.append(key_file(facts[cluster], entity, f"{r}{path}",
                              partial(keyring_text, entity), access))
        if reader:
            s = spec.services[reader]
            manifest["checks"].append({"service": reader, "unix_user": s.unix_user,
                                       "entity": entity, "keyring": path, "pool": pool,
                                       "conf": mo.conf_path(cluster), "cluster": cluster})
    for f in files:
        manifest["files"].append({"path": f.path.removeprefix(f"{r}/"),
                                  "host_path": f.path.removeprefix(r), "secret": f.secret,
                                  **_mode(f.access or ROOT_FILE)})
    for target, sections in role.fragments.items():
        name = target.rsplit("/", 1)[1]
        kinds = [k for k in role.services if SERVICE_FILES[k] == target]
        files.append(RenderedFile(f"{r}/fragments/{name}", ini_text(
            sections, FRAGMENT_HEADER.format(what=f"{' and '.join(kinds)} settings",
                                             target=target, role=f" --role {role.name}"))))
        manifest["fragments"].append({"path": f"fragments/{name}", "merge_into": target,
                                      "service_file": SERVICE_FILE_KINDS[target],
                                      "services": kinds, "sections": sections_to_data(sections)})
    if "cinder-volume" in role.services:
        manifest["volume_types"] = [
            f"openstack volume type create {name} --property volume_backend_name={name}"
            f" --availability-zone {availability_zone(spec, mo.pool_cluster(spec, pool))}"
            for pool, _, name in openstack.backends(spec)]
    if role.qemu:
        files += _secrets(spec, facts, role, manifest)
        owner = FileAccess(render.qemu_owner if render else "libvirt-qemu",
                           render.qemu_group if render else "kvm", 0o750)
        for directory in QEMU_DIRECTORIES:
            manifest["directories"].append({"host_path": directory, **_mode(owner)})
            manifest["writable_by"].append({"unix_user": owner.owner, "directory": directory})
    files.append(RenderedFile(f"{r}/MANIFEST.json", json.dumps(manifest, indent=2) + "\n"))
    files.append(RenderedFile(f"{r}/README.txt", readme(manifest)))
    return files


def _secrets(spec: Spec, facts: dict[str, ClusterFacts], role: _Role,
             manifest: dict) -> list[RenderedFile]:
    """One libvirt secret per (cluster, user): the usage name carries the cluster's fsid."""
    files, seen = [], set()
    fsids = {c: f.fsid for c, f in facts.items()}
    for cluster, kind in role.secrets:
        entity = f"client.{spec.services[kind].user}"
        if (cluster, entity) in seen:
            continue
        seen.add((cluster, entity))
        uuid = mo.secret_of(spec, fsids, cluster, kind)
        fsid = facts[cluster].fsid
        files += [RenderedFile(f"{role.name}/secrets/{uuid}.xml",
                               libvirt.secret_xml(uuid, entity, fsid)),
                  key_file(facts[cluster], entity, f"{role.name}/secrets/{uuid}.key",
                           Secret.reveal)]
        manifest["secrets"].append({"uuid": uuid, "entity": entity, "service": kind,
                                    "cluster": cluster})
    files.append(RenderedFile(f"{role.name}/secrets/install.sh", libvirt.install_script(
        [s["uuid"] for s in manifest["secrets"]]), executable=True))
    return files


def render_clusters(spec: Spec, facts: dict[str, ClusterFacts],
                    fmt: str = "plain") -> list[RenderedFile]:
    """Every file of a several-cluster layout, the index last."""
    if fmt == "kolla":
        from cephstack.render.multikolla import kolla_clusters

        files = kolla_clusters(spec, facts)
    else:
        files = []
        for role in roles(spec, {c: f.fsid for c, f in facts.items()}):
            files += _files(spec, facts, role)
    return files + [RenderedFile(INDEX, index_text(fmt, [f.path for f in files]))]


def observed_facts(args, spec: Spec) -> dict[str, ClusterFacts]:
    """fsid, monitors and keys of every cluster, read at once (one thread each)."""
    from cephstack.ceph.observe import observe
    from cephstack.commands.common import connect
    from cephstack.render.drift import facts_of
    from cephstack.session.fleet import ClusterRun, each

    runs = [ClusterRun(name, part) for name, part in split(spec).items()]
    found: dict[str, ClusterFacts] = {}

    def read(run: ClusterRun) -> None:
        with connect(args, run.spec) as conn:
            found[run.name] = facts_of(observe(conn, monmap=True))

    each(runs, read)
    failed = [r for r in runs if not r.ok]
    if failed:
        from cephstack.errors import CephstackError

        first = failed[0].error
        error = CephstackError(f"cluster {failed[0].name}: {first}" + "".join(
            f"\ncluster {r.name}: {r.error}" for r in failed[1:]) + "\nnothing rendered")
        error.exit_code = getattr(first, "exit_code", error.exit_code)
        error.kind = getattr(first, "kind", error.kind)
        raise error
    return found
