"""Glance, Cinder and Nova settings for several clusters: the one-cluster settings of
render/openstack.py, per cluster, with the options that select the cluster.

- Glance: multi-store, one RBD store per cluster named after it (enabled_backends
  "central:rbd,edge1:rbd"), rbd_store_ceph_conf /etc/ceph/<cluster>.conf; the default store
  is the cluster of Glance's first pool.
- Cinder: a backend per pool with rbd_cluster_name, rbd_ceph_conf, backend_availability_zone
  and the libvirt secret of (cluster, Cinder's user); a mirrored pool adds
  replication_device naming the secondary's conf, the same user and its secret there.
- Cinder backup: backup_ceph_conf of the backups' cluster (any cluster).
- Nova: per availability zone (cluster): images_rbd_ceph_conf, and
  images_rbd_glance_store_name = the zone's Glance store, so Nova clones images from the
  local store instead of copying them across sites.
"""

from __future__ import annotations

from dataclasses import replace

from cephstack.render import openstack
from cephstack.render.ini import Option, Section
from cephstack.render.model import CEPH_DIR, secret_uuid
from cephstack.spec.fleet import availability_zone, split
from cephstack.spec.load import Spec


def conf_path(cluster: str) -> str:
    return f"{CEPH_DIR}/{cluster}.conf"


def keyring_path(cluster: str, entity: str) -> str:
    return f"{CEPH_DIR}/{cluster}.{entity}.keyring"


def _set(section: Section, values: dict[str, str], after: str | None = None,
         extra: tuple[Option, ...] = ()) -> Section:
    """`section` with some option values replaced, and `extra` options after `after`."""
    options: list[Option] = []
    for o in section.options:
        options.append(replace(o, value=values[o.key]) if o.key in values else o)
        if o.key == after:
            options += extra
    return Section(section.name, tuple(options))


def pool_cluster(spec: Spec, pool: str) -> str:
    return spec.pools[pool].cluster or ""


def secret_of(spec: Spec, fsids: dict[str, str], cluster: str, kind: str) -> str:
    """The libvirt secret of service `kind`'s user on `cluster`: one per (cluster, user)."""
    return secret_uuid(fsids[cluster], f"client.{spec.services[kind].user}")


def glance_stores(spec: Spec) -> list[tuple[str, str]]:
    """(store name = cluster, pool) of Glance's pools, the default store first."""
    return [(pool_cluster(spec, p), p) for p in spec.services["glance"].pools]


def glance(spec: Spec) -> list[Section]:
    s = spec.services["glance"]
    stores = glance_stores(spec)
    out = [Section("DEFAULT", (
        openstack.glance(spec)[0].options[0],  # show_image_direct_url, with its reason
        Option("enabled_backends", ",".join(f"{c}:rbd" for c, _ in stores), merge="list"),
    )), Section("glance_store", (Option("default_backend", stores[0][0],
                                        merge="set" if s.default_store else "absent"),))]
    parts = split(spec)
    for cluster, _pool in stores:
        one = openstack.glance(parts[cluster])[2]  # the [rbd] store of that cluster's view
        out.append(Section(cluster, _set(one, {"rbd_store_ceph_conf": conf_path(cluster)})
                           .options))
    return out


def cinder_volume(spec: Spec, fsids: dict[str, str]) -> list[Section]:
    m = spec.mirroring
    backends = openstack.backends(spec)
    sections = [Section("DEFAULT", (Option("enabled_backends", ",".join(
        section for _, section, _ in backends), merge="list"),))]
    for pool, _section, _name in backends:
        cluster = pool_cluster(spec, pool)
        one = replace(spec, services={**spec.services, "cinder-volume": replace(
            spec.services["cinder-volume"], pools=(pool,))})
        [backend] = openstack.cinder_volume(one, fsids[cluster])[1:]
        extra = [Option("rbd_cluster_name", cluster, "The cluster: /etc/ceph/<name>.conf and "
                        "<name>.client.<user>.keyring, for os-brick as for the driver."),
                 Option("backend_availability_zone", availability_zone(spec, cluster),
                        "Volumes of this backend are in its cluster's zone.")]
        if m and pool in m.pools:
            extra.append(Option("replication_device", replication_device(spec, fsids),
                                f"RBD mirroring to {m.secondary} (same pool name there): "
                                "cinder failover-host switches to it."))
        sections.append(_set(backend, {"rbd_ceph_conf": conf_path(cluster)}, "rbd_ceph_conf",
                             tuple(extra)))
    return sections


def replication_device(spec: Spec, fsids: dict[str, str]) -> str:
    m = spec.mirroring
    user = spec.services["cinder-volume"].user
    return (f"backend_id:{m.secondary},conf:{conf_path(m.secondary)},user:{user},"
            f"secret_uuid:{secret_of(spec, fsids, m.secondary, 'cinder-volume')}")


def cinder_backup(spec: Spec) -> list[Section]:
    cluster = pool_cluster(spec, spec.services["cinder-backup"].pools[0])
    return [_set(s, {"backup_ceph_conf": conf_path(cluster)})
            for s in openstack.cinder_backup(spec)]


def nova(spec: Spec, fsids: dict[str, str], cluster: str) -> list[Section]:
    """nova.conf of the computes of `cluster`'s zone."""
    part = split(spec)[cluster]
    [libvirt] = openstack.nova(part, fsids[cluster])
    extra = ()
    if "glance" in part.services:
        extra = (Option("images_rbd_glance_store_name", cluster,
                        "This zone's Glance store: images are cloned from it, never copied "
                        "from another site's."),)
    return [_set(libvirt, {"images_rbd_ceph_conf": conf_path(cluster)}, "images_rbd_ceph_conf",
                 extra)]


def nova_zones(spec: Spec) -> list[str]:
    """The clusters with a Nova pool: one compute bundle (availability zone) each."""
    return [pool_cluster(spec, p) for p in spec.services["nova"].pools] \
        if "nova" in spec.services else []
