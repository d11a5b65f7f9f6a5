"""Run as root against a real sandbox: keyring paths holding links, FIFOs or duplicated
sections, unsafe keyring directories, umask 000; and the sandbox itself with several OSDs,
stopping only its own processes."""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cephstack.keyfiles import keyring_key
from cephstack.sandbox.cluster import Sandbox
from cephstack.spec.defaults import DEFAULT_SPEC

pytestmark = pytest.mark.slow

SERVICE_USERS = ("glance", "cinder-volume", "cinder-backup", "nova")
NOBODY = 65534
FAKE_KEY = "AQ" + base64.b64encode(b"\x01" * 28).decode()  # well-formed, in no cluster


def spec_for(cluster, name: str, keydir: Path, extra: str = "") -> Path:
    text = DEFAULT_SPEC.replace("/var/openstack/ceph", str(keydir))
    if extra:
        text = text.replace("  # owner: root\n  # group: root", extra)
    return cluster.write_spec(name, text)


def cluster_key(cluster, entity: str) -> str:
    with cluster.admin() as conn:
        return next(e["key"] for e in conn.mon("auth ls")["auth_dump"] if e["entity"] == entity)


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    os.chmod(path, 0o750)
    return path


@pytest.fixture(scope="module")
def applied(cluster):
    """The default spec applied once: the pools and users exist; tests then point keyrings
    at directories of their own."""
    spec = spec_for(cluster, "cephstack.yaml", cluster.workdir / "keys")
    done = cluster.cli("apply", "-f", str(spec), "--yes")
    assert done.returncode == 0, done.stderr
    return spec


def test_a_symlink_at_a_keyring_path_is_refused_and_its_target_untouched(cluster, applied):
    keydir = private_dir(cluster.workdir / "keys-symlink")
    # Everything matches except the mode and owner: what once made apply chmod/chown the
    # link's target (here a stand-in for /etc/shadow).
    target = cluster.workdir / "precious"
    target.write_text((cluster.workdir / "keys" / "ceph.client.glance.keyring").read_text())
    os.chown(target, NOBODY, NOBODY)
    os.chmod(target, 0o644)
    before = target.read_bytes()
    link = keydir / "ceph.client.glance.keyring"
    link.symlink_to(target)
    spec = spec_for(cluster, "symlink.yaml", keydir, "  owner: root\n  group: root")
    for command in (("plan", "-f", str(spec)), ("apply", "-f", str(spec), "--yes")):
        out = cluster.cli(*command)
        assert out.returncode == 1, out.stdout + out.stderr
        assert f"{link} is a symbolic link to {target}" in out.stderr
    st = os.lstat(target)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o644, NOBODY, NOBODY)
    assert target.read_bytes() == before
    assert link.is_symlink() and os.listdir(keydir) == [link.name]


def test_a_fifo_at_a_keyring_path_makes_plan_fail_promptly(cluster, applied):
    keydir = private_dir(cluster.workdir / "keys-fifo")
    fifo = keydir / "ceph.client.nova.keyring"
    os.mkfifo(fifo)
    spec = spec_for(cluster, "fifo.yaml", keydir)
    for command in (("plan", "-f", str(spec)), ("audit", "-f", str(spec)),
                    ("apply", "-f", str(spec), "--yes")):
        started = time.monotonic()
        out = cluster.cli(*command)
        assert time.monotonic() - started < 30, "blocked on the FIFO"
        assert out.returncode in (1, 2), out.stdout + out.stderr
        assert f"{fifo} is a FIFO" in out.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_world_writable_keyring_directory_is_refused_and_audited(cluster, applied):
    keydir = private_dir(cluster.workdir / "keys-open")
    os.chmod(keydir, 0o777)
    spec = spec_for(cluster, "open.yaml", keydir)
    plan = cluster.cli("plan", "-f", str(spec))
    assert plan.returncode == 1
    assert (f"Refused: keyring directory {keydir} is writable by group or others (mode 0777)"
            in plan.stdout)
    apply = cluster.cli("apply", "-f", str(spec), "--yes")
    assert apply.returncode == 1 and "the plan cannot be applied" in apply.stderr
    assert os.listdir(keydir) == []  # no keyring written
    audit = cluster.cli("audit", "-f", str(spec), "--output", "json")
    assert audit.returncode == 2
    findings = {(f["id"], f["entity"]) for f in json.loads(audit.stdout)["findings"]}
    assert ("keyring-dir-writable", str(keydir)) in findings
    os.chmod(keydir, 0o750)
    fixed = cluster.cli("apply", "-f", str(spec), "--yes")
    assert fixed.returncode == 0, fixed.stderr


