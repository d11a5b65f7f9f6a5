"""The Glance, Cinder, Cinder-backup and Nova settings for RBD, from the spec.

Option names and defaults: glance_store/_drivers/rbd.py, cinder/volume/drivers/rbd.py,
cinder/backup/drivers/ceph.py, nova/conf/libvirt.py (see ../shared/design/OPENSTACK-RBD.md).

A fleet's settings (the *_settings functions) are each cluster's settings with the options
that select the cluster. With several clusters (a spec with clusters:):
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
A fleet of one keeps the one-cluster settings: store "rbd", /etc/ceph/ceph.conf, no option
naming its cluster (cephstack.render.model.names_clusters).
"""

from __future__ import annotations

from dataclasses import replace

from cephstack.render.ini import Option, Section
from cephstack.render.model import CEPH_CONF, conf_path, names_clusters, secret_uuid
from cephstack.spec.fleet import availability_zone, pool_cluster, split
from cephstack.spec.load import Spec
from cephstack.spec.model import CinderTrash

GLANCE_CHUNK_MIB = 8  # glance_store's rbd_store_chunk_size default
CINDER_CHUNK_MIB = 4  # cinder's rbd_store_chunk_size default
BACKUP_CHUNK_BYTES = 128 * 1024 * 1024  # cinder's backup_ceph_chunk_size default


GLANCE_STORE = "rbd"  # the multi-store backend name of Glance's RBD store

# Nova's direct snapshots register the new image's location in Glance. Glance accepts a
# location from Nova only with show_multiple_locations = True (or, from 2024.2, the new
# locations API with Nova's service role); the old option shows every image's locations
# to every user (OSSN-0065): cephstack never turns it on, it says so.
DIRECT_SNAPSHOT_NOTE = (
    "nova.direct_snapshots is on: for Glance to accept the locations Nova registers, set "
    "show_multiple_locations = True in glance-api.conf [DEFAULT] (Glance < 2024.2), or use "
    "Glance's locations API with Nova's service role (2024.2+). Security caveat: "
    "show_multiple_locations shows image locations to all users (OSSN-0065); expose it on "
    "an internal endpoint only. Without it Nova falls back to a download and re-upload.")


def notes(spec: Spec) -> list[str]:
    """What the operator must set by hand, and why (shown by plan and render)."""
    nova = spec.services.get("nova")
    return [DIRECT_SNAPSHOT_NOTE] if nova and nova.direct_snapshots else []


def backends(spec: Spec) -> list[tuple[str, str, str]]:
    """Cinder's RBD backends: (pool, cinder.conf section, volume_backend_name); a pool the
    spec pins keeps the section and name an existing cinder.conf gave it."""
    s = spec.services["cinder-volume"]
    out = []
    for pool in s.pools:
        pin = s.backends.get(pool)
        out.append((pool, pin.section, pin.backend_name) if pin else
                   (pool, f"rbd-{pool}", f"rbd-{pool}"))
    return out


def libvirt_secret(spec: Spec, fsid: str, kind: str) -> str:
    """The libvirt secret UUID of service `kind`'s user (pinned in the spec, or derived)."""
    s = spec.services[kind]
    pinned = s.secret_uuid or next((o.secret_uuid for o in spec.services.values()
                                    if o.user == s.user and o.secret_uuid), None)
    return secret_uuid(fsid, f"client.{s.user}", pinned)


def glance(spec: Spec) -> list[Section]:
    s = spec.services["glance"]
    return [
        Section("DEFAULT", (
            Option("show_image_direct_url", "True",
                   "Cinder and Nova clone images copy-on-write only if Glance shows image "
                   "locations. Keep the endpoint that shows them internal: locations name "
                   "the backend."),
            Option("enabled_backends", f"{GLANCE_STORE}:rbd", merge="list"),
        )),
        # An existing default store stays the default unless the spec says otherwise.
        Section("glance_store", (Option("default_backend", GLANCE_STORE,
                                        merge="set" if s.default_store else "absent"),)),
        Section(GLANCE_STORE, (
            Option("rbd_store_pool", s.pools[0]),
            Option("rbd_store_user", s.user, "Always set: unset, Glance connects as 'None'."),
            Option("rbd_store_ceph_conf", CEPH_CONF),
            Option("rbd_store_chunk_size", str(s.chunk_size_mib or GLANCE_CHUNK_MIB),
                   "MiB: the RBD object size of new images."),
        )),
    ]


