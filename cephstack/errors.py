"""Error types. Each message says what went wrong, where, and how to fix it.

Exit codes (used by the CLI): 1 operation failed (a Ceph command failed or was refused for
lack of caps), 2 bad input (spec, arguments), 3 cluster unreachable (no monitor answered
within the connect timeout), 4 authentication failed (wrong key, unknown user), 5 timed
out mid-run (a monitor or the OSDs of a pool stopped answering within the operation
timeout), 6 another cephstack run holds the cluster's lock; 130/143 interrupted by
SIGINT/SIGTERM. Each error also has a `kind`, the machine-readable name in JSON output.
"""

from __future__ import annotations

from typing import Any

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4
EXIT_TIMEOUT = 5
EXIT_LOCKED = 6


class CephstackError(Exception):
    """Base of every error cephstack reports to the user."""

    exit_code = EXIT_FAILED
    kind = "failed"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message + (f"\n  hint: {self.hint}" if self.hint else "")

    def as_json(self) -> dict[str, Any]:
        """The `error` object of `--output json`: kind, message, hint (+ details)."""
        return {"kind": self.kind, "message": self.message, "hint": self.hint,
                **self.details()}

    def details(self) -> dict[str, Any]:
        return {}


class SpecError(CephstackError):
    """The spec file is invalid; carries every problem found, each as file:line: field: what."""

    exit_code = EXIT_BAD_INPUT
    kind = "invalid-spec"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid spec:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


class ClusterUnreachable(CephstackError):
    """No monitor could be reached within the connect timeout (or ceph.conf/keyring missing)."""

    exit_code = EXIT_UNREACHABLE
    kind = "unreachable"


class AuthFailed(CephstackError):
    """The monitors refused the client's cephx authentication: wrong key or unknown user."""

    exit_code = EXIT_AUTH
    kind = "auth-failed"


class LockHeld(CephstackError):
    """Another cephstack run holds the cluster's run lock."""

    exit_code = EXIT_LOCKED
    kind = "locked"

    def __init__(self, message: str, hint: str | None = None,
                 holders: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, hint)
        self.holders = holders or []

    def details(self) -> dict[str, Any]:
        return {"holders": self.holders}


class CephCommandError(CephstackError):
    """A mon command (or librados/librbd call) failed: the command, errno and Ceph's text."""

    def __init__(self, prefix: str, errno: int, ceph_message: str, hint: str | None = None) -> None:
        self.prefix = prefix
        self.errno = errno
        self.ceph_message = ceph_message
        text = ceph_message or "(no message)"
        super().__init__(f"'{prefix}' failed: errno {errno}: {text}", hint)

    def details(self) -> dict[str, Any]:
        return {"command": self.prefix, "errno": self.errno}


class PermissionDenied(CephCommandError):
    """The cluster refused a command for lack of caps."""

    kind = "permission-denied"


class OpTimedOut(CephCommandError):
    """A monitor command or an OSD operation got no answer within the operation timeout:
    `waited_for` names what did not answer (the monitors, or the OSDs of a pool)."""

    exit_code = EXIT_TIMEOUT
    kind = "timeout"

    def __init__(self, prefix: str, errno: int, ceph_message: str, waited_for: str,
                 seconds: float, hint: str | None = None) -> None:
        super().__init__(prefix, errno, ceph_message, hint)
        self.waited_for = waited_for
        self.seconds = seconds
        self.message = (f"timed out after {seconds:g} s waiting for {waited_for} "
                        f"('{prefix}': {ceph_message or 'no answer'})")
        self.args = (self.message,)

    def details(self) -> dict[str, Any]:
        return {**super().details(), "waited_for": self.waited_for, "seconds": self.seconds}


class PlanRefused(CephstackError):
    """The plan cannot be applied as it is (for example, it would exceed the PG budget)."""

    kind = "plan-refused"


class StalePlan(CephstackError):
    """A saved plan was made against a spec or cluster state that has changed since."""

    kind = "stale-plan"


