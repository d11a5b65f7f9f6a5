"""verify's progress (one line per finished step, a live line during waits), the runner's
lanes, and Cinder's backends as verify names them. No cluster: pure logic."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import threading

import pytest

from cephstack.errors import CephCommandError, OpTimedOut, PermissionDenied
from cephstack.spec.load import parse_spec
from cephstack.verify.model import FAIL, PASS, SKIP, StepResult, VerifyReport
from cephstack.verify.progress import ERASE, Progress, step_line
from cephstack.verify.runner import Explanation, Runner


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def progress(tty: bool) -> tuple[Progress, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    return Progress(out, tty=tty, every=5.0, clock=clock, ticker=False), out, clock


PASSED = StepResult("cinder-volume", "create volume [rbd-fast]", PASS, 0.034, backend="rbd-fast")
ONE_CLUSTER = parse_spec("cluster: {conf: /c, keyring: /k}\npools: {images: {}}\n"
                         "services: {glance: {user: glance, pool: images}}\n")


def test_a_step_line_has_result_name_and_time_and_a_failure_its_error():
    assert step_line(PASSED) == "  PASS  cinder-volume: create volume [rbd-fast]  0.03 s"
    failed = StepResult("nova", "create a guest disk", FAIL, 1.5, error="errno 1: denied")
    assert step_line(failed) == "  FAIL  nova: create a guest disk  1.50 s: errno 1: denied"
    skipped = StepResult("nova", "direct snapshot", SKIP, 0.0, detail="off")
    assert step_line(skipped) == "  SKIP  nova: direct snapshot  0.00 s: off"


def test_not_a_tty_no_carriage_returns_and_at_most_one_wait_line_every_few_seconds():
    p, out, clock = progress(tty=False)
    p.step_done(PASSED)
    with p.waiting("the second host to write to vm/x_disk"):
        for _ in range(4):  # a short wait shows nothing
            clock.now += 1
            p.tick()
        assert out.getvalue().count("waiting") == 0
        for _ in range(60):  # 30 s more, ticked every half second
            clock.now += 0.5
            p.tick()
    p.step_done(PASSED)
    p.close()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    waits = [line for line in lines if "waiting" in line]
    assert waits[0] == "  waiting 5 s for the second host to write to vm/x_disk"
    assert 5 <= len(waits) <= 7  # 34 s of waiting: one line per 5 s, not one per tick
    assert lines[0] == lines[-1] == step_line(PASSED)


def test_on_a_tty_the_live_line_is_rewritten_in_place_and_steps_print_above_it():
    p, out, clock = progress(tty=True)
    with p.waiting("the run lock"):
        p.tick()
        clock.now += 3
        p.tick()
        p.tick()  # unchanged: not redrawn
        p.step_done(PASSED)
    p.close()
    text = out.getvalue()
    assert text.count("\n") == 1  # the step; the live line never ends a line
    assert (f"{ERASE}  waiting 0 s for the run lock"
            f"{ERASE}  waiting 3 s for the run lock"
            f"{ERASE}{step_line(PASSED)}\n  waiting 3 s for the run lock"
            f"{ERASE}") == text
    assert text.endswith(ERASE)  # left clean when the wait ended


def test_the_live_line_is_cut_to_the_terminal_width():
    out, clock = io.StringIO(), Clock()
    p = Progress(out, tty=True, clock=clock, ticker=False, width=30)
    with p.waiting("the second host to write to vm/0123456789abcdef_disk"):
        p.tick()
    first = out.getvalue().split(ERASE)[1]
    assert first == "  waiting 0 s for the second…" and len(first) == 29


def test_several_waits_share_the_one_live_line():
    p, _, clock = progress(tty=True)
    with p.waiting("A"):
        clock.now += 2
        with p.waiting("B"):
            clock.now += 1
            assert p.live_line(clock.now) == "  waiting 3 s for A; 1 s for B"
        assert p.live_line(clock.now) == "  waiting 3 s for A"
    assert p.live_line(clock.now) == ""


def test_the_ticker_thread_redraws_and_stops():
    out = io.StringIO()
    p = Progress(out, tty=True)
    with p.waiting("something"):
        threading.Event().wait(0.6)
    p.close()
    assert "waiting 0 s for something" in out.getvalue()
    assert p._thread is None


def test_json_output_keeps_stdout_one_document_and_progress_on_stderr(monkeypatch, capsys):
    from cephstack.commands import verify as command
    from cephstack.verify import fleet, run

    def fake_run_verify(spec, admin, only, progress, lock_wait, evacuate_wait):
        progress.step_done(PASSED)
        with progress.waiting("the second host"):
            progress.tick()
        return VerifyReport("abcd1234", steps=[PASSED])

    monkeypatch.setattr(run, "run_verify", fake_run_verify)
    monkeypatch.setattr(command, "load_spec_of", lambda args: ONE_CLUSTER)
    monkeypatch.setattr(fleet, "connect", lambda settings, spec: contextlib.nullcontext())
    args = argparse.Namespace(cleanup=False, only=None, lock_wait=0.0, evacuate_wait=False,
                              output="json")
    assert command.cmd_verify(args) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["steps"][0]["backend"] == "rbd-fast"  # the whole of stdout
    assert step_line(PASSED) in err and "waiting" not in out


# -- the runner's lanes --------------------------------------------------------------


def timeout(pool: str) -> OpTimedOut:
    return OpTimedOut("rbd create", 110, "", f"the OSDs of pool '{pool}'", 3)


def test_lanes_run_at_once_and_results_keep_the_lanes_order():
    runner = Runner()
    both = threading.Barrier(2, timeout=5)  # each lane waits for the other: truly at once

    def lane(backend: str) -> None:
        both.wait()
        for name in ("create volume", "extend"):
            runner.step("cinder-volume", f"{name} [{backend}]", lambda: "ok", backend=backend)

    runner.step("glance", "connect", lambda: "ok")
    runner.parallel([lambda: lane("rbd-volume"), lambda: lane("rbd-fast")])
    runner.step("glance", "delete", lambda: "ok")
    assert [s.name for s in runner.results] == [
        "connect", "create volume [rbd-volume]", "extend [rbd-volume]",
        "create volume [rbd-fast]", "extend [rbd-fast]", "delete"]
    assert runner.results[3].backend == "rbd-fast"


def test_the_first_timeout_fails_and_stops_the_run_other_lanes_in_flight_skip():
    runner = Runner()
    first_failed, in_flight = threading.Event(), threading.Event()

    def dead(pool: str) -> str:
        in_flight.wait(5)  # lane b's step has started
        raise timeout(pool)

    def late() -> str:
        in_flight.set()
        first_failed.wait(5)
        raise timeout("fast")

    def lane_a() -> None:
        runner.step("glance", "upload image", lambda: dead("images"))

    def lane_b() -> None:
        runner.step("cinder-volume", "create volume [rbd-fast]", late, backend="rbd-fast")
        runner.step("cinder-volume", "never reached", lambda: "ok")

    def lane_c() -> None:
        while runner.stopped is None:
            threading.Event().wait(0.01)
        first_failed.set()
        runner.step("nova", "create a guest disk", lambda: "ok")  # not started: stopped

    with pytest.raises(OpTimedOut) as stopped:
        runner.parallel([lane_a, lane_b, lane_c])
    assert "the OSDs of pool 'images'" in stopped.value.message
    got = {s.name: s.result for s in runner.results}
    assert got == {"upload image": FAIL, "create volume [rbd-fast]": SKIP}
    assert "did not answer" in runner.results[0].cause


def test_a_refusal_is_a_finding_not_a_stop_and_other_lanes_go_on():
    runner = Runner()

    def refused() -> str:
        raise PermissionDenied("rbd create fast", 1, "Operation not permitted")

    runner.parallel([
        lambda: runner.step("cinder-volume", "create volume [rbd-fast]", refused,
                            explain=lambda e: Explanation("backend rbd-fast", "fix it"),
                            backend="rbd-fast"),
        lambda: runner.step("cinder-volume", "create volume [rbd-volume]", lambda: "ok",
                            backend="rbd-volume")])
    assert [(s.result, s.cause) for s in runner.results] == [(FAIL, "backend rbd-fast"),
                                                             (PASS, "")]
    assert runner.stopped is None


def test_a_lane_error_reaches_the_caller_after_all_lanes_ended():
    runner, ended = Runner(), threading.Event()

    def slow() -> None:
        threading.Event().wait(0.2)
        ended.set()

    def broken() -> None:
        raise CephCommandError("x", 5, "boom")

    with pytest.raises(CephCommandError):
        runner.parallel([broken, slow])
    assert ended.is_set()


# -- Cinder's backends ---------------------------------------------------------------


def test_every_cinder_backend_is_named_by_its_cinder_conf_section():
    from cephstack.verify.cinder import Backend, backends

    spec = parse_spec(
        "cluster: {conf: /c, keyring: /k}\n"
        "pools: {images: {}, volume: {}, fast: {}, old: {}, backups: {}}\n"
        "services:\n"
        "  glance: {user: glance, pool: images}\n"
        "  cinder-volume:\n"
        "    user: cinder\n"
        "    pools: [volume, fast, old]\n"
        "    backends: {old: {section: ceph, volume_backend_name: ceph}}\n"
        "  cinder-backup: {user: cinder-backup, pool: backups}\n")
    assert backends(spec) == [Backend("rbd-volume", "volume"), Backend("rbd-fast", "fast"),
                              Backend("ceph", "old")]  # a pinned (adopted) section keeps its name
    assert Backend("rbd-fast", "fast").step_id("cinder-backup", "restore the full backup") == \
        "cinder-backup: restore the full backup [rbd-fast]"
    no_cinder = parse_spec("cluster: {conf: /c, keyring: /k}\npools: {images: {}}\n"
                           "services: {glance: {user: glance, pool: images}}\n")
    assert backends(no_cinder) == []
