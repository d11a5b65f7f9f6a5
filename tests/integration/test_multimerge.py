"""`render --merge-into PATH --role NAME` with a spec of two real sandbox clusters: a host's
own glance-api.conf, cinder.conf and nova.conf (other backends, owner nobody:nogroup, mode
0640) get their role's settings per cluster, read back with oslo.config as the services
read them; --dry-run changes nothing; --role is required and checked; a cluster that
cannot be reached fails the merge with nothing written."""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
from pathlib import Path

import pytest
from oslo_config import cfg

from cephstack.host.merge import BACKUP_SUFFIX
from cephstack.render.model import secret_uuid
from tests.data import openstack_options as known
from tests.integration.test_multicluster import RUNNING, cli
from tests.unit.test_clusters_render import CINDER_BACKEND, NOVA_LIBVIRT, read_oslo, strs

pytestmark = pytest.mark.slow

SPEC = """\
clusters:
  site-a: {{conf: {a.conf}, keyring: {a.admin_keyring}, connect_timeout: 3}}
  site-b: {{conf: {b.conf}, keyring: {b.admin_keyring}, connect_timeout: 3}}
pools:
  images:   {{cluster: site-a, pg_num: 8}}
  images-b: {{cluster: site-b, pg_num: 8}}
  volume:   {{cluster: site-a, pg_num: 8}}
  volume-b: {{cluster: site-b, pg_num: 8}}
  vm-b:     {{cluster: site-b, pg_num: 8}}
  backups:  {{cluster: site-a, pg_num: 8}}
services:
  glance:        {{user: glance, pools: [images, images-b]}}
  cinder-volume: {{user: cinder-volume, pools: [volume, volume-b]}}
  cinder-backup: {{user: cinder-backup, pool: backups}}
  nova:          {{user: nova, pool: vm-b, replace_existing: true}}  # qcow2 -> rbd
mirroring: {{primary: site-a, secondary: site-b, pools: [volume], schedule: 1m}}
keyrings: {{directory: {keys}}}
"""
ROLES = "controller, backup, compute-site-b, rbd-mirror-site-a, rbd-mirror-site-b"

GLANCE_CONF = """\
[DEFAULT]
bind_port = 9292
enabled_backends = fast:file

[glance_store]
default_backend = fast

[fast]
filesystem_store_datadir = /var/lib/glance/images

[database]
connection = mysql+pymysql://glance:s3cret@db/glance
"""
CINDER_CONF = """\
[DEFAULT]
transport_url = rabbit://openstack:s3cret@controller
enabled_backends = lvm
default_volume_type = lvm

[lvm]
volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver
volume_group = cinder-volumes
target_helper = lioadm
"""
NOVA_CONF = """\
[DEFAULT]
my_ip = 10.0.0.5

[libvirt]
virt_type = kvm
images_type = qcow2

[vnc]
enabled = true
"""


@pytest.fixture
def site(two_clusters, tmp_path):
    """The spec, the sites' fsids, and the host's etc directory."""
    a, b = two_clusters
    RUNNING[:] = [a.box, b.box]  # no cephx key of either in any output
    spec = tmp_path / "sites.yaml"
    spec.write_text(SPEC.format(a=a.box, b=b.box, keys=tmp_path / "keys"))
    fsids = {}
    for name, c in (("site-a", a), ("site-b", b)):
        with c.admin() as conn:
            fsids[name] = conn.fsid()
    etc = tmp_path / "etc"
    etc.mkdir()
    yield spec, fsids, etc
    RUNNING.clear()


def service_file(etc: Path, name: str, text: str) -> Path:
    """A service's own file: owned by another user, mode 0640."""
    path = etc / name
    path.write_text(text)
    os.chown(path, pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)
    os.chmod(path, 0o640)
    return path


def merge(spec: Path, path: Path, role: str, *extra: str) -> dict:
    run = cli(spec.parent, "render", "-f", str(spec), "--merge-into", str(path), "--role", role,
              "--output", "json", *extra)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)


def assert_kept_ownership(path: Path) -> None:
    st = path.stat()
    assert (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
            stat.S_IMODE(st.st_mode)) == ("nobody", "nogroup", 0o640), path


