"""The release-sensitive paths on Pacific, Reef and Tentacle sandboxes (docs/releases.md):
the seed spec through apply (new keys of the cluster's preferred type, Tentacle's aes256k),
re-plan (no changes), verify, audit (clean) and `rotate glance`; on Tentacle, an aes user is
reported and rotated to aes256k; a sandbox that fails to start leaves nothing running.

A release whose root is not built is skipped, unless CEPHSTACK_BUILD_RELEASES=1 asks to
build it (about 2 minutes and 1 GB each, as root). cephstack runs where the release's
python3-rados is: the host's for the host's own release, else in the release's root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cephstack.ceph.cephx import key_type_name
from cephstack.errors import CephstackError
from cephstack.sandbox.cluster import Sandbox
from cephstack.sandbox.release import ReleaseError, built, cli_argv, ensure_root, uses_host
from cephstack.spec.defaults import DEFAULT_SPEC

RELEASES = ("pacific", "reef", "tentacle")
PREFERRED = {"pacific": "aes", "reef": "aes", "tentacle": "aes256k"}  # measured
USERS = ("client.glance", "client.cinder-volume", "client.cinder-backup", "client.nova")
PROJECT = Path(__file__).parents[2]


def _skip_unless_available(name: str) -> None:
    if uses_host(name) or built(name) or os.environ.get("CEPHSTACK_BUILD_RELEASES") == "1":
        return
    pytest.skip(f"the {name} root is not built: `python -m cephstack.sandbox.release build "
                f"{name}` (about 2 minutes, 1 GB), or CEPHSTACK_BUILD_RELEASES=1")


@dataclass
class ReleaseCluster:
    name: str
    box: Sandbox
    workdir: Path

    def mon(self, prefix: str, **args):
        with self.box.connect() as conn:
            return conn.mon(prefix, **args)

    def keys(self) -> dict[str, str]:
        return {e["entity"]: e["key"] for e in self.mon("auth ls")["auth_dump"]}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real CLI, with this release's python3-rados; asserts no key was printed."""
        if self.box.root is None:
            argv = [sys.executable, "-m", "cephstack", *args]
            env = {**os.environ, "PYTHONPATH": str(PROJECT)}
        else:
            argv, env = cli_argv(self.name, args, [self.workdir], self.workdir)
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=self.workdir,
                              env=env, timeout=300)
        for key in self.keys().values():
            assert key not in proc.stdout and key not in proc.stderr, "a key was printed"
        return proc

    def write_spec(self) -> Path:
        text = (DEFAULT_SPEC.replace("/etc/ceph/ceph.conf", str(self.box.conf))
                .replace("/etc/ceph/ceph.client.admin.keyring", str(self.box.admin_keyring))
                .replace("/var/openstack/ceph", str(self.workdir / "keys")))
        path = self.workdir / "cephstack.yaml"
        path.write_text(text)
        return path

    def file_key(self, entity: str) -> str:
        text = (self.workdir / "keys" / f"ceph.{entity}.keyring").read_text()
        return next(line.split("=", 1)[1].strip() for line in text.splitlines()
                    if line.strip().startswith("key"))


@pytest.fixture(scope="module", params=RELEASES)
def release_cluster(request, tmp_path_factory) -> Iterator[ReleaseCluster]:
    name = request.param
    _skip_unless_available(name)
    root = tmp_path_factory.mktemp(name)
    box = Sandbox(root / "sandbox", release=name)
    try:
        box.up()
        yield ReleaseCluster(name, box, root)
    finally:
        box.down()


def _ok(proc: subprocess.CompletedProcess[str], code: int = 0) -> str:
    assert proc.returncode == code, proc.stdout + proc.stderr
    return proc.stdout


def test_apply_creates_every_user_with_the_clusters_key_type(release_cluster):
    c, kind = release_cluster, PREFERRED[release_cluster.name]
    spec = c.write_spec()
    plan = json.loads(_ok(c.cli("plan", "-f", str(spec), "--output", "json")))
    created = [a for a in plan["actions"] if a["kind"] == "create_client"]
    assert {a["address"] for a in created} == set(USERS)
    for action in created:  # plan shows the key type each new user gets
        assert {"field": "key type", "after": kind}.items() <= \
            next(ch for ch in action["changes"] if ch["field"] == "key type").items()
    _ok(c.cli("apply", "-f", str(spec), "--yes"))
    keys = c.keys()
    for entity in USERS:
        assert key_type_name(keys[entity]) == kind
        assert c.file_key(entity) == keys[entity]


