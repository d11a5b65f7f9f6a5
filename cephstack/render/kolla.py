"""/etc/kolla/config as kolla-ansible reads it for external Ceph, and the globals.yml
fragment naming every user, keyring, pool and Cinder backend.

kolla copies the named `<cluster>.conf` and `<cluster>.client.<user>.keyring` files of each
service's directory into the container's /etc/ceph (owned by the service, 0600), so
ceph.conf has no keyring = line and no leading whitespace (kolla's merge reads indented
lines as continuations). Facts and their sources: tests/data/kolla_facts.py.

A fleet of one is cluster "ceph" and its globals.yml suits kolla-ansible 2024.1 and 2025.1.
Several clusters need 2025.1+ (2024.1 ignores a backend's pool and user): files named per
cluster, globals.yml with glance_ceph_backends and cinder_ceph_backends (a `cluster` each),
and per availability zone the host variables of its computes (kolla picks Nova's cluster
per host).
"""

from __future__ import annotations

from functools import partial

from cephstack.keyfiles import keyring_text
from cephstack.render import openstack
from cephstack.render.cephconf import ceph_conf
from cephstack.render.ini import Option, Section, ini_text
from cephstack.render.model import (
    CLUSTER,
    ClusterFacts,
    RenderedFile,
    key_file,
    keyring_name,
    names_clusters,
)
from cephstack.spec.fleet import availability_zone, pool_cluster
from cephstack.spec.load import Spec

# kolla directory -> the services whose keyrings it holds (present when the first is)
LAYOUT = (
    ("config/glance", ("glance",)),
    ("config/cinder/cinder-volume", ("cinder-volume",)),
    ("config/cinder/cinder-backup", ("cinder-backup", "cinder-volume")),
    # kolla fills the libvirt secret of Cinder's user from Cinder's keyring here.
    ("config/nova", ("nova", "cinder-volume")),
)
KOLLA_VARS = {  # service -> (enable flag, variable prefix)
    "glance": ("glance_backend_ceph", "ceph_glance"),
    "cinder-volume": ("cinder_backend_ceph", "ceph_cinder"),
    "cinder-backup": (None, "ceph_cinder_backup"),
    "nova": ("nova_backend_ceph", "ceph_nova"),
}
MULTI_POOL_NOTE = ("kolla-ansible 2024.1 gives every Cinder backend ceph_cinder_pool_name: "
                   "only 2025.1 and later use each backend's own pool")


def _one_cluster_globals(spec: Spec) -> str:
    lines = ["# globals.yml fragment for external Ceph, written by cephstack render.",
             f'ceph_cluster: "{CLUSTER}"  # 2025.1+']
    for kind, (flag, prefix) in KOLLA_VARS.items():
        s = spec.services.get(kind)
        if s is None:
            continue
        if flag:
            lines.append(f'{flag}: "yes"')
        lines += [f'{prefix}_user: "{s.user}"', f'{prefix}_pool_name: "{s.pools[0]}"',
                  # 2024.1 reads these (and gives Nova Cinder's keyring by default);
                  # 2025.1 derives the same names from the users.
                  f'{prefix}_keyring: "client.{s.user}.keyring"']
    if "cinder-volume" in spec.services:
        user = spec.services["cinder-volume"].user
        backends = openstack.backends(spec)
        # The backup backend must name one of cinder_ceph_backends (kolla fails otherwise).
        lines += [f'cinder_backend_ceph_name: "{backends[0][2]}"',
                  f'cinder_backup_backend_ceph_name: "{backends[0][2]}"']
        if len(backends) > 1:
            lines.append(f"# {MULTI_POOL_NOTE}")
        lines.append("cinder_ceph_backends:")  # every Cinder pool, not only the first
        for pool, _, name in backends:
            lines += [f'  - name: "{name}"', f'    backend_name: "{name}"',
                      f'    cluster: "{CLUSTER}"', f'    pool: "{pool}"', f'    user: "{user}"',
                      "    enabled: true"]
    return "\n".join(lines) + "\n"


FLEET_NOTES = (
    "kolla-ansible 2025.1 or later: 2024.1 gives every backend the global pool and user.",
    "kolla defines one libvirt secret for Nova's user and one for Cinder's per compute host: "
    "a compute attaches from its own zone's cluster only (no cross-site attach, no "
    "failed-over volume from the mirroring secondary without defining that secret by hand).",
)


def _q(value: str) -> str:
    return f'"{value}"'