@pytest.mark.parametrize("real_key_last", [True, False])
def test_a_duplicated_keyring_section_is_drift_and_apply_fixes_it(cluster, applied,
                                                                  real_key_last):
    keydir = private_dir(cluster.workdir / f"keys-dup-{real_key_last}")
    spec = spec_for(cluster, f"dup-{real_key_last}.yaml", keydir)
    assert cluster.cli("apply", "-f", str(spec), "--yes").returncode == 0
    path = keydir / "ceph.client.glance.keyring"
    real = cluster_key(cluster, "client.glance")
    sections = [f"[client.glance]\n\tkey = {FAKE_KEY}\n", f"[client.glance]\n\tkey = {real}\n"]
    path.write_text("".join(sections if real_key_last else reversed(sections)))
    plan = cluster.cli("plan", "-f", str(spec), "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert f"~ keyring {path}" in plan.stdout
    assert ("several sections for client.glance (Ceph uses the last)" if real_key_last
            else "key differs from the cluster's") in plan.stdout
    assert FAKE_KEY not in plan.stdout + plan.stderr
    done = cluster.cli("apply", "-f", str(spec), "--yes")
    assert done.returncode == 0, done.stderr
    assert path.read_text().count("[client.glance]") == 1
    assert keyring_key(path.read_text(), "client.glance").reveal() == real
    assert cluster.cli("plan", "-f", str(spec), "--detailed-exitcode").returncode == 0


def test_umask_000_apply_writes_nothing_group_or_world_writable(cluster, applied):
    keydir = cluster.workdir / "umask0" / "keys"  # both levels missing: apply creates them
    spec = spec_for(cluster, "umask0.yaml", keydir)
    saved = cluster.workdir / "umask0.plan.json"
    new_spec = cluster.workdir / "umask0-init" / "cephstack.yaml"
    old = os.umask(0)
    try:
        done = cluster.cli("apply", "-f", str(spec), "--yes")
        planned = cluster.cli("plan", "-f", str(spec), "--out", str(saved))
        init = cluster.cli("init", "--out", str(new_spec))
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    assert planned.returncode == 0 and init.returncode == 0, planned.stderr + init.stderr
    for d in (keydir.parent, keydir):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o750
    files = sorted(keydir.iterdir())
    assert [f.name for f in files] == sorted(f"ceph.client.{u}.keyring" for u in SERVICE_USERS)
    assert {stat.S_IMODE(os.stat(f).st_mode) for f in files} == {0o600}
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(new_spec).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(new_spec.parent).st_mode) == 0o755
    again = cluster.cli("plan", "-f", str(spec), "--out", str(saved))
    assert again.returncode == 1 and "--force" in again.stderr


def test_unknown_keyring_owner_is_refused_before_anything_changes(cluster, applied):
    keydir = private_dir(cluster.workdir / "keys-owner")
    spec = spec_for(cluster, "owner.yaml", keydir, "  owner: no-such-user-x\n  group: root")
    plan = cluster.cli("plan", "-f", str(spec))
    assert plan.returncode == 1
    assert "Refused: keyrings.owner: no user 'no-such-user-x' on this host" in plan.stdout
    assert cluster.cli("apply", "-f", str(spec), "--yes").returncode == 1
    assert os.listdir(keydir) == []


# -- the sandbox ----------------------------------------------------------------------


def _pg_states(conn) -> dict[str, int]:
    summary = conn.mon("pg stat")["pg_summary"]
    return {s["name"]: s["num"] for s in summary["num_pg_by_state"]}