def test_central_role_gets_a_glance_store_and_a_cinder_backend_per_cluster(site):
    spec, fsids, etc = site
    glance = service_file(etc, "glance-api.conf", GLANCE_CONF)
    doc = merge(spec, glance, "controller")
    assert (doc["changed"], doc["role"], doc["clusters"]) == (True, "controller",
                                                              ["site-a", "site-b"])
    assert (etc / f"glance-api.conf{BACKUP_SUFFIX}").read_text() == GLANCE_CONF
    assert_kept_ownership(glance)
    stores = {c: strs(*known.GLANCE["<backend>"]) for c in fsids}
    conf = read_oslo(glance, {None: strs("enabled_backends", "bind_port"),
                              "glance_store": strs("default_backend"),
                              "fast": strs("filesystem_store_datadir"), **stores})
    assert conf.enabled_backends == "fast:file,site-a:rbd,site-b:rbd"
    assert conf.glance_store.default_backend == "fast"  # the spec does not claim the default
    assert conf.fast.filesystem_store_datadir == "/var/lib/glance/images"
    for cluster, pool in (("site-a", "images"), ("site-b", "images-b")):
        store = conf[cluster]
        assert (store.rbd_store_pool, store.rbd_store_ceph_conf, store.rbd_store_user) == (
            pool, f"/etc/ceph/{cluster}.conf", "glance")

    cinder = service_file(etc, "cinder.conf", CINDER_CONF)
    merge(spec, cinder, "controller")
    merge(spec, cinder, "backup")  # this host also runs cinder-backup: the two compose
    assert_kept_ownership(cinder)
    opts = {n: cfg.StrOpt for n in CINDER_BACKEND} | {"replication_device": cfg.MultiStrOpt}
    conf = read_oslo(cinder, {None: strs("enabled_backends", "default_volume_type",
                                         "backup_ceph_conf", "backup_ceph_pool"),
                              "lvm": strs("volume_driver", "volume_group"),
                              "rbd-volume": opts, "rbd-volume-b": opts})
    assert conf.enabled_backends == "lvm,rbd-volume,rbd-volume-b"
    assert conf.default_volume_type == "lvm"
    assert (conf.lvm.volume_driver, conf.lvm.volume_group) == (
        "cinder.volume.drivers.lvm.LVMVolumeDriver", "cinder-volumes")
    for section, cluster, pool in (("rbd-volume", "site-a", "volume"),
                                   ("rbd-volume-b", "site-b", "volume-b")):
        backend = conf[section]
        assert (backend.rbd_pool, backend.rbd_cluster_name, backend.rbd_ceph_conf,
                backend.backend_availability_zone, backend.rbd_secret_uuid) == (
            pool, cluster, f"/etc/ceph/{cluster}.conf", cluster,
            secret_uuid(fsids[cluster], "client.cinder-volume"))
    on_b = secret_uuid(fsids["site-b"], "client.cinder-volume")
    assert conf["rbd-volume"].replication_device == [
        f"backend_id:site-b,conf:/etc/ceph/site-b.conf,user:cinder-volume,secret_uuid:{on_b}"]
    assert (conf.backup_ceph_conf, conf.backup_ceph_pool) == ("/etc/ceph/site-a.conf",
                                                              "backups")
    again = merge(spec, cinder, "controller")
    assert again["changed"] is False


def test_edge_compute_gets_its_zone_pool_store_and_secret(site):
    spec, fsids, etc = site
    nova = service_file(etc, "nova.conf", NOVA_CONF)
    doc = merge(spec, nova, "compute-site-b")
    assert doc["clusters"] == ["site-b"]  # only the edge's own cluster is reached
    assert "+images_rbd_glance_store_name = site-b" in doc["diff"]
    assert_kept_ownership(nova)
    conf = read_oslo(nova, {None: strs("my_ip"), "libvirt": strs(*NOVA_LIBVIRT, "virt_type"),
                            "vnc": strs("enabled")})
    libvirt = conf.libvirt
    assert (libvirt.images_type, libvirt.images_rbd_pool, libvirt.images_rbd_ceph_conf,
            libvirt.images_rbd_glance_store_name, libvirt.rbd_user, libvirt.rbd_secret_uuid) == (
        "rbd", "vm-b", "/etc/ceph/site-b.conf", "site-b", "nova",
        secret_uuid(fsids["site-b"], "client.nova"))
    assert (libvirt.virt_type, conf.my_ip, conf.vnc.enabled) == ("kvm", "10.0.0.5", "true")
    text = cli(spec.parent, "render", "-f", str(spec), "--merge-into", str(nova),
               "--role", "compute-site-b")
    assert text.returncode == 0 and "No changes" in text.stdout


def test_dry_run_shows_the_diff_and_changes_nothing(site):
    spec, _, etc = site
    cinder = service_file(etc, "cinder.conf", CINDER_CONF)
    before = cinder.stat()
    doc = merge(spec, cinder, "controller", "--dry-run")
    assert doc["changed"] is True and doc["dry_run"] is True
    assert "+rbd_cluster_name = site-b" in doc["diff"]
    assert cinder.read_text() == CINDER_CONF
    assert cinder.stat().st_mtime_ns == before.st_mtime_ns
    assert not (etc / f"cinder.conf{BACKUP_SUFFIX}").exists()


@pytest.mark.parametrize(("role", "says"), [
    (None, "needs --role"), ("compute", "--role compute: no such role"),
    ("compute-site-b", "role compute-site-b has no glance settings")])
def test_role_missing_unknown_or_without_that_file_exits_2(site, role, says):
    spec, _, etc = site
    glance = service_file(etc, "glance-api.conf", GLANCE_CONF)
    args = ["render", "-f", str(spec), "--merge-into", str(glance)]
    run = cli(spec.parent, *args, *(("--role", role) if role else ()))
    assert run.returncode == 2, run.stdout + run.stderr
    assert says in run.stderr
    assert (ROLES if role != "compute-site-b" else "roles with glance settings: controller") \
        in run.stderr
    as_json = cli(spec.parent, *args, "--output", "json", *(("--role", role) if role else ()))
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["error"]["kind"] == "bad-arguments"
    assert glance.read_text() == GLANCE_CONF


def test_an_unreachable_cluster_fails_the_merge_with_nothing_written(site, two_clusters):
    spec, _, etc = site
    a, _ = two_clusters
    cinder = service_file(etc, "cinder.conf", CINDER_CONF)
    nova = service_file(etc, "nova.conf", NOVA_CONF)
    outage = a.outage()
    outage.cut()
    try:
        run = cli(spec.parent, "render", "-f", str(spec), "--merge-into", str(cinder),
                  "--role", "controller", "--output", "json")
        assert run.returncode == 3, run.stdout + run.stderr  # unreachable
        error = json.loads(run.stdout)["error"]
        assert error["kind"] == "unreachable"
        assert error["message"].startswith("cluster site-a: cannot reach the cluster")
        assert f"nothing merged: {cinder} is unchanged" in error["message"]
        assert "clusters.site-a" in error["hint"]
        assert cinder.read_text() == CINDER_CONF
        assert not (etc / f"cinder.conf{BACKUP_SUFFIX}").exists()
        # The edge compute's settings name only its own cluster: merged while site-a is down.
        assert merge(spec, nova, "compute-site-b")["changed"] is True
    finally:
        outage.restore()