def cinder_volume(spec: Spec, fsid: str) -> list[Section]:
    s = spec.services["cinder-volume"]
    pools = backends(spec)
    sections = [Section("DEFAULT", (Option("enabled_backends", ",".join(
        section for _, section, _ in pools), merge="list"),))]
    for pool, section, backend_name in pools:
        sections.append(Section(section, (
            Option("volume_driver", "cinder.volume.drivers.rbd.RBDDriver"),
            Option("volume_backend_name", backend_name),
            Option("rbd_pool", pool),
            Option("rbd_user", s.user),
            Option("rbd_ceph_conf", CEPH_CONF),
            Option("rbd_secret_uuid", libvirt_secret(spec, fsid, "cinder-volume"),
                   "The libvirt secret of this user on every compute host (same UUID)."),
            Option("rbd_flatten_volume_from_snapshot", "False",
                   "Keep volumes from snapshots as copy-on-write clones."),
            Option("rbd_max_clone_depth", "5"),
            Option("rbd_store_chunk_size", str(s.chunk_size_mib or CINDER_CHUNK_MIB),
                   "MiB: the RBD object size of new volumes."),
            Option("rados_connect_timeout", "-1"),
            *_deferred_deletion(s.trash),
        )))
    return sections


def _deferred_deletion(trash: CinderTrash | None) -> tuple[Option, ...]:
    """Cinder's deferred deletion (spec services.cinder-volume.trash): every deleted volume
    goes to the RBD trash, Cinder's periodic task purges what is due."""
    if trash is None:
        return ()
    return (Option("enable_deferred_deletion", str(trash.deferred_deletion),
                   "Deleted volumes go to the RBD trash; Cinder purges them."),
            Option("deferred_deletion_delay", str(trash.delay),
                   "Seconds a deleted volume stays restorable in the trash."),
            Option("deferred_deletion_purge_interval", str(trash.purge_interval),
                   "Seconds between Cinder's purges of the trash."))


def cinder_backup(spec: Spec) -> list[Section]:
    s = spec.services["cinder-backup"]
    return [Section("DEFAULT", (
        Option("backup_driver", "cinder.backup.drivers.ceph.CephBackupDriver",
               "Source volumes are read as Cinder's rbd_user: this host needs its keyring too.",
               merge="replace" if s.replace_existing else "set"),
        Option("backup_ceph_conf", CEPH_CONF),
        Option("backup_ceph_user", s.user),
        Option("backup_ceph_pool", s.pools[0]),
        Option("backup_ceph_chunk_size", str(BACKUP_CHUNK_BYTES)),
        Option("backup_ceph_stripe_unit", "0"),
        Option("backup_ceph_stripe_count", "0"),
        Option("restore_discard_excess_bytes", "True"),
    ))]


def nova(spec: Spec, fsid: str) -> list[Section]:
    s = spec.services["nova"]
    return [Section("libvirt", (
        Option("images_type", "rbd", merge="replace" if s.replace_existing else "set"),
        Option("images_rbd_pool", s.pools[0]),
        Option("images_rbd_ceph_conf", CEPH_CONF),
        Option("rbd_user", s.user),
        Option("rbd_secret_uuid", libvirt_secret(spec, fsid, "nova"),
               "Cinder volumes attach with Cinder's own user and secret (see cinder.conf)."),
        Option("disk_cachemodes", "network=writeback"),
        Option("hw_disk_discard", "unmap", "Pass guest TRIM/discard down to RBD."),
    ))]


def _set(section: Section, values: dict[str, str], after: str | None = None,
         extra: tuple[Option, ...] = ()) -> Section:
    """`section` with some option values replaced, and `extra` options after `after`."""
    options: list[Option] = []
    for o in section.options:
        options.append(replace(o, value=values[o.key]) if o.key in values else o)
        if o.key == after:
            options += extra
    return Section(section.name, tuple(options))