def test_replan_verify_and_audit_are_clean(release_cluster):
    c = release_cluster
    spec = c.workdir / "cephstack.yaml"
    assert "No changes" in _ok(c.cli("plan", "-f", str(spec), "--detailed-exitcode"))
    assert "0 failed" in _ok(c.cli("verify", "-f", str(spec)))
    assert "Audit clean" in _ok(c.cli("audit", "-f", str(spec), "--keyring-dir",
                                      str(c.workdir / "keys")))


def test_rotate_glance_gives_a_new_key_of_the_same_kind(release_cluster):
    c, kind = release_cluster, PREFERRED[release_cluster.name]
    spec = c.workdir / "cephstack.yaml"
    before = c.keys()
    _ok(c.cli("rotate", "glance", "-f", str(spec), "--yes"))
    after = c.keys()
    assert after["client.glance"] != before["client.glance"]
    assert key_type_name(after["client.glance"]) == kind
    assert c.file_key("client.glance") == after["client.glance"]
    assert {e: after[e] for e in USERS[1:]} == {e: before[e] for e in USERS[1:]}
    assert "0 failed" in _ok(c.cli("verify", "-f", str(spec), "--only", "glance"))


def test_an_aes_user_on_tentacle_is_reported_then_rotated(release_cluster):
    c = release_cluster
    if c.name != "tentacle":
        pytest.skip("only Tentacle has a key type other than aes (and the health check)")
    spec = c.workdir / "cephstack.yaml"
    # A cluster upgraded from an aes release: aes may still authenticate and be made.
    c.mon("mon set", name="auth_allowed_ciphers", value="aes,aes256k")
    c.mon("config set", who="mon", name="mon_auth_allow_insecure_key", value="true")
    caps = c.mon("auth get", entity="client.glance")[0]["caps"]
    c.mon("auth rm", entity="client.glance")
    c.mon("auth get-or-create", entity="client.glance", key_type="aes",
          caps=[w for pair in sorted(caps.items()) for w in pair])
    assert key_type_name(c.keys()["client.glance"]) == "aes"
    _ok(c.cli("apply", "-f", str(spec), "--yes"))  # the keyring file takes the aes key
    audit = c.cli("audit", "-f", str(spec), "--output", "json")
    found = [f for f in json.loads(_ok(audit, 1))["findings"]
             if f["id"] == "insecure-key-type"]
    assert [f["entity"] for f in found] == ["client.glance"]
    assert "AUTH_INSECURE_CLIENT_KEY_TYPE" in found[0]["what"]
    plan = json.loads(_ok(c.cli("plan", "-f", str(spec), "--output", "json")))
    assert any("insecure-key-type" in n and "client.glance" in n for n in plan["notes"])
    _ok(c.cli("rotate", "glance", "-f", str(spec), "--yes"))
    assert key_type_name(c.keys()["client.glance"]) == "aes256k"
    assert "Audit clean" in _ok(c.cli("audit", "-f", str(spec)))
    assert "0 failed" in _ok(c.cli("verify", "-f", str(spec), "--only", "glance"))


def _ours_running(directory: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(directory / "ceph.conf").encode() in args:
                found.append(args[0].decode())
    return found


@pytest.mark.parametrize("name", RELEASES)
def test_a_sandbox_that_fails_to_start_stops_what_it_started(name, tmp_path, monkeypatch):
    _skip_unless_available(name)
    box = Sandbox(tmp_path / "sandbox", release=name)

    def broken(*_args):  # the OSD fails after the monitor and manager run
        raise CephstackError("osd mkfs failed (injected)")

    monkeypatch.setattr(Sandbox, "_make_osd", broken)
    with pytest.raises(CephstackError, match="injected"):
        box.up()
    assert _ours_running(box.dir) == []
    assert box.status().running == {"mon.a": None, "mgr.x": None, "osd.0": None}


def test_a_build_that_fails_leaves_nothing_to_reuse(tmp_path, monkeypatch):
    if os.geteuid() != 0 or not Path("/usr/share/debootstrap/scripts/sid").exists():
        pytest.skip("building a root needs root and debootstrap")
    monkeypatch.setenv("CEPHSTACK_RELEASES_DIR", str(tmp_path))
    monkeypatch.setenv("CEPHSTACK_RELEASES_MIRROR", "http://127.0.0.1:9/debian")  # no mirror
    with pytest.raises(ReleaseError, match="failed at: debootstrap trixie from http://127.0.0.1:9"):
        ensure_root("reef")
    assert [p.name for p in tmp_path.iterdir()] == [".reef.lock"]
    assert built("reef") is None
