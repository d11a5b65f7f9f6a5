"""Error types. Each message says what went wrong, where, and how to fix it.

Exit codes (used by the CLI): 1 operation failed, 2 bad input (spec, arguments),
3 cluster unreachable.
"""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3


class CephstackError(Exception):
    """Base of every error cephstack reports to the user."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message + (f"\n  hint: {self.hint}" if self.hint else "")


class SpecError(CephstackError):
    """The spec file is invalid; carries every problem found, each as file:line: field: what."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid spec:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


class ClusterUnreachable(CephstackError):
    exit_code = EXIT_UNREACHABLE


class CephCommandError(CephstackError):
    """A mon command (or librados/librbd call) failed: the command, errno and Ceph's text."""

    def __init__(self, prefix: str, errno: int, ceph_message: str, hint: str | None = None) -> None:
        self.prefix = prefix
        self.errno = errno
        self.ceph_message = ceph_message
        text = ceph_message or "(no message)"
        super().__init__(f"'{prefix}' failed: errno {errno}: {text}", hint)


class PermissionDenied(CephCommandError):
    """The cluster refused a command for lack of caps."""


class PlanRefused(CephstackError):
    """The plan cannot be applied as it is (for example, it would exceed the PG budget)."""


class StalePlan(CephstackError):
    """A saved plan was made against a spec or cluster state that has changed since."""