def secret_of(spec: Spec, fsids: dict[str, str], cluster: str, kind: str) -> str:
    """The libvirt secret of service `kind`'s user on `cluster`: one per (cluster, user)."""
    return libvirt_secret(spec, fsids[cluster], kind)


def glance_stores(spec: Spec) -> list[tuple[str, str, str]]:
    """(store name, cluster, pool) of Glance's pools, the default store first."""
    return [(c if names_clusters(spec) else GLANCE_STORE, c, p)
            for c, p in ((pool_cluster(spec, p), p) for p in spec.services["glance"].pools)]


def glance_settings(spec: Spec) -> list[Section]:
    s = spec.services["glance"]
    stores = glance_stores(spec)
    out = [Section("DEFAULT", (
        glance(spec)[0].options[0],  # show_image_direct_url, with its reason
        Option("enabled_backends", ",".join(f"{name}:rbd" for name, _, _ in stores),
               merge="list"),
    )), Section("glance_store", (Option("default_backend", stores[0][0],
                                        merge="set" if s.default_store else "absent"),))]
    parts = split(spec)
    for name, cluster, _pool in stores:
        one = glance(parts[cluster])[2]  # the [rbd] store of that cluster's view
        out.append(Section(name, _set(one, {"rbd_store_ceph_conf": conf_path(cluster)})
                           .options))
    return out


def cinder_volume_settings(spec: Spec, fsids: dict[str, str]) -> list[Section]:
    m = spec.mirroring
    pools = backends(spec)
    sections = [Section("DEFAULT", (Option("enabled_backends", ",".join(
        section for _, section, _ in pools), merge="list"),))]
    for pool, _section, _name in pools:
        cluster = pool_cluster(spec, pool)
        one = replace(spec, services={**spec.services, "cinder-volume": replace(
            spec.services["cinder-volume"], pools=(pool,))})
        [backend] = cinder_volume(one, fsids[cluster])[1:]
        extra = [Option("rbd_cluster_name", cluster, "The cluster: /etc/ceph/<name>.conf and "
                        "<name>.client.<user>.keyring, for os-brick as for the driver."),
                 Option("backend_availability_zone", availability_zone(spec, cluster),
                        "Volumes of this backend are in its cluster's zone.")] \
            if names_clusters(spec) else []
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


def cinder_backup_settings(spec: Spec) -> list[Section]:
    cluster = pool_cluster(spec, spec.services["cinder-backup"].pools[0])
    return [_set(s, {"backup_ceph_conf": conf_path(cluster)}) for s in cinder_backup(spec)]


# With several Glance stores Nova would otherwise download an image from another site's
# store and re-upload it as a flat disk (nova-specs victoria rbd-glance-multistore).
NO_SILENT_DOWNLOADS = Section("workarounds", (Option(
    "never_download_image_if_on_rbd", "True",
    "Refuse an image missing from this zone's Glance store instead of copying it across "
    "sites: copy it first with glance image-import --stores."),))


def nova_settings(spec: Spec, fsids: dict[str, str], cluster: str) -> list[Section]:
    """nova.conf of the computes of `cluster`'s zone."""
    part = split(spec)[cluster]
    [libvirt] = nova(part, fsids[cluster])
    extra = ()
    if "glance" in part.services and names_clusters(spec):  # one store: nothing to choose
        extra = (Option("images_rbd_glance_store_name", cluster,
                        "This zone's Glance store: images are cloned from it, never copied "
                        "from another site's."),)
    out = [_set(libvirt, {"images_rbd_ceph_conf": conf_path(cluster)}, "images_rbd_ceph_conf",
                extra)]
    if extra:  # several Glance stores: an image missing from this zone's store is refused
        out.append(NO_SILENT_DOWNLOADS)
    return out


def nova_zones(spec: Spec) -> list[str]:
    """The clusters with a Nova pool: one compute bundle (availability zone) each."""
    return [pool_cluster(spec, p) for p in spec.services["nova"].pools] \
        if "nova" in spec.services else []
