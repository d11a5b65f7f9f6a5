"""Runs named steps: times them, honours dependencies, explains failures in OpenStack terms."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cephstack import interrupt
from cephstack.errors import CephstackError, ClusterUnreachable, OpTimedOut, PermissionDenied
from cephstack.verify.model import FAIL, PASS, SKIP, StepResult


class CheckFailed(CephstackError):
    """A workflow ran but its result is wrong (data mismatch, a full copy instead of a clone)."""


# The cluster stopped answering (or cannot be reached): not a finding about a service.
# The step is recorded as failed with that cause, and the run stops: every later step
# would wait out the same timeout.
ABORTS = (OpTimedOut, ClusterUnreachable)


@dataclass(frozen=True)
class Explanation:
    cause: str
    fix: str


# Given the error, say what it means for OpenStack and how to fix it.
Explain = Callable[[CephstackError], Explanation]


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Runner:
    def __init__(self, progress: Callable[[str], None]) -> None:
        self.results: list[StepResult] = []
        self._passed: set[str] = set()
        self._progress = progress

    def passed(self, step_id: str) -> bool:
        return step_id in self._passed

    def skip(self, service: str, name: str, why: str) -> None:
        self.results.append(StepResult(service, name, SKIP, 0.0, detail=why))

    def step(self, service: str, name: str, run: Callable[[], str | None], *,
             needs: tuple[str, ...] = (), explain: Explain | None = None,
             generic_fix: str = "") -> bool:
        """Run one step; its id is "<service>: <name>". Returns True when it passed."""
        interrupt.check()  # a safe point: SIGINT/SIGTERM stop the run between steps
        missing = [n for n in needs if n not in self._passed]
        if missing:
            self.skip(service, name, f"needs {', '.join(missing)}")
            return False
        self._progress(f"{service}: {name}")
        started = time.monotonic()
        try:
            detail = run() or ""
        except ABORTS as e:
            self.results.append(StepResult(
                service, name, FAIL, time.monotonic() - started, error=e.message,
                cause="the cluster did not answer: this says nothing about the service's "
                      "caps; the run stopped here", fix=e.hint or ""))
            raise
        except CephstackError as e:
            seconds = time.monotonic() - started
            if explain is not None:
                why = explain(e)
            elif isinstance(e, PermissionDenied):
                why = Explanation(f"{service}'s user was refused: {e.prefix}", generic_fix)
            else:
                why = Explanation("", generic_fix)
            self.results.append(StepResult(service, name, FAIL, seconds, error=str(e),
                                           cause=why.cause, fix=why.fix))
            return False
        self.results.append(StepResult(service, name, PASS, time.monotonic() - started,
                                       detail=detail))
        self._passed.add(f"{service}: {name}")
        return True
