"""verify's progress on stderr: one line per step as it finishes, and a live line while
the run waits for something (the second host of an evacuate, a lock holder).

On a terminal the live line is one line rewritten in place ("\\r" and erase-line) with what
is awaited and the seconds so far; step lines are written above it. Anywhere else (a pipe,
a log file) there are no carriage returns: a wait shows as a plain line once it has lasted
`every` seconds, then at most one line every `every` seconds. Nothing here writes to
stdout, so `--output json` keeps stdout one JSON document.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from cephstack.verify.model import FAIL, SKIP, StepResult

ERASE = "\r\x1b[K"  # back to the start of the line, erase it
EVERY = 5.0  # seconds between wait lines when stderr is not a terminal
TICK = 0.25  # seconds between redraws of the live line on a terminal


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 80


def step_line(result: StepResult) -> str:
    """`  PASS  nova: create a guest disk  0.01 s`, with the error of a failure."""
    line = f"  {result.result.upper():<4}  {result.service}: {result.name}  {result.seconds:.2f} s"
    if result.result == FAIL and result.error:
        line += f": {result.error}"
    elif result.result == SKIP and result.detail:
        line += f": {result.detail}"  # why
    return line


class Progress:
    """Thread-safe: steps finish in several threads at once."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None,
                 every: float = EVERY, clock: Callable[[], float] = time.monotonic,
                 ticker: bool = True, width: int | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self.tty = self._stream.isatty() if tty is None else tty
        # A live line wider than the terminal wraps, and "\r" then rewrites only its last
        # row: it is cut to the width.
        self._width = width or (_columns(self._stream) if self.tty else 0)
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._waits: dict[int, tuple[str, float]] = {}
        self._ids = itertools.count()
        self._shown = ""  # the live line on screen (terminal only)
        self._last_line = float("-inf")  # when the last wait line was written (no terminal)
        self._ticker = ticker
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    # -- what the run reports ------------------------------------------------------

    def step_done(self, result: StepResult) -> None:
        with self._lock:
            self._write_above(step_line(result))

    @contextlib.contextmanager
    def waiting(self, what: str) -> Iterator[None]:
        """While the body runs, the live line says `waiting for <what>` and for how long."""
        key = next(self._ids)
        with self._lock:
            self._waits[key] = (what, self._clock())
            self._start_ticker()
        try:
            yield
        finally:
            with self._lock:
                del self._waits[key]
                if self.tty:
                    self._draw(self.live_line(self._clock()))

    def close(self) -> None:
        """Stop the ticker and take the live line off the screen."""
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            self._waits.clear()
            if self.tty:
                self._draw("")

    # -- rendering (tick() is what the ticker thread calls; tests call it directly) -------

    def live_line(self, now: float) -> str:
        """`waiting 12 s for X; 3 s for Y`: every wait in progress, oldest first."""
        if not self._waits:
            return ""
        parts = [f"{int(now - since)} s for {what}" for what, since in self._waits.values()]
        return "  waiting " + "; ".join(parts)

    def tick(self, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        with self._lock:
            line = self.live_line(now)
            if self.tty:
                self._draw(line)
            elif line and now - self._last_line >= self._every and any(
                    now - since >= self._every for _, since in self._waits.values()):
                self._stream.write(line + "\n")
                self._stream.flush()
                self._last_line = now

    def _draw(self, line: str) -> None:
        if self._width and len(line) >= self._width:
            line = line[:self._width - 2] + "…"
        if line == self._shown:
            return
        self._stream.write(ERASE + line)
        self._stream.flush()
        self._shown = line

    def _write_above(self, line: str) -> None:
        if self.tty and self._shown:
            self._stream.write(ERASE + line + "\n" + self._shown)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def _start_ticker(self) -> None:
        if not self._ticker or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run_ticker, name="verify-progress",
                                        daemon=True)
        self._thread.start()

    def _run_ticker(self) -> None:
        while not self._wake.wait(TICK if self.tty else min(TICK * 4, self._every)):
            self.tick()


class Silent(Progress):
    """No output at all (library callers, the old `progress` callable left out)."""

    def __init__(self) -> None:
        super().__init__(stream=sys.stderr, tty=False, ticker=False)

    def step_done(self, result: StepResult) -> None:
        pass

    def tick(self, now: float | None = None) -> None:
        pass
