"""Hardening without a cluster: exit codes and JSON errors, the run lock's protocol (with a
fake config-key store), names verify can clean up by, safe points for signals."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cephstack import interrupt
from cephstack.cli import main
from cephstack.errors import (
    EXIT_AUTH,
    EXIT_LOCKED,
    EXIT_TIMEOUT,
    CephstackError,
    Interrupted,
    LockHeld,
    OpTimedOut,
    PermissionDenied,
)

ROOT = Path(__file__).parents[2]


# -- exit codes and JSON errors ------------------------------------------------------


def test_errors_have_kinds_and_codes():
    timeout = OpTimedOut("osd pool create", errno.ETIMEDOUT, "timed out", "the monitors", 5,
                         hint="check the monitors")
    assert timeout.exit_code == EXIT_TIMEOUT and timeout.kind == "timeout"
    assert "timed out after 5 s waiting for the monitors" in str(timeout)
    assert timeout.as_json() == {
        "kind": "timeout", "message": timeout.message, "hint": "check the monitors",
        "command": "osd pool create", "errno": errno.ETIMEDOUT, "waited_for": "the monitors",
        "seconds": 5}
    assert PermissionDenied("auth get", 13, "denied").kind == "permission-denied"
    assert LockHeld("held").exit_code == EXIT_LOCKED
    assert Interrupted(signal.SIGTERM).exit_code == 143
    assert not issubclass(Interrupted, Exception)  # `except Exception` must not swallow it


def test_an_apply_that_timed_out_exits_as_a_timeout():
    from cephstack.session.apply import ApplyFailed

    slow = OpTimedOut("write_full on pool dead", errno.ETIMEDOUT, "", "the OSDs of pool 'dead'",
                      3, hint="its placement groups may have no up OSD")
    failed = ApplyFailed(["+ pool dead: done"], [("+ pool dead: rbd pool init", slow)])
    assert failed.exit_code == EXIT_TIMEOUT and failed.kind == "timeout"
    assert "pool 'dead'" in failed.message and "no up OSD" in failed.hint
    data = failed.as_json()
    assert data["done"] == ["+ pool dead: done"]
    assert data["failures"][0]["waited_for"] == "the OSDs of pool 'dead'"
    other = ApplyFailed([], [("x", CephstackError("boom"))])
    assert other.exit_code == 1


def test_json_output_on_errors_is_one_document(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text("pools:\n  images: {pg_num: 32}\nservices:\n  nova: {user: nova, pool: vm}\n")
    assert main(["plan", "-f", str(spec), "--output", "json"]) == 2
    out = capsys.readouterr().out
    error = json.loads(out)["error"]
    assert error["kind"] == "invalid-spec" and "pool 'vm' is not declared" in error["message"]
    missing = tmp_path / "s.yaml"
    missing.write_text("cluster: {conf: /nonexistent/ceph.conf}\n")
    assert main(["verify", "-f", str(missing), "--output", "json"]) == 3
    out = capsys.readouterr().out
    assert json.loads(out)["error"]["kind"] == "unreachable"
    assert len(out.strip().splitlines()) == 1


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["apply", "--help"])
    out = capsys.readouterr().out
    for line in (f"{EXIT_AUTH}  authentication failed", f"{EXIT_TIMEOUT}  timed out mid-run",
                 f"{EXIT_LOCKED}  another cephstack run holds", "130/143  interrupted",
                 "--op-timeout SECONDS", "--lock-wait SECONDS"):
        assert line in out


def _unreachable_cluster(tmp_path: Path) -> Path:
    """A spec whose monitor address has nothing listening: connecting waits in librados."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf, keyring = tmp_path / "ceph.conf", tmp_path / "admin.keyring"
    conf.write_text(f"[global]\nmon host = v2:127.0.0.1:{port}\nauth client required = cephx\n")
    keyring.write_text("[client.admin]\n\tkey = AQBvaXJlAAAAABAAqrhbbsRxuFvqgJR0XlHZ9A==\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"cluster: {{conf: {conf}, keyring: {keyring}, connect_timeout: 60}}\n"
                    "pools: {images: {pg_num: 8}}\n")
    return spec


