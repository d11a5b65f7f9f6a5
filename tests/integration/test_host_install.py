"""Bundles where they land: `host install --root R` for each role, then, in a mount namespace
whose /etc/ceph is R/etc/ceph, each service's own Unix user (not root) connects with the
default keyring search and lists its pool. The same for kolla's layout as kolla copies it.
Renaming a user and removing a service leave no stale rendered file."""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from cephstack.ceph.libversion import local_version
from tests.data import kolla_facts

PROBE = """
import sys, rados, rbd
entity, pool = sys.argv[1:3]
# conffile="" and no keyring option: librados's default search, as the services do.
cluster = rados.Rados(conffile="", rados_id=entity.removeprefix("client."),
                      conf={"client_mount_timeout": "10", "rados_mon_op_timeout": "10"})
cluster.connect(timeout=10)
with cluster.open_ioctx(pool) as ioctx:
    print(len(rbd.RBD().list(ioctx)))
cluster.shutdown()
"""
SERVICE_USERS = ("glance", "cinder", "nova", "libvirt-qemu")
GLANCE_CONF = "[DEFAULT]\nbind_port = 9292\n[glance_store]\nstores = file,http\n" \
              "default_store = file\nfilesystem_store_datadir = /var/lib/glance/images/\n"
CINDER_CONF = "[DEFAULT]\nenabled_backends = lvm\ndefault_volume_type = lvm\n[lvm]\n" \
              "volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver\n"
NOVA_CONF = "[DEFAULT]\nmy_ip = 10.0.0.5\n[libvirt]\nvirt_type = kvm\n"


@pytest.fixture(scope="module")
def unix_users():
    """The services' Unix users (and QEMU's group kvm), created for the test if missing
    and removed after: only those this test created."""
    made_users, made_groups = [], []
    try:
        for group in ("kvm",):
            with contextlib.suppress(KeyError):
                grp.getgrnam(group)
                continue
            subprocess.run(["groupadd", "--system", group], check=True)
            made_groups.append(group)
        for user in SERVICE_USERS:
            with contextlib.suppress(KeyError):
                pwd.getpwnam(user)
                continue
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                            "--shell", "/usr/sbin/nologin", user], check=True)
            made_users.append(user)
        yield
    finally:
        for user in made_users:
            subprocess.run(["userdel", user], check=False)
        for group in made_groups:
            subprocess.run(["groupdel", group], check=False)


