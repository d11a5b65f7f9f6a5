"""What a failed Ceph call means to the operator: the typed error (a timeout names what it
waited for, a refusal the caps it lacks) and the hint that goes with it.

And one timeout to know a monitor is gone: once a call on a cluster's monitors timed out,
every later call of this process to that cluster (any connection to the same ceph.conf)
fails at once with a timeout naming the call that went unanswered, instead of waiting the
operation timeout again: a run that lost its monitor ends within about one timeout, its
remaining steps, cleanup and lock release included. A timeout that may have been the
monitors' or a pool's OSDs' (a snapshot) asks the monitors something cheap, waiting
PROBE_SECONDS at most, to tell. A new connection that reaches the monitors forgets it.
"""

from __future__ import annotations

import errno as errnos
import json
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cephstack import interrupt
from cephstack.errors import CephCommandError, OpTimedOut, PermissionDenied

if TYPE_CHECKING:
    from cephstack.ceph.adapter import CephConnection, ClusterAccess

PROBE_SECONDS = 3.0  # a monitor that answers at all answers `mon stat` well within this
_lost: dict[str, str] = {}  # realpath of a ceph.conf -> the call its monitors left unanswered
_lost_lock = threading.Lock()


def _monitors(access: ClusterAccess) -> str:
    return os.path.realpath(access.conf)


def before_call(conn: CephConnection, what: str) -> None:
    """Every call's safe point: SIGINT/SIGTERM on an interruptible connection; a timeout at
    once when this cluster's monitors already left a call unanswered."""
    if conn.interruptible:
        interrupt.check()
    unanswered = _lost.get(_monitors(conn.access))
    if unanswered is not None:
        raise typed_error(what, errnos.ETIMEDOUT, f"not sent: they did not answer "
                          f"{unanswered} within the timeout", conn.access.client,
                          "the monitors", conn.access.op_timeout)


def note_timeout(conn: CephConnection, what: str, waited_for: str,
                 ask: Callable[[str, bytes], Any]) -> bool:
    """After `what` timed out waiting for `waited_for`: whether the monitors are lost
    (remembered for every connection to them). `ask`: the binding's mon_command."""
    key = _monitors(conn.access)
    if key in _lost or waited_for == "the monitors":
        lost = True
    elif waited_for.startswith("the monitors or"):
        answered = threading.Event()

        def probe() -> None:
            ask(json.dumps({"prefix": "mon stat", "format": "json"}), b"")
            answered.set()  # any answer, a refusal too: the monitors are there

        # In the background: close() must not shut librados down under the probe.
        conn.in_background("monitor-probe", probe)
        lost = not answered.wait(min(PROBE_SECONDS, conn.access.op_timeout))
    else:
        return False
    if lost:
        with _lost_lock:
            _lost.setdefault(key, f"'{what}'")
    return lost


def reached(access: ClusterAccess, cluster: Any) -> Any:
    """A new connection reached the monitors: they answer again."""
    with _lost_lock:
        _lost.pop(_monitors(access), None)
    return cluster

_DENIED = (errnos.EACCES, errnos.EPERM)
_MON_HINT = "a monitor may be down, frozen or out of quorum: check `ceph -s` on a monitor host"
_OSD_HINT = ("its placement groups may have no up OSD (a CRUSH rule that selects none, or "
             "its OSDs down): check `ceph pg ls-by-pool` and `ceph osd tree`")
_SLOW_HINT = "; if the cluster is only slow, raise --op-timeout"


def _timeout_hint(waited_for: str) -> str:
    if waited_for == "the monitors":
        return _MON_HINT + _SLOW_HINT
    if waited_for.startswith("the monitors or"):
        return f"{_MON_HINT}; or {_OSD_HINT}{_SLOW_HINT}"
    return _OSD_HINT + _SLOW_HINT


def typed_error(prefix: str, code: int, text: str, client: str, waited_for: str = "the monitors",
           seconds: float = 0.0) -> CephCommandError:
    code = abs(code)
    if code == errnos.ETIMEDOUT:
        return OpTimedOut(prefix, code, text, waited_for, seconds, _timeout_hint(waited_for))
    if code in _DENIED:
        return PermissionDenied(
            prefix, code, text,
            hint=f"{client} lacks the caps for '{prefix}'; use an admin client (--id/--keyring)",
        )
    return CephCommandError(prefix, code, text)


def auth_hint(access: ClusterAccess) -> str:
    entity = f"[{access.client}]"
    if access.keyring and os.path.isfile(access.keyring):
        try:
            with open(access.keyring) as f:
                holds = entity in f.read()
        except OSError:
            holds = True
        if not holds:
            return f"{access.keyring} holds no key for {access.client}: pass --keyring or --id"
    return (f"the key in {access.keyring or 'the keyring'} is not the one the cluster has for "
            f"{access.client}, or that user does not exist (`ceph auth get {access.client}` "
            "on a monitor host); pass --keyring/--id")