def _fleet_globals(spec: Spec) -> str:
    lines = ["# globals.yml fragment for several external Ceph clusters, written by cephstack "
             "render."] + [f"# {n}" for n in FLEET_NOTES]
    if "glance" in spec.services:
        user = spec.services["glance"].user
        lines += ['glance_backend_ceph: "yes"', "glance_ceph_backends:"]
        for store, cluster, pool in openstack.glance_stores(spec):
            lines += [f"  - name: {_q(store)}", '    type: "rbd"',
                      f"    cluster: {_q(cluster)}", f"    pool: {_q(pool)}",
                      f"    user: {_q(user)}", "    enabled: true"]
    if "cinder-volume" in spec.services:
        user = spec.services["cinder-volume"].user
        backends = openstack.backends(spec)
        lines += ['cinder_backend_ceph: "yes"', f"ceph_cinder_user: {_q(user)}",
                  "cinder_ceph_backends:"]
        for pool, _, name in backends:
            cluster = pool_cluster(spec, pool)
            lines += [f"  - name: {_q(name)}", f"    backend_name: {_q(name)}",
                      f"    cluster: {_q(cluster)}", f"    pool: {_q(pool)}",
                      f"    user: {_q(user)}",
                      f"    availability_zone: {_q(availability_zone(spec, cluster))}",
                      "    enabled: true"]
        if "cinder-backup" in spec.services:
            s = spec.services["cinder-backup"]
            where = pool_cluster(spec, s.pools[0])
            # kolla takes the backup cluster from the backend it names.
            named = next((n for p, _, n in backends if pool_cluster(spec, p) == where), None)
            if named:
                lines += [f"cinder_backup_backend_ceph_name: {_q(named)}",
                          f"ceph_cinder_backup_user: {_q(s.user)}",
                          f"ceph_cinder_backup_pool_name: {_q(s.pools[0])}"]
            else:
                lines.append(f"# cinder-backup: kolla needs a Cinder backend on {where} to "
                             "name the backup cluster; none is declared")
    if "nova" in spec.services:
        lines += ['nova_backend_ceph: "yes"',
                  f"ceph_nova_user: {_q(spec.services['nova'].user)}",
                  "# ceph_cluster and ceph_nova_pool_name are per compute host: "
                  "zones/compute-<zone>.yml"]
    return "\n".join(lines) + "\n"


def _zone_files(spec: Spec, fsids: dict[str, str], zone: str) -> list[RenderedFile]:
    """The host variables of the computes of `zone`, and their nova.conf override."""
    [pool] = [p for p in spec.services["nova"].pools if pool_cluster(spec, p) == zone]
    files = [RenderedFile(f"zones/compute-{zone}.yml", "\n".join([
        f"# host_vars of every compute host in availability zone "
        f"{availability_zone(spec, zone)!r}, written by cephstack render.",
        f"ceph_cluster: {_q(zone)}", f"ceph_nova_pool_name: {_q(pool)}"]) + "\n")]
    libvirt, *more = openstack.nova_settings(spec, fsids, zone)  # more: [workarounds]
    store = [o for o in libvirt.options if o.key == "images_rbd_glance_store_name"]
    if store:
        files.append(RenderedFile(f"zones/compute-{zone}-nova.conf", ini_text(
            [Section("libvirt", tuple(store)), *more],
            f"nova.conf override for the computes of zone {zone}: copy it to "
            "/etc/kolla/config/nova/<host>/nova.conf for each of them.")))
    return files


def _clusters(spec: Spec, kind: str) -> list[str]:
    return list(dict.fromkeys(pool_cluster(spec, p) for p in spec.services[kind].pools)) \
        if kind in spec.services else []


def kolla(spec: Spec, facts: dict[str, ClusterFacts]) -> list[RenderedFile]:
    files: list[RenderedFile] = []
    fsids = {c: f.fsid for c, f in facts.items()}
    # Each kolla directory's clusters, by the service whose cluster it serves.
    where = {kind: _clusters(spec, kind) for kind in KOLLA_VARS}
    confs = {"config/glance": where["glance"],
             "config/cinder": list(dict.fromkeys(where["cinder-volume"] + where["cinder-backup"])),
             "config/nova": where["nova"]}
    for directory, clusters in confs.items():
        files += [RenderedFile(f"{directory}/{c}.conf", ceph_conf(facts[c], qemu=directory ==
                                                                  "config/nova"))
                  for c in clusters]
    for directory, kinds in LAYOUT:
        if kinds[0] not in spec.services:
            continue
        for kind in kinds:
            # A compute reads its own zone's cluster only; the backup driver every volume's.
            for cluster in [c for c in where[kind] if directory != "config/nova"
                            or c in where["nova"]]:
                entity = f"client.{spec.services[kind].user}"
                path = f"{directory}/{keyring_name(entity, cluster)}"
                if all(f.path != path for f in files):
                    files.append(key_file(facts[cluster], entity, path,
                                          partial(keyring_text, entity)))
    for zone in where["nova"] if names_clusters(spec) else ():
        files += _zone_files(spec, fsids, zone)
    if "glance" in spec.services:
        # kolla never sets it: without it, no copy-on-write clones from Glance images.
        files.append(RenderedFile("config/glance.conf", ini_text([Section(
            "DEFAULT", (Option("show_image_direct_url", "True",
                               "Cinder and Nova clone Glance images copy-on-write only when "
                               "Glance shows locations; keep this endpoint internal."),))],
            "glance.conf override for kolla-ansible, written by cephstack render.")))
    files.append(RenderedFile("globals.yml", _fleet_globals(spec) if names_clusters(spec)
                              else _one_cluster_globals(spec)))
    return files