class SeveralClustersUsage(CephstackError):
    """A command or option that names one cluster, given a spec of several (or the
    reverse): refused before any cluster is contacted."""

    exit_code = EXIT_BAD_INPUT
    kind = "bad-arguments"


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """SIGINT or SIGTERM arrived: raised at the next safe point of the command's thread.
    A BaseException, so that `except Exception` in steps does not swallow it."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


class BundleRefused(CephstackError):
    """`host install` refused a bundle (its MANIFEST.json or a file in it) as untrusted
    input, before any change."""

    exit_code = EXIT_BAD_INPUT
    kind = "bundle-refused"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint or "nothing was changed; render the bundle again "
                         "(cephstack render) and copy it whole")


class BadArguments(CephstackError):
    """Arguments, or a file given as input (a verify report), that the command cannot use."""

    exit_code = EXIT_BAD_INPUT
    kind = "invalid-arguments"


def error_json(e: Exception) -> dict[str, Any]:
    """The `error` object of any exception: one cluster's failure in a fleet's JSON."""
    if isinstance(e, CephstackError):
        return e.as_json()
    return {"kind": "failed", "message": str(e), "hint": None}


def error_text(e: Exception) -> str:
    """An error under its cluster's heading: its hint indented below it."""
    return str(e).replace("\n", "\n  ")


class SharedCluster(CephstackError):
    """Two clusters: entries reach the same Ceph cluster: --prune would remove what the
    other entry declares. The spec's mistake (exit 2), found once connected."""

    exit_code = EXIT_BAD_INPUT
    kind = "invalid-spec"


class SandboxError(CephstackError):
    pass


class SandboxArgumentError(SandboxError):
    exit_code = EXIT_BAD_INPUT
    kind = "invalid-arguments"


class CapsSyntaxError(ValueError):
    pass


class ReplicationTimedOut(CephstackError):
    """A mirrored image did not reach the secondary within the allowed time."""

    exit_code = EXIT_TIMEOUT
    kind = "timeout"


class MirrorError(CephstackError):
    """Mirroring cannot be set up as asked (a missing pool, an image not mirrored...)."""


class ApplyFailed(CephstackError):
    """Steps of a round failed. If one of them timed out (a monitor lost, a pool whose
    placement groups no OSD serves), the whole failure is a timeout: exit code and hint
    say so, and name what did not answer."""

    def __init__(self, done: list[str], failures: list[tuple[str, Exception]]) -> None:
        lines = [f"  {what}: {err.message if isinstance(err, OpTimedOut) else err}"
                 for what, err in failures]
        timeouts = [err for _, err in failures if isinstance(err, OpTimedOut)]
        hint = "fix the cause and run apply again: it continues from where it stopped"
        if timeouts:
            hint = f"{timeouts[0].hint}; then run apply again: it continues from where it stopped"
            self.exit_code = EXIT_TIMEOUT
            self.kind = OpTimedOut.kind
        super().__init__(
            f"apply stopped: {len(failures)} step(s) failed, {len(done)} done and kept:\n"
            + "\n".join(lines), hint=hint)
        self.done = done
        self.failures = failures

    def details(self) -> dict[str, object]:
        return {"done": list(self.done), "failures": [
            {"step": what, **(err.as_json() if isinstance(err, CephstackError)
                              else {"kind": "failed", "message": str(err)})}
            for what, err in self.failures]}


class BadTarget(CephstackError):
    """An address fence must not cut off (or none at all): refused before any change."""

    exit_code = EXIT_BAD_INPUT
    kind = "invalid-arguments"


class CheckFailed(CephstackError):
    """A workflow ran but its result is wrong (data mismatch, a full copy instead of a clone)."""


class StoppedInStep(CephstackError):
    """The run stopped because the cluster did not answer (`cause`, one of ABORTS) in
    `step`: the error says what did not answer and where the run was; its exit code and
    JSON kind are the cause's."""

    def __init__(self, cause: CephstackError, step: str) -> None:
        super().__init__(f"{cause.message}; verify stopped in step '{step}'", cause.hint)
        self.cause, self.step = cause, step
        self.exit_code, self.kind = cause.exit_code, cause.kind

    def details(self) -> dict[str, object]:
        return {**self.cause.details(), "step": self.step}


class CleanupIncomplete(CephstackError):
    """An interrupted run could not remove everything it made."""
