"""A sandbox's daemon processes: which pid is ours (by command line, never by name) and
stopping them by pid, safe against pid reuse."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

# The one client daemon a sandbox runs is rbd-mirror, as "client.rbd-mirror.<site>".
_BINARIES = {"mon": "ceph-mon", "mgr": "ceph-mgr", "osd": "ceph-osd", "client": "rbd-mirror"}


def pid_file(directory: Path, daemon: str) -> Path:
    return directory / "run" / f"{daemon}.pid"


def command_line(kind: str, ident: str, conf: Path) -> list[str]:
    """How a sandbox starts its daemon KIND.IDENT (is_ours recognises it by this)."""
    return [_BINARIES[kind], _id_flag(kind), ident, "-c", str(conf)]


def _id_flag(kind: str) -> str:
    return "--id" if kind == "client" else "-i"  # rbd-mirror ignores -i (runs as admin)


def _arg_after(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args[:-1]):
        if arg == flag:
            return args[i + 1]
    return None


def is_ours(pid: int, daemon: str, conf: Path) -> bool:
    """Whether `pid` runs the sandbox `daemon` of `conf`: its binary, its id and that conf
    (a recycled pid, or the same daemon of another sandbox, is not ours)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    kind, ident = daemon.split(".", 1)
    return (bool(args) and os.path.basename(args[0]) == _BINARIES[kind]
            and _arg_after(args, _id_flag(kind)) == ident
            and _arg_after(args, "-c") == str(conf))


def running_pid(directory: Path, conf: Path, daemon: str) -> int | None:
    """The pid in the daemon's pid file, when that process is ours and runs."""
    try:
        pid = int(pid_file(directory, daemon).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and is_ours(pid, daemon, conf) else None


def stop_daemons(directory: Path, conf: Path, daemons: list[str], timeout: float) -> list[str]:
    """SIGTERM the given daemons at once, SIGKILL those still running at the deadline.
    A pid file whose process is gone or is not ours (pid reuse) is stale: removed."""
    running = {}
    for daemon in daemons:
        pid = running_pid(directory, conf, daemon)
        if pid is None or not _signal(pid, daemon, conf, signal.SIGTERM):
            pid_file(directory, daemon).unlink(missing_ok=True)
            continue
        running[daemon] = pid
    deadline = time.monotonic() + timeout
    while any(is_ours(p, d, conf) for d, p in running.items()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for daemon, pid in running.items():
        if _signal(pid, daemon, conf, signal.SIGKILL):
            kill_deadline = time.monotonic() + 5
            while is_ours(pid, daemon, conf) and time.monotonic() < kill_deadline:
                time.sleep(0.05)
        pid_file(directory, daemon).unlink(missing_ok=True)
    return list(running)

def _signal(pid: int, daemon: str, conf: Path, sig: int) -> bool:
    """Send `sig` only if `pid` still runs this sandbox's `daemon`. Through a pidfd:
    were the pid recycled between the check and the signal, nothing would be hit."""
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except OSError:  # a kernel without pidfds
        pidfd = None
    try:
        if not is_ours(pid, daemon, conf):
            return False
        if pidfd is None:
            os.kill(pid, sig)
        else:
            signal.pidfd_send_signal(pidfd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)
