"""The default spec: the seed guide's layout with least-privilege caps."""

DEFAULT_SPEC = """\
# cephstack spec: the Ceph side of an OpenStack deployment, declared once.
# `cephstack plan` shows what would change; `cephstack apply` makes it so.
# Relative paths are relative to this file.

cluster:
  conf: /etc/ceph/ceph.conf          # how to reach the cluster as an admin
  keyring: /etc/ceph/ceph.client.admin.keyring
  client: client.admin
  connect_timeout: 10                # seconds

# One RBD pool per use, as in the guide. Every pool gets the `rbd` application and is
# initialised as `rbd pool init` does. pg_num is fixed (autoscaler off) unless
# `autoscale: true` (then optionally `target_size_ratio: 0.2`).
# Also: size, min_size, crush_rule, quota: {max_bytes: 500G, max_objects: 1000000}
pools:
  images:  {pg_num: 32}              # Glance images
  volume:  {pg_num: 32}              # Cinder volumes
  backups: {pg_num: 32}              # Cinder volume backups
  vm:      {pg_num: 32}              # Nova guest disks

# Each service's caps are compiled from what it does, never written by hand:
#   mon 'profile rbd' for all (lets a client blocklist a dead lock holder: evacuate works);
#   osd 'profile rbd pool=<own pool>', and for Cinder and Nova also
#   'profile rbd-read-only pool=<Glance pool>' (copy-on-write clones of images);
#   mgr 'profile rbd pool=<own pool>'.
services:
  glance:        {user: glance, pool: images}           # chunk_size_mib: 8 (Glance default)
  cinder-volume: {user: cinder-volume, pools: [volume]} # one backend per pool
  cinder-backup: {user: cinder-backup, pool: backups}
  nova:
    user: nova
    pool: vm
    # true grants Nova write on the images pool, so snapshots of instances are taken
    # in Ceph (clone + flatten) instead of downloaded and re-uploaded through Glance.
    direct_snapshots: false

# Extra cephx users with explicit caps (the escape hatch), e.g.:
# clients:
#   legacy-tool: {caps: {mon: "profile rbd", osd: "profile rbd-read-only pool=images"}}
clients: {}

# Where keyrings are written: <directory>/ceph.client.<user>.keyring
keyrings:
  directory: /var/openstack/ceph
  mode: "0600"                       # 0600 or 0640 (group-readable by owner/group below)
  # owner: root
  # group: root

# Where `cephstack render` writes the OpenStack side (plain: controller/, backup/, compute/;
# or kolla); with it, plan reports drift of those files and verify checks them.
# render: {directory: /etc/cephstack/openstack, format: plain}
"""
