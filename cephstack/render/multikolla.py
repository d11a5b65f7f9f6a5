"""kolla-ansible (2025.1+) for several clusters: /etc/kolla/config files named per cluster,
globals.yml with glance_ceph_backends and cinder_ceph_backends (a `cluster` each), and per
availability zone the host variables of its computes (kolla picks Nova's cluster per host).

Facts and sources: tests/data/kolla_facts.py ("2025.1": backend keys, file names).
kolla-ansible 2024.1 ignores a backend's pool and user: it cannot serve several clusters.
"""

from __future__ import annotations

from functools import partial

from cephstack.keyfiles import keyring_text
from cephstack.render import multiopenstack as mo
from cephstack.render import openstack
from cephstack.render.cephconf import ceph_conf
from cephstack.render.ini import Section, ini_text
from cephstack.render.kolla import kolla as one_cluster_kolla
from cephstack.render.model import ClusterFacts, RenderedFile, key_file
from cephstack.spec.fleet import availability_zone
from cephstack.spec.load import Spec

NOTES = (
    "kolla-ansible 2025.1 or later: 2024.1 gives every backend the global pool and user.",
    "kolla defines one libvirt secret for Nova's user and one for Cinder's per compute host: "
    "a compute attaches from its own zone's cluster only (no cross-site attach, no "
    "failed-over volume from the mirroring secondary without defining that secret by hand).",
)


def _q(value: str) -> str:
    return f'"{value}"'


def _globals(spec: Spec) -> str:
    lines = ["# globals.yml fragment for several external Ceph clusters, written by cephstack "
             "render."] + [f"# {n}" for n in NOTES]
    if "glance" in spec.services:
        user = spec.services["glance"].user
        lines += ['glance_backend_ceph: "yes"', "glance_ceph_backends:"]
        for cluster, pool in mo.glance_stores(spec):
            lines += [f"  - name: {_q(cluster)}", '    type: "rbd"',
                      f"    cluster: {_q(cluster)}", f"    pool: {_q(pool)}",
                      f"    user: {_q(user)}", "    enabled: true"]
    if "cinder-volume" in spec.services:
        user = spec.services["cinder-volume"].user
        backends = openstack.backends(spec)
        lines += ['cinder_backend_ceph: "yes"', f"ceph_cinder_user: {_q(user)}",
                  "cinder_ceph_backends:"]
        for pool, _, name in backends:
            cluster = mo.pool_cluster(spec, pool)
            lines += [f"  - name: {_q(name)}", f"    backend_name: {_q(name)}",
                      f"    cluster: {_q(cluster)}", f"    pool: {_q(pool)}",
                      f"    user: {_q(user)}",
                      f"    availability_zone: {_q(availability_zone(spec, cluster))}",
                      "    enabled: true"]
        if "cinder-backup" in spec.services:
            s = spec.services["cinder-backup"]
            where = mo.pool_cluster(spec, s.pools[0])
            # kolla takes the backup cluster from the backend it names.
            named = next((n for p, _, n in backends if mo.pool_cluster(spec, p) == where), None)
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


def _zone_vars(spec: Spec, zone: str) -> str:
    [pool] = [p for p in spec.services["nova"].pools if mo.pool_cluster(spec, p) == zone]
    return "\n".join([
        f"# host_vars of every compute host in availability zone "
        f"{availability_zone(spec, zone)!r}, written by cephstack render.",
        f"ceph_cluster: {_q(zone)}", f"ceph_nova_pool_name: {_q(pool)}"]) + "\n"


def kolla_clusters(spec: Spec, facts: dict[str, ClusterFacts]) -> list[RenderedFile]:
    files: list[RenderedFile] = []
    fsids = {c: f.fsid for c, f in facts.items()}

    def conf(directory: str, cluster: str, qemu: bool = False) -> None:
        path = f"{directory}/{cluster}.conf"
        if all(f.path != path for f in files):
            files.append(RenderedFile(path, ceph_conf(facts[cluster], qemu)))

    def keyring(directory: str, cluster: str, kind: str) -> None:
        entity = f"client.{spec.services[kind].user}"
        path = f"{directory}/{cluster}.{entity}.keyring"
        if all(f.path != path for f in files):
            files.append(key_file(facts[cluster], entity, path, partial(keyring_text, entity)))

    volumes = [mo.pool_cluster(spec, p) for p in spec.services["cinder-volume"].pools] \
        if "cinder-volume" in spec.services else []
    if "glance" in spec.services:
        for cluster, _ in mo.glance_stores(spec):
            conf("config/glance", cluster)
            keyring("config/glance", cluster, "glance")
    for cluster in volumes:
        conf("config/cinder", cluster)
        keyring("config/cinder/cinder-volume", cluster, "cinder-volume")
        if "cinder-backup" in spec.services:  # the backup driver reads the source volumes
            keyring("config/cinder/cinder-backup", cluster, "cinder-volume")
    if "cinder-backup" in spec.services:
        where = mo.pool_cluster(spec, spec.services["cinder-backup"].pools[0])
        conf("config/cinder", where)
        keyring("config/cinder/cinder-backup", where, "cinder-backup")
    for zone in mo.nova_zones(spec):
        conf("config/nova", zone, qemu=True)
        keyring("config/nova", zone, "nova")
        if zone in volumes:  # kolla fills Cinder's libvirt secret from this keyring
            keyring("config/nova", zone, "cinder-volume")
        files.append(RenderedFile(f"zones/compute-{zone}.yml", _zone_vars(spec, zone)))
        [libvirt] = mo.nova(spec, fsids, zone)
        store = [o for o in libvirt.options if o.key == "images_rbd_glance_store_name"]
        if store:
            files.append(RenderedFile(f"zones/compute-{zone}-nova.conf", ini_text(
                [Section("libvirt", tuple(store))],
                f"nova.conf override for the computes of zone {zone}: copy it to "
                "/etc/kolla/config/nova/<host>/nova.conf for each of them.")))
    # config/glance.conf (show_image_direct_url) as for one cluster.
    files += [f for f in one_cluster_kolla(_glance_only(spec), next(iter(facts.values())))
              if f.path == "config/glance.conf"]
    files.append(RenderedFile("globals.yml", _globals(spec)))
    return files


def _glance_only(spec: Spec) -> Spec:
    from dataclasses import replace

    return replace(spec, services={k: s for k, s in spec.services.items() if k == "glance"})