@pytest.fixture(scope="module")
def hosts():
    """Roots for the fake hosts, traversable by the service users (pytest's are 0700)."""
    base = Path(tempfile.mkdtemp(prefix="cephstack-hosts-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def applied(cluster, unix_users):
    spec = cluster.write_spec()
    out = cluster.workdir / "out"
    spec.write_text(spec.read_text() + f"\nrender: {{directory: {out}}}\n")
    proc = cluster.cli("apply", "-f", str(spec), "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # apply rendered every bundle (missing files are drift): nothing left to do.
    assert cluster.cli("plan", "-f", str(spec), "--detailed-exitcode").returncode == 0
    return spec, out


def _host_root(hosts: Path, role: str) -> Path:
    root = hosts / role
    for path, text, group in (("etc/glance/glance-api.conf", GLANCE_CONF, "glance"),
                              ("etc/cinder/cinder.conf", CINDER_CONF, "cinder"),
                              ("etc/nova/nova.conf", NOVA_CONF, "nova")):
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        os.chown(target, 0, grp.getgrnam(group).gr_gid)
        os.chmod(target, 0o640)
    os.chmod(root, 0o755)
    return root


def _connect_in_namespace(etc_ceph: Path, unix_user: str, entity: str, pool: str):
    """As `unix_user`, in a mount namespace where /etc/ceph is `etc_ceph`."""
    script = 'mount --bind "$1" /etc/ceph && exec runuser -u "$2" -- /usr/bin/python3 -c "$3" ' \
             '"$4" "$5"'
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                           "sh", str(etc_ceph), unix_user, PROBE, entity, pool],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("role, users", [
    ("controller", [("glance", "client.glance", "images"),
                    ("cinder", "client.cinder-volume", "volume")]),
    ("backup", [("cinder", "client.cinder-backup", "backups"),
                ("cinder", "client.cinder-volume", "volume")]),
    ("compute", [("nova", "client.nova", "vm")]),
])
def test_installed_bundle_works_for_each_service_user(cluster, applied, hosts, role, users):
    _, out = applied
    root = _host_root(hosts, role)
    dry = cluster.cli("host", "install", str(out / role), "--root", str(root), "--dry-run",
                      "--output", "json")
    assert dry.returncode == 0, dry.stderr
    assert not (root / "etc/ceph/ceph.conf").exists()  # a dry run writes nothing
    found = json.loads(dry.stdout)  # this host's Ceph client, each service's key type
    mine = local_version()
    assert (found["key_support"]["version"], found["key_support"]["aes256k"]) == \
        (mine.version, mine.aes256k)
    assert {s["entity"]: (s["key_type"], s["usable"]) for s in found["services"]} == \
        {e: ("aes", True) for _, e, _ in users}
    proc = cluster.cli("host", "install", str(out / role), "--root", str(root), "--output",
                       "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["changed"] and report["checks"] and all(c["ok"] for c in report["checks"])
    assert {c["unix_user"] for c in report["checks"]} >= {u for u, _, _ in users}
    for unix_user, entity, _ in users:
        keyring = root / "etc/ceph" / f"ceph.{entity}.keyring"
        st = keyring.stat()
        assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0
        assert grp.getgrgid(st.st_gid).gr_name == unix_user
    assert "keyring" not in (root / "etc/ceph/ceph.conf").read_text()
    qemu = "admin socket" in (root / "etc/ceph/ceph.conf").read_text()
    assert qemu == (role == "compute")  # QEMU-only settings on compute hosts only
    if role == "compute":
        for d in ("var/run/ceph/guests", "var/log/qemu"):
            st = (root / d).stat()
            assert pwd.getpwuid(st.st_uid).pw_name == "libvirt-qemu"
            assert stat.S_IMODE(st.st_mode) == 0o750
    # The service files keep their owner and mode, and their other backends.
    for conf in root.glob("etc/*/*.conf"):
        if conf.parent.name != "ceph":
            assert stat.S_IMODE(conf.stat().st_mode) == 0o640
    if role == "controller":
        cinder = (root / "etc/cinder/cinder.conf").read_text()
        assert "enabled_backends = lvm,rbd-volume" in cinder
        assert "default_volume_type = lvm" in cinder
    again = json.loads(cluster.cli("host", "install", str(out / role), "--root", str(root),
                                   "--output", "json").stdout)
    assert not again["changed"] and again["restart"] == []
    for unix_user, entity, pool in users:
        proc = _connect_in_namespace(root / "etc/ceph", unix_user, entity, pool)
        assert proc.returncode == 0, f"{unix_user} as {entity}: {proc.stderr[-600:]}"
        as_root = subprocess.run(["runuser", "-u", "nobody", "--", "test", "-r",
                                  str(root / "etc/ceph" / f"ceph.{entity}.keyring")])
        assert as_root.returncode != 0  # others cannot read the key


def test_install_refuses_before_any_change_when_a_user_is_missing(cluster, applied, hosts):
    spec, out = applied
    root = _host_root(hosts, "missing-user")
    manifest = json.loads((out / "controller" / "MANIFEST.json").read_text())
    bundle = hosts / "bundle-copy"
    shutil.copytree(out / "controller", bundle)
    manifest["checks"][0]["unix_user"] = "no-such-service-user"
    (bundle / "MANIFEST.json").write_text(json.dumps(manifest))
    proc = cluster.cli("host", "install", str(bundle), "--root", str(root))
    assert proc.returncode == 1
    assert "no-such-service-user" in proc.stderr and "nothing was changed" in proc.stderr
    assert not (root / "etc/ceph").exists()


KOLLA_CONTAINERS = {  # container -> (its Unix user, [(entity, pool)], files kolla copies)
    "glance-api": ("glance", [("client.glance", "images")],
                   ["glance/ceph.conf", "glance/ceph.client.glance.keyring"]),
    "cinder-volume": ("cinder", [("client.cinder-volume", "volume")],
                      ["cinder/ceph.conf",
                       "cinder/cinder-volume/ceph.client.cinder-volume.keyring"]),
    "cinder-backup": ("cinder", [("client.cinder-backup", "backups"),
                                 ("client.cinder-volume", "volume")],
                      ["cinder/ceph.conf", "cinder/cinder-backup/ceph.client.cinder-volume.keyring",
                       "cinder/cinder-backup/ceph.client.cinder-backup.keyring"]),
    "nova-compute": ("nova", [("client.nova", "vm")],
                     ["nova/ceph.conf", "nova/ceph.client.nova.keyring"]),
}


def test_kolla_layout_works_as_kolla_copies_it(cluster, applied, hosts):
    spec, _ = applied
    kolla = cluster.workdir / "kolla"
    proc = cluster.cli("render", "-f", str(spec), "--format", "kolla", "--out", str(kolla))
    assert proc.returncode == 0, proc.stderr
    config = kolla / "config"
    # The file names are those kolla reads (tests/data/kolla_facts.py, both releases).
    for release in kolla_facts.RELEASES.values():
        for service, entry in release["files"].items():
            for template in entry.get("ceph_conf_merged", [])[:1] + entry.get("keyrings", []):
                if service.startswith("nova"):
                    continue
                users = {"cluster": "ceph", "user": {"glance-api": "glance"}.get(
                    service, "cinder-volume"), "cinder_user": "cinder-volume",
                    "backup_user": "cinder-backup"}
                if service == "cinder-backup" and "backup_user" not in template:
                    users["user"] = "cinder-volume"
                assert (config / template.format(**users)).is_file(), template
    assert "show_image_direct_url = True" in (config / "glance.conf").read_text()
    for container, (unix_user, reach, files) in KOLLA_CONTAINERS.items():
        etc_ceph = hosts / "kolla" / container / "etc/ceph"
        etc_ceph.mkdir(parents=True)
        uid = pwd.getpwnam(unix_user).pw_uid
        for rel in files:  # as kolla's set_configs: owned by the service, 0600
            target = etc_ceph / Path(rel).name
            shutil.copyfile(config / rel, target)
            os.chown(target, uid, -1)
            os.chmod(target, 0o600)
        assert "keyring" not in (etc_ceph / "ceph.conf").read_text()
        for entity, pool in reach:
            proc = _connect_in_namespace(etc_ceph, unix_user, entity, pool)
            assert proc.returncode == 0, f"{container} as {entity}: {proc.stderr[-600:]}"


def test_renaming_a_user_and_removing_a_service_leave_no_stale_file(cluster, applied):
    spec, out = applied
    text = spec.read_text()
    edited = cluster.workdir / "renamed.yaml"
    edited.write_text(text.replace("  nova:\n    user: nova\n", "  nova:\n    user: nova2\n")
                      .replace("  cinder-backup: {user: cinder-backup, pool: backups}\n", ""))
    plan = cluster.cli("plan", "-f", str(edited), "--output", "json")
    assert plan.returncode == 0, plan.stderr
    actions = {a["address"]: a["symbol"] for a in json.loads(plan.stdout)["actions"]}
    assert actions[f"file {out}/compute/etc/ceph/ceph.client.nova.keyring"] == "-"
    assert actions[f"file {out}/backup/etc/ceph/ceph.client.cinder-backup.keyring"] == "-"
    assert actions[f"file {out}/compute/fragments/nova.conf"] == "~"
    assert cluster.cli("apply", "-f", str(edited), "--yes").returncode == 0
    index = json.loads((out / "RENDERED.json").read_text())["files"]
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert on_disk == sorted([*index, "RENDERED.json"])
    assert (out / "compute/etc/ceph/ceph.client.nova2.keyring").is_file()
    assert not (out / "backup").exists()
    assert cluster.cli("plan", "-f", str(edited), "--detailed-exitcode").returncode == 0


def test_compute_install_defines_the_libvirt_secrets(cluster, applied, hosts, libvirtd):
    import libvirt

    _, out = applied
    root = _host_root(hosts, "compute-libvirt")
    uuids = [s["uuid"] for s in json.loads((out / "compute/MANIFEST.json").read_text())[
        "secrets"]]
    try:
        proc = cluster.cli("host", "install", str(out / "compute"), "--root", str(root),
                           "--libvirt-uri", libvirtd, "--output", "json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert {s["uuid"]: s["changed"] for s in json.loads(proc.stdout)["secrets"]} == \
            dict.fromkeys(uuids, True)
        again = cluster.cli("host", "install", str(out / "compute"), "--root", str(root),
                            "--libvirt-uri", libvirtd, "--output", "json")
        assert not json.loads(again.stdout)["changed"]
    finally:
        conn = libvirt.open(libvirtd)
        for uuid in uuids:
            with contextlib.suppress(libvirt.libvirtError):
                conn.secretLookupByUUIDString(uuid).undefine()


def test_a_merge_that_would_break_a_service_file_changes_nothing(cluster, applied, hosts):
    _, out = applied
    root = _host_root(hosts, "conflict")
    cinder = root / "etc/cinder/cinder.conf"
    cinder.write_text("[DEFAULT]\nenabled_backends = ceph\n[ceph]\n"
                      "volume_driver = cinder.volume.drivers.rbd.RBDDriver\nrbd_pool = volume\n")
    before = cinder.read_text()
    proc = cluster.cli("host", "install", str(out / "controller"), "--root", str(root))
    assert proc.returncode == 1
    assert "[ceph] is already the Ceph backend of pool volume" in proc.stderr
    assert "nothing was changed" in proc.stderr
    assert not (root / "etc/ceph").exists() and cinder.read_text() == before
    assert "rbd" not in (root / "etc/glance/glance-api.conf").read_text()
