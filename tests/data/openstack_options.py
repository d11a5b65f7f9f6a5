"""Option names the OpenStack services define, per file, with where each is defined.

Rendered files may only use these (a typo would be silently ignored by oslo.config).
Sources (paths in the upstream repositories):
  glance:  glance/common/config.py (show_image_direct_url, enabled_backends);
           glance_store/multi_backend.py (default_backend);
           glance_store/_drivers/rbd.py (rbd_store_pool, rbd_store_user,
           rbd_store_ceph_conf, rbd_store_chunk_size)
  cinder:  cinder/common/config.py (enabled_backends, backup_driver);
           cinder/volume/driver.py (volume_driver, volume_backend_name);
           cinder/volume/drivers/rbd.py (rbd_pool, rbd_user, rbd_ceph_conf,
           rbd_secret_uuid, rbd_flatten_volume_from_snapshot, rbd_max_clone_depth,
           rbd_store_chunk_size, rados_connect_timeout);
           cinder/backup/drivers/ceph.py (backup_ceph_conf, backup_ceph_user,
           backup_ceph_pool, backup_ceph_chunk_size, backup_ceph_stripe_unit,
           backup_ceph_stripe_count, restore_discard_excess_bytes)
  nova:    nova/conf/libvirt.py (images_type, images_rbd_pool, images_rbd_ceph_conf,
           rbd_user, rbd_secret_uuid, disk_cachemodes, hw_disk_discard)
  ceph:    ceph's src/common/options (fsid, mon_host, rbd cache,
           rbd cache writethrough until flush, admin socket, log file,
           rbd concurrent management ops)
"""

GLANCE = {
    "DEFAULT": {"show_image_direct_url", "enabled_backends"},
    "glance_store": {"default_backend"},
    "<backend>": {"rbd_store_pool", "rbd_store_user", "rbd_store_ceph_conf",
                  "rbd_store_chunk_size"},
}
CINDER = {
    "DEFAULT": {"enabled_backends", "backup_driver", "backup_ceph_conf", "backup_ceph_user",
                "backup_ceph_pool", "backup_ceph_chunk_size", "backup_ceph_stripe_unit",
                "backup_ceph_stripe_count", "restore_discard_excess_bytes"},
    "<backend>": {"volume_driver", "volume_backend_name", "rbd_pool", "rbd_user",
                  "rbd_ceph_conf", "rbd_secret_uuid", "rbd_flatten_volume_from_snapshot",
                  "rbd_max_clone_depth", "rbd_store_chunk_size", "rados_connect_timeout"},
}
NOVA = {
    "libvirt": {"images_type", "images_rbd_pool", "images_rbd_ceph_conf", "rbd_user",
                "rbd_secret_uuid", "disk_cachemodes", "hw_disk_discard"},
}
CEPH = {
    "global": {"fsid", "mon_host"},
    "client": {"rbd cache", "rbd cache writethrough until flush", "admin socket", "log file",
               "rbd concurrent management ops"},
}
