"""The Glance, Cinder, Cinder-backup and Nova settings for RBD, from the spec.

Option names and defaults: glance_store/_drivers/rbd.py, cinder/volume/drivers/rbd.py,
cinder/backup/drivers/ceph.py, nova/conf/libvirt.py (see ../shared/design/OPENSTACK-RBD.md).
"""

from __future__ import annotations

from cephstack.render.ini import Option, Section
from cephstack.render.model import CEPH_CONF, secret_uuid
from cephstack.spec import Spec

GLANCE_CHUNK_MIB = 8  # glance_store's rbd_store_chunk_size default
CINDER_CHUNK_MIB = 4  # cinder's rbd_store_chunk_size default
BACKUP_CHUNK_BYTES = 128 * 1024 * 1024  # cinder's backup_ceph_chunk_size default


def cinder_backend_name(pool: str) -> str:
    return f"rbd-{pool}"


def glance(spec: Spec) -> list[Section]:
    s = spec.services["glance"]
    return [
        Section("DEFAULT", (
            Option("show_image_direct_url", "True",
                   "Cinder and Nova clone images copy-on-write only if Glance shows image "
                   "locations. Keep the endpoint that shows them internal: locations name "
                   "the backend."),
            Option("enabled_backends", "rbd:rbd"),
        )),
        Section("glance_store", (Option("default_backend", "rbd"),)),
        Section("rbd", (
            Option("rbd_store_pool", s.pools[0]),
            Option("rbd_store_user", s.user, "Always set: unset, Glance connects as 'None'."),
            Option("rbd_store_ceph_conf", CEPH_CONF),
            Option("rbd_store_chunk_size", str(s.chunk_size_mib or GLANCE_CHUNK_MIB),
                   "MiB: the RBD object size of new images."),
        )),
    ]


def cinder_volume(spec: Spec, fsid: str) -> list[Section]:
    s = spec.services["cinder-volume"]
    backends = [cinder_backend_name(p) for p in s.pools]
    sections = [Section("DEFAULT", (Option("enabled_backends", ",".join(backends)),))]
    for pool, backend in zip(s.pools, backends, strict=True):
        sections.append(Section(backend, (
            Option("volume_driver", "cinder.volume.drivers.rbd.RBDDriver"),
            Option("volume_backend_name", backend),
            Option("rbd_pool", pool),
            Option("rbd_user", s.user),
            Option("rbd_ceph_conf", CEPH_CONF),
            Option("rbd_secret_uuid", secret_uuid(fsid, f"client.{s.user}"),
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
        Option("rbd_secret_uuid", secret_uuid(fsid, f"client.{s.user}"),
               "Cinder volumes attach with Cinder's own user and secret (see cinder.conf)."),
        Option("disk_cachemodes", "network=writeback"),
        Option("hw_disk_discard", "unmap", "Pass guest TRIM/discard down to RBD."),
    ))]
