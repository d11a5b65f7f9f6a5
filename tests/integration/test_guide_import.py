"""Importing the layout of Ceph's own rbd-openstack guide: pools images, volumes, vms and
backups; client.glance, client.cinder (used by Cinder and by Nova) and client.cinder-backup,
made with the guide's commands; cinder.conf and nova.conf as the guide writes them."""

from __future__ import annotations

import json
import subprocess

import pytest

from cephstack.spec.load import load_spec

SECRET = "457eb676-33da-42ec-9a8c-9293d545c337"
CINDER_CONF = f"""\
[DEFAULT]
enabled_backends = ceph
glance_api_version = 2
backup_driver = cinder.backup.drivers.ceph
backup_ceph_conf = /etc/ceph/ceph.conf
backup_ceph_user = cinder-backup
backup_ceph_chunk_size = 134217728
backup_ceph_pool = backups
backup_ceph_stripe_unit = 0
backup_ceph_stripe_count = 0
restore_discard_excess_bytes = true

[ceph]
volume_driver = cinder.volume.drivers.rbd.RBDDriver
volume_backend_name = ceph
rbd_pool = volumes
rbd_ceph_conf = /etc/ceph/ceph.conf
rbd_flatten_volume_from_snapshot = false
rbd_max_clone_depth = 5
rbd_store_chunk_size = 4
rados_connect_timeout = -1
rbd_user = cinder
rbd_secret_uuid = {SECRET}
"""
NOVA_CONF = f"""\
[libvirt]
images_type = rbd
images_rbd_pool = vms
images_rbd_ceph_conf = /etc/ceph/ceph.conf
rbd_user = cinder
rbd_secret_uuid = {SECRET}
disk_cachemodes="network=writeback"
inject_password = false
inject_key = false
inject_partition = -2
hw_disk_discard = unmap
"""
USERS = {
    "glance": ["mon", "profile rbd", "osd", "profile rbd pool=images",
               "mgr", "profile rbd pool=images"],
    "cinder": ["mon", "profile rbd", "osd", "profile rbd pool=volumes, profile rbd pool=vms, "
               "profile rbd-read-only pool=images",
               "mgr", "profile rbd pool=volumes, profile rbd pool=vms"],
    "cinder-backup": ["mon", "profile rbd", "osd", "profile rbd pool=backups",
                      "mgr", "profile rbd pool=backups"],
}


@pytest.fixture(scope="module")
def guide(cluster):
    """The guide's commands, as it gives them, through the ceph and rbd CLIs."""
    conf = ["-c", str(cluster.box.conf), "-k", str(cluster.box.admin_keyring)]
    for pool in ("volumes", "images", "backups", "vms"):
        subprocess.run(["ceph", *conf, "osd", "pool", "create", pool], check=True,
                       capture_output=True)
        subprocess.run(["rbd", *conf, "pool", "init", pool], check=True, capture_output=True)
    for user, caps in USERS.items():
        subprocess.run(["ceph", *conf, "auth", "get-or-create", f"client.{user}", *caps],
                       check=True, capture_output=True)
    (cluster.workdir / "cinder.conf").write_text(CINDER_CONF)
    (cluster.workdir / "nova.conf").write_text(NOVA_CONF)
    return ["--conf", str(cluster.box.conf), "--keyring", str(cluster.box.admin_keyring),
            "--cinder-conf", "cinder.conf", "--nova-conf", "nova.conf"]


@pytest.mark.parametrize("fix", [True, False])
def test_nova_shares_cinders_user_on_its_own_pool(cluster, guide, fix):
    out = f"guide-{'fix' if fix else 'as-is'}.yaml"
    proc = cluster.cli("import", *guide, *(["--fix"] if fix else []), "--out", out, "--force")
    assert proc.returncode == 0, proc.stderr
    spec = load_spec(str(cluster.workdir / out))
    assert spec.services["cinder-volume"].user == "cinder"
    assert spec.services["cinder-volume"].pools == ("volumes",)  # no backend on Nova's pool
    assert (spec.services["nova"].user, spec.services["nova"].pools) == ("cinder", ("vms",))
    assert (spec.services["glance"].pools, spec.services["cinder-backup"].pools) == (
        ("images",), ("backups",))
    assert sorted(spec.pools) == ["backups", "images", "vms", "volumes"]
    plan = json.loads(cluster.cli("plan", "-f", out, "--output", "json").stdout)
    assert plan["refusals"] == []
    # The guide's caps are the least-privilege ones: nothing to fix, nothing else either;
    # but nothing purges the trash of Cinder's pool: --fix gives it the default schedule
    # (audit's trash-not-purged), as-is writes `trash_purge: off`.
    fixes = [("set_trash_purge_schedule", "trash_purge.volumes")] if fix else []
    assert [(a["kind"], a["address"]) for a in plan["actions"]] == fixes, plan["actions"]


def test_render_gives_a_compute_bundle_and_no_cinder_backend_on_novas_pool(cluster, guide):
    assert cluster.cli("import", *guide, "--fix", "--out", "guide.yaml",
                       "--force").returncode == 0
    proc = cluster.cli("render", "-f", "guide.yaml", "--out", "bundles")
    assert proc.returncode == 0, proc.stderr
    bundles = cluster.workdir / "bundles"
    nova = (bundles / "compute" / "fragments" / "nova.conf").read_text()
    assert "images_rbd_pool = vms" in nova and "rbd_user = cinder" in nova
    assert f"rbd_secret_uuid = {SECRET}" in nova
    cinder = (bundles / "controller" / "fragments" / "cinder.conf").read_text()
    assert "rbd_pool = volumes" in cinder and "rbd_pool = vms" not in cinder
    assert f"rbd_secret_uuid = {SECRET}" in cinder
