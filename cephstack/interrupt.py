"""SIGINT and SIGTERM without KeyboardInterrupt in the middle of librados.

The CLI runs each command in a worker thread; the main thread only waits, so a signal
never lands inside a librados call (Python runs handlers in the main thread only, and a
KeyboardInterrupt unwinding while librados threads still use a connection is what
crashed the process). The handler just records the signal. The command's thread sees it
at its next safe point (`check()`, between steps and before each call on an interruptible
connection) and unwinds through its own `finally` blocks: verify removes what it made,
locks are released. The main thread waits for that at most `grace` seconds, runs the
`on_abandon` callbacks if the command did not finish in time, and ends the process with
os._exit(128 + signal), skipping interpreter teardown while librados threads may live.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from cephstack.errors import Interrupted

DEFAULT_GRACE = 1.2  # seconds the main thread waits for a command to unwind

_lock = threading.Lock()
_wake = threading.Event()
_signals: list[int] = []
_grace = DEFAULT_GRACE
_hint: str | None = None
_abandon: list[Callable[[], None]] = []


def reset() -> None:
    """Forget signals and settings (a new command starts)."""
    global _grace, _hint
    with _lock:
        _signals.clear()
        _abandon.clear()
        _grace, _hint = DEFAULT_GRACE, None
    _wake.clear()


def request(signum: int) -> None:
    """Record a signal (called from the signal handler: no locks, nothing that blocks)."""
    _signals.append(signum)
    _wake.set()


def requested() -> int | None:
    """The first signal received, if any."""
    return _signals[0] if _signals else None


def count() -> int:
    return len(_signals)


def check() -> None:
    """A safe point: raise Interrupted if a signal arrived."""
    if _signals:
        raise Interrupted(_signals[0])


def sleep(seconds: float) -> None:
    """Sleep, but wake up (and raise Interrupted) as soon as a signal arrives."""
    check()
    _wake.wait(seconds)
    check()


def configure(grace: float | None = None, hint: str | None = None) -> None:
    """How long the main thread waits for the command to unwind after a signal (its owed
    cleanup included), and what to tell the operator then."""
    global _grace, _hint
    with _lock:
        if grace is not None:
            _grace = grace
        if hint is not None:
            _hint = hint


def grace() -> float:
    return _grace


def hint() -> str | None:
    return _hint


def on_abandon(callback: Callable[[], None]) -> Callable[[], None]:
    """Run `callback` from the main thread if the command does not unwind within the grace
    (for example: release the run lock). Returns a function that unregisters it."""
    with _lock:
        _abandon.append(callback)

    def unregister() -> None:
        with _lock, contextlib.suppress(ValueError):
            _abandon.remove(callback)
    return unregister


def run_abandon_callbacks(budget: float) -> None:
    """Each callback in a daemon thread, all of them within `budget` seconds together."""
    with _lock:
        callbacks = list(_abandon)
    threads = [threading.Thread(target=_quietly, args=(cb,), daemon=True) for cb in callbacks]
    for t in threads:
        t.start()
    deadline = time.monotonic() + budget
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))


def _quietly(callback: Callable[[], None]) -> None:
    with contextlib.suppress(Exception):  # best effort while the process ends
        callback()

