"""Hardening against a real sandbox: every command ends within its bound when a pool has no
OSD, the OSD or the monitor is frozen or killed; exit codes tell auth failures, timeouts,
unreachable clusters and a held lock apart; --output json is one document on errors;
SIGINT/SIGTERM end apply and verify with 130/143 and their cleanup; concurrent runs are
serialised or kept apart.

The tests share one sandbox and run in file order: the monitor is killed last.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cephstack.ceph import runlock
from cephstack.verify.model import MARKER

ROOT = Path(__file__).parents[2]
OP = 3  # --op-timeout in these tests
FAST = ["--op-timeout", str(OP), "--connect-timeout", "3"]
# What a command may take when something does not answer: connect, the call in flight,
# cleanup's first call, and Python's start-up, with room for a busy 2-core machine.
BOUND = 6 * OP + 10


# -- helpers -------------------------------------------------------------------------


def spawn(cluster, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cephstack", *args], cwd=cluster.workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def timed(cluster, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the CLI (no key check: the monitor may be frozen), timed."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "cephstack", *args], capture_output=True,
                          text=True, cwd=cluster.workdir, timeout=BOUND + 60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return proc, time.monotonic() - started


def no_keys_in(cluster, *texts: str) -> None:
    for key in cluster.keys():  # noqa: SIM118 - the cluster's cephx keys, not a dict
        assert all(key not in t for t in texts), "a key was printed"


def pid_of(cluster, daemon: str) -> int:
    return int((cluster.box.dir / "run" / f"{daemon}.pid").read_text())


@contextmanager
def frozen(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def wait_for_line(proc: subprocess.Popen[str], text: str, limit: float = 90) -> list[str]:
    """Read progress lines (stderr) until one holds `text`."""
    lines, deadline = [], time.monotonic() + limit
    for line in proc.stderr:
        lines.append(line)
        if text in line or time.monotonic() > deadline:
            break
    assert any(text in line for line in lines), "".join(lines)
    return lines


def small_spec(cluster, prefix: str) -> Path:
    """Two pools and two services of their own, so applying it always has work to do."""
    box, work = cluster.box, cluster.workdir
    path = work / f"{prefix}.yaml"
    path.write_text(
        f"cluster: {{conf: {box.conf}, keyring: {box.admin_keyring}}}\n"
        f"pools:\n  {prefix}-images: {{pg_num: 4}}\n  {prefix}-vm: {{pg_num: 4}}\n"
        f"services:\n  glance: {{user: {prefix}-glance, pool: {prefix}-images}}\n"
        f"  nova: {{user: {prefix}-nova, pool: {prefix}-vm}}\n"
        f"keyrings: {{directory: {work}/keys-{prefix}, mode: '0600'}}\n")
    return path


def leftovers(cluster, pools=("images", "volume", "backups", "vm")) -> list[str]:
    with cluster.admin() as conn:
        return [f"{p}/{n}" for p in pools for n in conn.rbd("list", p) if MARKER in n]


def lock_records(cluster) -> list[runlock.Holder]:
    with cluster.admin() as conn:
        return runlock.holders(conn)


def error_of(proc: subprocess.CompletedProcess[str]) -> dict:
    """The one JSON document of --output json; its error."""
    data = json.loads(proc.stdout)
    return data["error"]


@pytest.fixture(scope="module")
def spec(cluster):
    path = cluster.write_spec()
    done = cluster.cli("apply", "-f", str(path), "--yes")
    assert done.returncode == 0, done.stderr
    return path


# -- exit codes ----------------------------------------------------------------------


def test_a_wrong_key_is_an_authentication_failure(cluster, spec):
    wrong = cluster.workdir / "wrong.keyring"
    wrong.write_text("[client.admin]\n\tkey = AQBvaXJlAAAAABAAqrhbbsRxuFvqgJR0XlHZ9A==\n")
    proc, seconds = timed(cluster, "plan", "-f", str(spec), "--keyring", str(wrong))
    assert proc.returncode == 4, proc.stderr
    assert "authentication failed: the monitors refused client.admin" in proc.stderr
    assert "is a monitor running" not in proc.stderr and seconds < 10
    as_json, _ = timed(cluster, "audit", "-f", str(spec), "--keyring", str(wrong),
                       "--output", "json")
    assert as_json.returncode == 4 and error_of(as_json)["kind"] == "auth-failed"
    unknown, _ = timed(cluster, "verify", "-f", str(spec), "--id", "nobody")
    assert unknown.returncode == 4
    assert "holds no key for client.nobody" in unknown.stderr


def test_json_errors_are_one_document(cluster, spec):
    proc, _ = timed(cluster, "verify", "-f", str(spec), "--only", "swift", "--output", "json")
    assert proc.returncode == 1
    assert error_of(proc)["message"].startswith("--only swift")
    assert len(proc.stdout.strip().splitlines()) == 1


# -- the run lock --------------------------------------------------------------------


def test_a_held_lock_refuses_apply_and_verify_with_who_and_since(cluster, spec):
    changes = small_spec(cluster, "held")
    with cluster.admin() as conn, runlock.hold(conn, "apply", runlock.EXCLUSIVE) as held:
        proc, seconds = timed(cluster, "apply", "-f", str(changes), "--yes")
        assert proc.returncode == 6, proc.stderr
        assert (f"another run holds the cluster's cephstack lock: cephstack apply (pid "
                f"{os.getpid()} on") in proc.stderr
        assert "since" in proc.stderr and "--lock-wait" in proc.stderr
        assert seconds < 10
        verify, _ = timed(cluster, "verify", "-f", str(spec), "--only", "glance",
                          "--output", "json")
        assert verify.returncode == 6 and error_of(verify)["kind"] == "locked"
        assert error_of(verify)["holders"][0]["pid"] == os.getpid()
        assert [h.key for h in lock_records(cluster)] == [held.me.key]
        # refused before any change: not even the new pools, which a free lock lets
        # `apply --yes` create with its own record
        assert not [p for p in conn.mon("osd pool ls") if p.startswith("held-")]
    no_keys_in(cluster, proc.stdout, proc.stderr)
    # A holder that was killed does not block: its pid is gone on this host.
    dead = subprocess.Popen(["true"])
    dead.wait()
    with cluster.admin() as conn:
        stale = runlock.RunLock(conn, "apply", runlock.EXCLUSIVE)
        record = runlock.Holder(**{**stale.me.__dict__, "key": stale.me.key + "x",
                                   "pid": dead.pid})
        conn.mon("config-key set", key=record.key, val=record.value())
    done = cluster.cli("apply", "-f", str(changes), "--yes")
    assert done.returncode == 0, done.stderr
    assert lock_records(cluster) == []


def test_two_applies_at_once_take_turns(cluster, spec):
    first, second = small_spec(cluster, "turn1"), small_spec(cluster, "turn2")
    procs = [spawn(cluster, "apply", "-f", str(s), "--yes", "--lock-wait", "60")
             for s in (first, second)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for s in (first, second):
        again = cluster.cli("plan", "-f", str(s), "--detailed-exitcode")
        assert again.returncode == 0
    # Without waiting, the second is refused while the first holds the lock.
    third, fourth = small_spec(cluster, "turn3"), small_spec(cluster, "turn4")
    a = spawn(cluster, "apply", "-f", str(third), "--yes")
    wait_for_line(a, "+ pool turn3-")  # it holds the lock: it is changing the cluster
    # Paused there (rounds still to do), it holds the lock for as long as the second takes
    # to start: a live record of its own pid, whatever the machine's load.
    os.kill(a.pid, signal.SIGSTOP)
    try:
        assert [(h.pid, h.command) for h in lock_records(cluster)] == [(a.pid, "apply")]
        b, _ = timed(cluster, "apply", "-f", str(fourth), "--yes")
    finally:
        os.kill(a.pid, signal.SIGCONT)
    a.communicate(timeout=60)
    assert a.returncode == 0
    assert b.returncode == 6 and "another run holds" in b.stderr


def test_two_verifies_at_once_and_a_cleanup_meanwhile(cluster, spec):
    before = leftovers(cluster)
    one = spawn(cluster, "verify", "-f", str(spec), "--only", "cinder-volume")
    two = spawn(cluster, "verify", "-f", str(spec), "--only", "cinder-volume",
                "--output", "json")
    wait_for_line(one, "cinder-volume: snapshot")  # its images exist now
    cleanup, _ = timed(cluster, "verify", "-f", str(spec), "--cleanup")
    assert cleanup.returncode == 0, cleanup.stderr
    assert "Left alone: verify run(s) still running" in cleanup.stdout
    assert "image " not in cleanup.stdout  # nothing of the live runs was removed
    out_one, err_one = one.communicate(timeout=120)
    out_two, _ = two.communicate(timeout=120)
    assert one.returncode == 0, out_one + err_one
    assert two.returncode == 0 and json.loads(out_two)["passed"] is True
    assert leftovers(cluster) == before == []
    assert lock_records(cluster) == []


# -- bounded -------------------------------------------------------------------------


def test_pools_that_no_osd_serves(cluster, spec):
    """Pools moved onto an empty CRUSH root: every command ends within its bound, with
    an error that names the pool."""
    box, work = cluster.box, cluster.workdir
    dead = work / "dead.yaml"
    dead.write_text(
        f"cluster: {{conf: {box.conf}, keyring: {box.admin_keyring}}}\n"
        "pools:\n  dead-images: {pg_num: 8}\n  dead-volume: {pg_num: 8}\n"
        "services:\n  glance: {user: dead-glance, pool: dead-images}\n"
        "  cinder-volume: {user: dead-cinder, pools: [dead-volume]}\n"
        f"keyrings: {{directory: {work}/keys-dead, mode: '0600'}}\n")
    assert cluster.cli("apply", "-f", str(dead), "--yes").returncode == 0
    with cluster.admin() as conn:
        conn.mon("osd crush add-bucket", name="empty", type="root")
        conn.mon("osd crush rule create-replicated", name="empty-rule", root="empty",
                 type="osd")
        for pool in ("dead-images", "dead-volume"):
            conn.mon("osd pool set", pool=pool, var="crush_rule", val="empty-rule")
    try:
        verify, seconds = timed(cluster, "verify", "-f", str(dead), *FAST, "--output", "json")
        assert verify.returncode == 5, verify.stdout + verify.stderr
        assert seconds < BOUND
        report = json.loads(verify.stdout)
        assert report["error"]["kind"] == "timeout"
        assert "the OSDs of pool 'dead-images'" in report["error"]["message"]
        assert report["passed"] is False
        failed = [s for s in report["steps"] if s["result"] == "fail"]
        assert len(failed) == 1 and "did not answer" in failed[0]["cause"]  # not a caps finding
        cleanup, seconds = timed(cluster, "verify", "-f", str(dead), "--cleanup", *FAST)
        assert cleanup.returncode == 5 and "the OSDs of pool 'dead-" in cleanup.stderr
        assert seconds < BOUND
        audit, seconds = timed(cluster, "audit", "-f", str(dead), *FAST)
        assert audit.returncode != 0 and "dead-volume" in audit.stdout + audit.stderr
        assert seconds < BOUND
        # A new pool on the empty root: refused up front (1) or its init times out (5).
        grow = work / "dead-grow.yaml"
        grow.write_text(dead.read_text().replace(
            "  dead-volume: {pg_num: 8}\n",
            "  dead-volume: {pg_num: 8}\n  dead-new: {pg_num: 8, crush_rule: empty-rule}\n"))
        apply, seconds = timed(cluster, "apply", "-f", str(grow), "--yes", *FAST)
        assert apply.returncode in (1, 5) and "dead-new" in apply.stderr, apply.stderr
        assert seconds < BOUND
    finally:
        with cluster.admin() as conn:
            for pool in set(conn.mon("osd pool ls")) & {"dead-images", "dead-volume",
                                                        "dead-new"}:
                conn.mon("osd pool rm", pool=pool, pool2=pool, yes_i_really_really_mean_it=True)
    no_keys_in(cluster, verify.stdout, verify.stderr)


def test_a_frozen_osd(cluster, spec):
    more = small_spec(cluster, "more")
    with frozen(pid_of(cluster, "osd.0")):
        apply, seconds = timed(cluster, "apply", "-f", str(more), "--yes", *FAST,
                               "--output", "json")
        assert apply.returncode == 5, apply.stdout + apply.stderr
        assert seconds < BOUND
        error = error_of(apply)
        assert error["kind"] == "timeout" and "the OSDs of pool 'more-" in error["message"]
        assert error["done"] and error["failures"]  # what was done, what timed out
        verify, seconds = timed(cluster, "verify", "-f", str(spec), "--only", "glance", *FAST)
        assert verify.returncode == 5 and seconds < BOUND
        assert "Verify stopped early: timed out after 3 s waiting for the OSDs of pool " \
               "'images'" in verify.stdout
        audit, seconds = timed(cluster, "audit", "-f", str(spec), *FAST)
        assert audit.returncode == 5 and seconds < BOUND
        assert "the OSDs of pool 'volume'" in audit.stderr
    again = cluster.cli("apply", "-f", str(more), "--yes")
    assert again.returncode == 0, again.stderr
    cleanup = cluster.cli("verify", "-f", str(spec), "--cleanup")
    assert cleanup.returncode == 0 and leftovers(cluster) == []


def test_a_frozen_monitor_mid_command(cluster, spec):
    mon = pid_of(cluster, "mon.a")
    verify = spawn(cluster, "verify", "-f", str(spec), "--only", "cinder-volume", *FAST)
    try:
        wait_for_line(verify, "cinder-volume: create volume")
        with frozen(mon):
            started = time.monotonic()
            out, err = verify.communicate(timeout=BOUND + 30)
            seconds = time.monotonic() - started
            audit, audit_seconds = timed(cluster, "audit", "-f", str(spec), *FAST)
    finally:
        verify.kill()
    assert verify.returncode == 5, out + err
    assert seconds < BOUND
    assert "Verify stopped early: timed out after 3 s waiting for the monitors" in out
    assert "Cleanup incomplete: timed out after 3 s waiting for the monitors" in out
    assert "verify --cleanup" in out
    assert audit.returncode == 3 and audit_seconds < BOUND  # never reached: unreachable
    no_keys_in(cluster, out, err)
    cleanup = cluster.cli("verify", "-f", str(spec), "--cleanup")
    assert cleanup.returncode == 0, cleanup.stderr
    assert "image volume/volume-" in cleanup.stdout and leftovers(cluster) == []

    more = small_spec(cluster, "frozenmon")
    apply = spawn(cluster, "apply", "-f", str(more), "--yes", *FAST)
    try:
        wait_for_line(apply, ": done")
        with frozen(mon):
            started = time.monotonic()
            out, err = apply.communicate(timeout=BOUND + 30)
            seconds = time.monotonic() - started
    finally:
        apply.kill()
    assert apply.returncode == 5, err
    assert seconds < BOUND and "waiting for the monitors" in err
    assert cluster.cli("apply", "-f", str(more), "--yes").returncode == 0


# -- signals -------------------------------------------------------------------------


def wait_pgs_active(cluster, limit: float = 30) -> None:
    """Until the manager reports every PG active. (A pool whose PGs are still being
    created cannot have its `rbd pool init` checked; a re-run right then would leave it.)"""
    deadline = time.monotonic() + limit
    with cluster.admin() as conn:
        while time.monotonic() < deadline:
            pgmap = conn.mon("status")["pgmap"]
            pgs = sum(p["pg_num"] for p in conn.mon("osd pool ls", detail="detail"))
            states = pgmap.get("pgs_by_state", [])
            if pgmap.get("num_pgs") == pgs and all(
                    "active" in s["state_name"].split("+") for s in states):
                return
            time.sleep(0.5)


def _keys(cluster, users: list[str]) -> dict[str, str]:
    with cluster.admin() as conn:
        auth = {e["entity"]: e["key"] for e in conn.mon("auth ls")["auth_dump"]}
    return {u: auth[u] for u in users if u in auth}


@pytest.mark.parametrize("trial", range(6))
def test_signals_during_apply(cluster, spec, trial):
    sig = (signal.SIGINT, signal.SIGTERM)[trial % 2]
    prefix = f"sig{trial}"
    path = small_spec(cluster, prefix)
    users = [f"client.{prefix}-glance", f"client.{prefix}-nova"]
    proc = spawn(cluster, "apply", "-f", str(path), "--yes")
    time.sleep(random.uniform(0.3, 3.0))
    started = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    seconds = time.monotonic() - started
    if proc.returncode != 0:  # 0: it had finished before the signal
        assert proc.returncode == 128 + sig, err
        assert seconds <= 2.0
        assert f"interrupted by {sig.name}" in err
    before = _keys(cluster, users)
    wait_pgs_active(cluster)
    again = cluster.cli("apply", "-f", str(path), "--yes")
    assert again.returncode == 0, again.stderr
    after = _keys(cluster, users)
    assert {u: after[u] for u in before} == before  # keys never change
    for user in users:
        text = (cluster.workdir / f"keys-{prefix}" / f"ceph.{user}.keyring").read_text()
        assert after[user] in text
    plan = cluster.cli("plan", "-f", str(path), "--detailed-exitcode")
    assert plan.returncode == 0, (plan.stdout, again.stdout, again.stderr, err)
    assert lock_records(cluster) == []
    no_keys_in(cluster, out, err)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_during_verify(cluster, spec, sig):
    proc = spawn(cluster, "verify", "-f", str(spec), "--op-timeout", "10")
    time.sleep(random.uniform(1.0, 8.0))
    started = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    seconds = time.monotonic() - started
    assert proc.returncode == 128 + sig, err
    assert seconds < 2 * 10 + 20  # its cleanup's bound
    assert leftovers(cluster) == [] and lock_records(cluster) == []
    no_keys_in(cluster, out, err)


# -- last: the monitor dies ------------------------------------------------------------


def test_a_killed_monitor(cluster, spec):
    verify = spawn(cluster, "verify", "-f", str(spec), "--only", "cinder-volume", *FAST)
    try:
        wait_for_line(verify, "cinder-volume: create volume")
        os.kill(pid_of(cluster, "mon.a"), signal.SIGKILL)
        started = time.monotonic()
        out, err = verify.communicate(timeout=BOUND + 30)
        seconds = time.monotonic() - started
    finally:
        verify.kill()
    assert verify.returncode == 5, out + err
    assert seconds < BOUND
    assert "Verify stopped early: timed out after 3 s waiting for the monitors" in out
    for args in (("apply", "-f", str(spec), "--yes"), ("verify", "-f", str(spec), "--cleanup"),
                 ("audit", "-f", str(spec))):
        proc, seconds = timed(cluster, *args, *FAST, "--output", "json")
        assert proc.returncode == 3 and error_of(proc)["kind"] == "unreachable", args
        assert seconds < BOUND
