"""Runs named steps: times them, honours dependencies, explains failures in OpenStack terms,
reports each as it finishes; lanes of steps run at once."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cephstack import interrupt
from cephstack.errors import (
    CephstackError,
    CheckFailed,
    ClusterUnreachable,
    OpTimedOut,
    PermissionDenied,
)
from cephstack.verify.model import FAIL, PASS, SKIP, StepResult
from cephstack.verify.progress import Progress, Silent

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
    """Steps may run in several lanes at once (`parallel`); results keep a stable order:
    the lanes' in the order they were given, each lane's in the order it ran them."""

    def __init__(self, progress: Progress | Callable[[str], None] | None = None) -> None:
        self._done: list[tuple[tuple[int, int, int], StepResult]] = []
        self._passed: set[str] = set()
        self.progress = progress if isinstance(progress, Progress) else Silent()
        self._lock = threading.Lock()
        self._lane = threading.local()
        self._block = 0
        self._seq = itertools.count()
        # The first step that found the cluster not answering: the run stops there, and
        # steps of other lanes still in flight are not findings (they are skipped).
        self.stopped: CephstackError | None = None
        self.stopped_in = ""  # ... and the id of its step

    @property
    def results(self) -> list[StepResult]:
        with self._lock:
            return [r for _, r in sorted(self._done, key=lambda kr: kr[0])]

    def passed(self, step_id: str) -> bool:
        return step_id in self._passed

    def _record(self, result: StepResult) -> None:
        key = (self._block, getattr(self._lane, "index", 0), next(self._seq))
        with self._lock:
            self._done.append((key, result))
            if result.result == PASS:
                self._passed.add(f"{result.service}: {result.name}")
        self.progress.step_done(result)

    def skip(self, service: str, name: str, why: str, backend: str = "") -> None:
        self._record(StepResult(service, name, SKIP, 0.0, detail=why, backend=backend))

    def step(self, service: str, name: str, run: Callable[[], str | None], *,
             needs: tuple[str, ...] = (), explain: Explain | None = None,
             generic_fix: str = "", backend: str = "") -> bool:
        """Run one step; its id is "<service>: <name>". Returns True when it passed."""
        interrupt.check()  # a safe point: SIGINT/SIGTERM stop the run between steps
        if self.stopped is not None:
            raise self.stopped  # another lane found the cluster not answering
        missing = [n for n in needs if n not in self._passed]
        if missing:
            self.skip(service, name, f"needs {', '.join(missing)}", backend)
            return False
        started = time.monotonic()
        try:
            detail = run() or ""
        except ABORTS as e:
            with self._lock:
                first = self.stopped is None
                if first:
                    self.stopped, self.stopped_in = e, f"{service}: {name}"
            if first:
                self._record(StepResult(
                    service, name, FAIL, time.monotonic() - started, error=e.message,
                    cause="the cluster did not answer: this says nothing about the service's "
                          "caps; the run stopped here", fix=e.hint or "", backend=backend))
            else:
                self.skip(service, name, "not finished: the run stopped (the cluster did not "
                          "answer another step)", backend)
            raise
        except CephstackError as e:
            seconds = time.monotonic() - started
            if explain is not None:
                why = explain(e)
            elif isinstance(e, PermissionDenied):
                why = Explanation(f"{service}'s user was refused: {e.prefix}", generic_fix)
            else:
                why = Explanation("", generic_fix)
            self._record(StepResult(service, name, FAIL, seconds, error=str(e),
                                    cause=why.cause, fix=why.fix, backend=backend))
            return False
        self._record(StepResult(service, name, PASS, time.monotonic() - started,
                                detail=detail, backend=backend))
        return True

    def parallel(self, lanes: Sequence[Callable[[], object]]) -> None:
        """Run the lanes at once, one thread each (librados releases the GIL, and the
        monitor folds the snapshot ids asked for in one proposal interval into one commit:
        lanes cost about the time of the longest). Returns when all have ended; then
        raises what stopped the run, else the first lane's error, if any."""
        with self._lock:
            self._block += 1
            block = self._block
        errors: list[BaseException | None] = [None] * len(lanes)

        def lane(index: int) -> None:
            self._lane.index = index
            try:
                lanes[index]()
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                errors[index] = e

        threads = [threading.Thread(target=lane, args=(i,), name=f"verify-lane-{i}",
                                    daemon=True) for i in range(len(lanes))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with self._lock:
            self._block = block + 1  # steps after the lanes sort after them
        failures = [e for e in errors if e is not None]
        if self.stopped is not None and any(isinstance(e, ABORTS) for e in failures):
            raise self.stopped
        if failures:
            raise failures[0]