def test_a_signal_during_a_librados_call_ends_with_128_plus_signal(tmp_path):
    spec = _unreachable_cluster(tmp_path)
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen([sys.executable, "-m", "cephstack", "apply", "-f", str(spec),
                                 "--yes", "--output", "json"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)  # connecting: inside librados, in the command's thread
        started = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 128 + sig, err
        assert time.monotonic() - started < 2
        error = json.loads(out)["error"]
        assert error["kind"] == "interrupted" and error["signal"] == signal.Signals(sig).name


def test_an_unreachable_cluster_is_told_within_the_connect_timeout(tmp_path, capsys):
    spec = _unreachable_cluster(tmp_path)
    started = time.monotonic()
    assert main(["plan", "-f", str(spec), "--connect-timeout", "1"]) == 3
    assert time.monotonic() - started < 5
    assert "cannot reach the cluster" in capsys.readouterr().err


# -- interrupt safe points -----------------------------------------------------------


def test_safe_points_raise_once_a_signal_is_recorded():
    interrupt.reset()
    interrupt.check()
    interrupt.request(signal.SIGTERM)
    with pytest.raises(Interrupted) as e:
        interrupt.check()
    assert e.value.exit_code == 143
    started = time.monotonic()
    with pytest.raises(Interrupted):
        interrupt.sleep(30)
    assert time.monotonic() - started < 1
    interrupt.reset()
    assert interrupt.requested() is None


# -- names verify cleans up by ---------------------------------------------------------


def test_run_ids_are_read_back_from_names():
    from cephstack.verify.model import MARKER, RunNames, probe_name, run_of

    names = RunNames()
    for made in (names.uuid(), f"volume-{names.uuid()}", f"{names.uuid()}_disk",
                 f"volume-{names.uuid()}.backup.{names.uuid()}", names.probe()):
        assert run_of(made) == names.run_id
    assert MARKER in probe_name("0123abcd") and run_of(probe_name("0123abcd")) == "0123abcd"
    assert run_of("volume-3f0e5d3c-1c4b-4c7e-9f3e-6f1b2a3c4d5e") is None  # a real uuid4


# -- the run lock --------------------------------------------------------------------


class FakeStore:
    """The monitors' config-key store, as the lock uses it."""

    def __init__(self) -> None:
        self.kv: dict[str, str] = {}
        self.monitors_lost = False
        self.access = type("Access", (), {"client": "client.admin"})()

    def mon(self, prefix: str, **args: object) -> object:
        if prefix == "config-key set":
            self.kv[str(args["key"])] = str(args["val"])
        elif prefix == "config-key rm":
            self.kv.pop(str(args["key"]), None)
        elif prefix == "config-key dump":
            return {k: v for k, v in self.kv.items() if k.startswith(str(args["key"]))}
        return None


def _record(store: FakeStore, key: str, **fields: object) -> None:
    now = time.time()
    data = {"command": "apply", "mode": "exclusive", "host": socket.gethostname(),
            "pid": os.getpid(), "pid_start": None, "since": now - 60, "renewed": now,
            "ttl": 90.0, "run": None, **fields}
    store.kv[f"cephstack/lock/{key}"] = json.dumps(data)


def test_lock_is_taken_and_released():
    from cephstack.ceph import runlock

    store = FakeStore()
    with runlock.hold(store, "apply", runlock.EXCLUSIVE) as lock:  # type: ignore[arg-type]
        assert list(store.kv) == [lock.me.key]
        assert json.loads(store.kv[lock.me.key])["command"] == "apply"
    assert store.kv == {}


def test_a_live_holder_refuses_with_who_and_since():
    from cephstack.ceph import runlock

    store = FakeStore()
    from cephstack.ceph.runlock import _pid_start

    _record(store, "other", pid=os.getppid(), pid_start=_pid_start(os.getppid()))
    with pytest.raises(LockHeld) as e:
        runlock.RunLock(store, "apply", runlock.EXCLUSIVE).acquire()  # type: ignore[arg-type]
    assert "another run holds the cluster's cephstack lock: cephstack apply" in e.value.message
    assert f"pid {os.getppid()} on {socket.gethostname()}" in e.value.message
    assert "since" in e.value.message and "--lock-wait" in e.value.hint
    assert list(store.kv) == ["cephstack/lock/other"]  # ours was withdrawn
    # A verify shares with verifies, not with an apply.
    with pytest.raises(LockHeld):
        runlock.RunLock(store, "verify", runlock.SHARED).acquire()  # type: ignore[arg-type]


def test_verifies_share_the_lock():
    from cephstack.ceph import runlock

    store = FakeStore()
    with (runlock.hold(store, "verify", runlock.SHARED, run="aaaa0000"),  # type: ignore[arg-type]
          runlock.hold(store, "verify", runlock.SHARED, run="bbbb1111")):  # type: ignore[arg-type]
        assert len(store.kv) == 2
        with pytest.raises(LockHeld):
            runlock.RunLock(store, "apply", runlock.EXCLUSIVE).acquire()  # type: ignore[arg-type]


def test_a_killed_holder_does_not_block():
    from cephstack.ceph import runlock

    store = FakeStore()
    dead = subprocess.Popen(["true"])
    dead.wait()
    _record(store, "dead-here", pid=dead.pid, pid_start="1")  # this host: its pid is gone
    _record(store, "old-elsewhere", host="elsewhere", renewed=time.time() - 600)
    with runlock.hold(store, "apply", runlock.EXCLUSIVE) as lock:  # type: ignore[arg-type]
        assert list(store.kv) == [lock.me.key]  # stale records removed on the way
    _record(store, "live-elsewhere", host="elsewhere", renewed=time.time() - 5)
    with pytest.raises(LockHeld):
        runlock.RunLock(store, "apply", runlock.EXCLUSIVE).acquire()  # type: ignore[arg-type]


def test_waiting_for_the_lock_takes_it_when_freed():
    import threading

    from cephstack.ceph import runlock

    store = FakeStore()
    _record(store, "busy", host="elsewhere", renewed=time.time())
    threading.Timer(1.0, lambda: store.kv.pop("cephstack/lock/busy")).start()
    started = time.monotonic()
    with runlock.hold(store, "apply", runlock.EXCLUSIVE, wait=10):  # type: ignore[arg-type]
        assert 0.9 < time.monotonic() - started < 5