def test_sandbox_with_three_osds(cluster, tmp_path):
    box = Sandbox(tmp_path / "three")
    try:
        started = time.monotonic()
        up = cluster.cli("sandbox", "up", "--dir", str(box.dir), "--osds", "3")
        assert up.returncode == 0, up.stderr
        assert time.monotonic() - started < 60
        status = box.status()
        assert list(status.running) == ["mon.a", "mgr.x", "osd.0", "osd.1", "osd.2"]
        assert status.up
        with box.connect(10) as conn:
            assert conn.mon("osd stat")["num_up_osds"] == 3
            nodes = conn.mon("osd crush tree")["nodes"]
            classes = {n["name"]: n.get("device_class") for n in nodes if n["type"] == "osd"}
            assert classes == {"osd.0": "hdd", "osd.1": "ssd", "osd.2": "hdd"}
            hosts = [n for n in nodes if n["type"] == "host"]
            assert len(hosts) == 1 and sorted(hosts[0]["children"]) == [0, 1, 2]
            conn.mon("osd pool create", pool="three", pg_num=8, pgp_num=8,
                     pool_type="replicated", size=3)
            placed = conn.mon("osd map", pool="three", object="probe")
            assert sorted(placed["up"]) == [0, 1, 2]  # one replica on each OSD
            # The sandbox's rule allows the sizes it can place (sandboxmake.crush_map).
            rule = conn.mon("osd crush rule dump", name="replicated_rule")
            assert (rule["min_size"], rule["max_size"]) == (1, 3)
            deadline = time.monotonic() + 90
            while (states := _pg_states(conn)) != {"active+clean": sum(states.values())}:
                assert time.monotonic() < deadline, f"PGs not active+clean: {states}"
                time.sleep(0.5)
        # One OSD stopped and started again, as tests of degraded clusters do.
        assert box.stop_daemon("osd.1")
        assert box.status().running["osd.1"] is None
        with box.connect(10) as conn:
            assert conn.mon("osd stat")["num_up_osds"] == 2
        box.start_daemon("osd.1")
        assert box.status().up
        pids = [p for p in box.status().running.values() if p]
        ours_before = cluster.box.status().running
        down = cluster.cli("sandbox", "down", "--dir", str(box.dir))
        assert down.returncode == 0
        assert down.stdout.strip() == "stopped: osd.0, osd.1, osd.2, mgr.x, mon.a"
        for pid in pids:
            assert not Path(f"/proc/{pid}/cmdline").exists() or \
                str(box.conf).encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert not list((box.dir / "run").glob("*.pid"))
        assert cluster.box.status().running == ours_before  # the other sandbox still runs
    finally:
        box.down()


def _process(argv0: str, *args: str) -> subprocess.Popen:
    """A Python process whose command line reads `argv0 - args...` (it sleeps)."""
    proc = subprocess.Popen([argv0, "-", *args], executable=sys.executable,
                            stdin=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"import time\ntime.sleep(120)\n")
    proc.stdin.close()
    return proc


def test_sandbox_down_kills_only_processes_naming_its_conf(cluster, tmp_path):
    d = tmp_path / "stopped"
    for sub in ("run", "mon.a", "mgr.x", "osd.0", "osd.1"):
        (d / sub).mkdir(parents=True)
    (d / "ceph.conf").write_text("[global]\nmon host = v2:127.0.0.1:1\n")
    conf = str(d / "ceph.conf")
    sleeper = subprocess.Popen(["sleep", "120"])
    other_osd = _process("ceph-osd", "-i", "1", "-c", str(tmp_path / "elsewhere.conf"))
    own_mgr = _process("ceph-mgr", "-i", "x", "-c", conf)  # names this conf: it is ours
    procs = (sleeper, other_osd, own_mgr)
    try:
        for name, proc in (("osd.0", sleeper), ("osd.1", other_osd), ("mgr.x", own_mgr)):
            (d / "run" / f"{name}.pid").write_text(f"{proc.pid}\n")
        (d / "run" / "mon.a.pid").write_text("999999999\n")  # a dead daemon's
        down = cluster.cli("sandbox", "down", "--dir", str(d), check_keys=False)
        assert down.returncode == 0, down.stderr
        assert down.stdout.strip() == "stopped: mgr.x"
        assert sleeper.poll() is None and other_osd.poll() is None
        assert own_mgr.wait(10) == -signal.SIGTERM
        assert not list((d / "run").glob("*.pid"))  # stale or stopped: all removed
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
