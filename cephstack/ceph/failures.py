"""What a failed Ceph call means to the operator: the typed error (a timeout names what it
waited for, a refusal the caps it lacks) and the hint that goes with it."""

from __future__ import annotations

import errno as errnos
import os
from typing import TYPE_CHECKING

from cephstack.errors import CephCommandError, OpTimedOut, PermissionDenied

if TYPE_CHECKING:
    from cephstack.ceph.adapter import ClusterAccess

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
