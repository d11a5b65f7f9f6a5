"""Results of a verify run, and the names verify gives to what it creates."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

# Every name verify creates holds this: "<run>-c5ac-5eed-<n>". Real Glance, Cinder and
# Nova ids are uuid4s, whose third group starts with 4, so they can never match it.
MARKER = "-c5ac-5eed-"

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class RunNames:
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    _count: int = 0

    def uuid(self) -> str:
        """A uuid-shaped id carrying the run marker."""
        self._count += 1
        return f"{self.run_id}{MARKER}{self._count:012x}"


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


@dataclass
class VerifyReport:
    run_id: str
    steps: list[StepResult] = field(default_factory=list)
    takeover_seconds: float | None = None
    cleanup: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(s.result != FAIL for s in self.steps)
