"""Results of a verify run, and the names verify gives to what it creates."""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

# Every name verify creates holds this: "<run>-c5ac-5eed-<n>". Real Glance, Cinder and
# Nova ids are uuid4s, whose third group starts with 4, so they can never match it.
MARKER = "-c5ac-5eed-"
PROBE_PREFIX = "cephstack-probe."
_RUN = re.compile(r"([0-9a-f]{8})" + MARKER)


def run_of(name: str) -> str | None:
    """The run id in a name verify gave, or None for any other name."""
    found = _RUN.search(name)
    return found.group(1) if found else None


def probe_name(run_id: str) -> str:
    """The one name a run's least-privilege probes use (an object a user should not have
    been able to write, a pool it should not have been able to create): known from the
    run id alone, so cleanup removes it by name instead of listing pools."""
    return f"{PROBE_PREFIX}{run_id}{MARKER}probe"


PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class RunNames:
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    _count: int = 0
    # Workflows run in several threads at once: each name must still be given once.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def uuid(self) -> str:
        """A uuid-shaped id carrying the run marker."""
        with self._lock:
            self._count += 1
            count = self._count
        return f"{self.run_id}{MARKER}{count:012x}"

    def probe(self) -> str:
        return probe_name(self.run_id)


@dataclass(frozen=True)
class StepResult:
    service: str
    name: str
    result: str  # pass | fail | skip
    seconds: float
    detail: str = ""  # on pass: what was measured; on skip: why
    error: str = ""  # Ceph's error
    cause: str = ""  # what it means for OpenStack
    fix: str = ""
    backend: str = ""  # cinder.conf section of the Cinder backend the step ran on, if any


@dataclass
class VerifyReport:
    run_id: str
    steps: list[StepResult] = field(default_factory=list)
    takeover_seconds: float | None = None
    # How the evacuate takeover went: "fence" (blocklist + lock break as Nova's user, the
    # default) or "wait" (librbd's own, after the OSD watch timeout: --evacuate-wait).
    takeover_path: str | None = None
    cleanup: list[str] = field(default_factory=list)
    # The run stopped early: the cluster stopped answering (a timeout), or was unreachable.
    aborted: Any = None  # a CephstackError
    cleanup_error: Any = None  # a CephstackError: what this run made may be left behind

    @property
    def passed(self) -> bool:
        return (self.aborted is None and self.cleanup_error is None
                and all(s.result != FAIL for s in self.steps))

    @property
    def error(self) -> Any:
        return self.aborted or self.cleanup_error
