"""A run that stops because the cluster did not answer: the error names what did not answer
and the step the run was in (text and JSON, one closing `error:` line), and once the
monitors left a call unanswered no later call waits for them again. No cluster: pure
logic (the adapter's bookkeeping of lost monitors, with a stand-in connection)."""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time

import pytest

from cephstack.ceph import failures
from cephstack.ceph.clusteraccess import ClusterAccess
from cephstack.errors import ClusterUnreachable, OpTimedOut, StoppedInStep
from cephstack.spec.load import parse_spec
from cephstack.verify.model import FAIL, StepResult, VerifyReport
from cephstack.verify.runner import Runner

STEP = "cinder-volume: create volume [rbd-volume]"


def mon_timeout() -> OpTimedOut:
    return failures.typed_error("rbd create", 110, "no answer", "client.admin", "the monitors",
                                3)  # type: ignore[return-value]


def test_a_stop_names_what_did_not_answer_and_the_step_keeping_kind_and_exit_code():
    stopped = StoppedInStep(mon_timeout(), STEP)
    assert stopped.message.startswith("timed out after 3 s waiting for the monitors")
    assert stopped.message.endswith(f"verify stopped in step '{STEP}'")
    assert stopped.exit_code == 5 and stopped.kind == "timeout"
    data = stopped.as_json()
    assert data["step"] == STEP and data["waited_for"] == "the monitors"
    unreachable = StoppedInStep(ClusterUnreachable("cannot reach"), "nova: create a guest disk")
    assert unreachable.exit_code == 3 and unreachable.as_json()["kind"] == "unreachable"


def test_the_runner_remembers_the_step_that_found_the_cluster_not_answering():
    runner = Runner()

    def dead() -> str:
        raise mon_timeout()

    runner.step("glance", "upload image", lambda: "ok")
    with pytest.raises(OpTimedOut):
        runner.step("cinder-volume", "create volume [rbd-volume]", dead)
    assert runner.stopped_in == STEP


def test_the_closing_error_line_and_the_json_error_name_the_step(monkeypatch, capsys):
    from cephstack.commands import verify as command
    from cephstack.verify import fleet, run

    failed = StepResult("cinder-volume", "create volume [rbd-volume]", FAIL, 3.0,
                        error=mon_timeout().message)

    def stopped_run(spec, admin, only, progress, lock_wait, evacuate_wait):
        progress.step_done(failed)
        return VerifyReport("abcd1234", steps=[failed],
                            aborted=StoppedInStep(mon_timeout(), STEP))

    monkeypatch.setattr(run, "run_verify", stopped_run)
    monkeypatch.setattr(command, "load_spec_of", lambda args: parse_spec(
        "cluster: {conf: /c, keyring: /k}\npools: {volume: {}}\n"
        "services: {cinder-volume: {user: cinder, pool: volume}}\n"))
    monkeypatch.setattr(fleet, "connect", lambda settings, spec: contextlib.nullcontext())
    for output in ("text", "json"):
        args = argparse.Namespace(cleanup=False, only=None, lock_wait=0.0,
                                  evacuate_wait=False, output=output)
        assert command.cmd_verify(args) == 5
        out, err = capsys.readouterr()
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert errors == [f"error: timed out after 3 s waiting for the monitors ('rbd "
                          f"create': no answer); verify stopped in step '{STEP}'"]
        assert err.splitlines()[-1].startswith("  hint: a monitor may be down")
        if output == "json":
            assert json.loads(out)["error"]["step"] == STEP


# -- one timeout to know the monitors are gone ---------------------------------------


class Conn:
    """What failures.py reads of a connection."""

    def __init__(self, conf: str) -> None:
        self.access = ClusterAccess(conf, op_timeout=30)
        self.interruptible = False
        self.monitors_lost = False

    def in_background(self, what: str, call) -> None:
        threading.Thread(target=call, daemon=True).start()


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "ceph.conf"
    path.write_text("[global]\n")
    yield str(path)
    failures.reached(ClusterAccess(str(path)), None)


def test_after_a_monitor_timeout_every_connection_to_it_fails_at_once(conf, tmp_path):
    other = tmp_path / "other.conf"
    other.write_text("[global]\n")
    first, second = Conn(conf), Conn(conf)
    failures.before_call(second, "osd pool ls")  # nothing lost yet: sent
    assert failures.note_timeout(first, "rbd create", "the monitors", None) is True
    started = time.monotonic()
    with pytest.raises(OpTimedOut) as refused:
        failures.before_call(second, "osd pool ls")  # another connection, same monitors
    assert time.monotonic() - started < 0.5
    assert refused.value.waited_for == "the monitors"
    assert "('osd pool ls': not sent: they did not answer 'rbd create'" in refused.value.message
    failures.before_call(Conn(str(other)), "osd pool ls")  # another cluster: sent
    failures.reached(first.access, None)  # a new connection reached them: sent again
    failures.before_call(second, "osd pool ls")


def test_an_osd_timeout_is_not_a_lost_monitor(conf):
    conn = Conn(conf)
    assert failures.note_timeout(conn, "write", "the OSDs of pool 'vm'", None) is False
    failures.before_call(conn, "osd pool ls")


def test_a_snapshot_timeout_asks_the_monitors_briefly_to_tell(conf, monkeypatch):
    monkeypatch.setattr(failures, "PROBE_SECONDS", 0.3)
    conn = Conn(conf)
    asked: list[str] = []
    waited = "the monitors or the OSDs of pool 'vm'"
    assert failures.note_timeout(conn, "create_snap", waited,
                                 lambda cmd, inbuf: asked.append(cmd)) is False
    assert json.loads(asked[0])["prefix"] == "mon stat"
    failures.before_call(conn, "osd pool ls")  # they answered: the OSDs were slow
    started = time.monotonic()
    assert failures.note_timeout(conn, "create_snap", waited,
                                 lambda cmd, inbuf: threading.Event().wait(5)) is True
    assert time.monotonic() - started < 2  # the probe's bound, not the op timeout
    with pytest.raises(OpTimedOut):
        failures.before_call(conn, "osd pool ls")
