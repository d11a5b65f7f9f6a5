"""The Glance, Cinder, Cinder-backup and Nova settings for RBD, from the spec.

Option names and defaults: glance_store/_drivers/rbd.py, cinder/volume/drivers/rbd.py,
cinder/backup/drivers/ceph.py, nova/conf/libvirt.py (see ../shared/design/OPENSTACK-RBD.md).
"""

from __future__ import annotations

from cephstack.render.ini import Option, Section
from cephstack.render.model import CEPH_CONF, secret_uuid
from cephstack.spec.load import Spec

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
        )))
    return sections


def cinder_backup(spec: Spec) -> list[Section]:
    s = spec.services["cinder-backup"]
    return [Section("DEFAULT", (
        Option("backup_driver", "cinder.backup.drivers.ceph.CephBackupDriver",
               "Source volumes are read as Cinder's rbd_user: this host needs its keyring too."),
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
        Option("images_type", "rbd"),
        Option("images_rbd_pool", s.pools[0]),
        Option("images_rbd_ceph_conf", CEPH_CONF),
        Option("rbd_user", s.user),
        Option("rbd_secret_uuid", libvirt_secret(spec, fsid, "nova"),
               "Cinder volumes attach with Cinder's own user and secret (see cinder.conf)."),
        Option("disk_cachemodes", "network=writeback"),
        Option("hw_disk_discard", "unmap", "Pass guest TRIM/discard down to RBD."),
    ))]
