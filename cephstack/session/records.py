"""apply's bookkeeping for --prune: recording what it created (cephstack.ceph.records),
and, with --prune, removing what it created that the spec no longer declares."""

from __future__ import annotations

import os
from collections.abc import Callable

from cephstack.ceph import records
from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephstackError
from cephstack.keyfiles import Secret
from cephstack.plan.actions import (
    Action,
    CreateClient,
    CreatePool,
    ForgetRecord,
    Plan,
    RemoveClient,
    RemoveKeyring,
    RemovePool,
    UpdateCaps,
    WriteKeyring,
)
from cephstack.plan.state import ClusterState, RecordedKeyring

Progress = Callable[[str], None]
_NO_RECORD = RecordedKeyring("", False)


def record_created(conn: CephConnection, plan: Plan, state: ClusterState,
                    keys: dict[str, Secret], progress: Progress) -> None:
    """Record what this run created for --prune: the new pools and users, and the keyring
    files round three writes (prune removes one only while it holds its user's key).
    Between rounds two and three, when no osdmap change is pending: a config-key set is an
    immediate commit, after which the monitor proposes a pending osdmap change at once,
    and the pool commands still arriving take an extra epoch (measured: mid-round two,
    and right after round three's background snapshot releases)."""
    pools = [a.pool.name for a in plan.actions if isinstance(a, CreatePool)]
    users = {a.entity: a.caps for a in plan.actions
             if isinstance(a, CreateClient) and a.entity in keys}
    # A recorded user whose caps apply changed keeps the caps it now has on record (prune
    # believes a record only while the caps are still the ones cephstack gave).
    users.update({a.entity: a.after for a in plan.actions
                  if isinstance(a, UpdateCaps) and a.entity in state.created.users})
    files = [(a.path, a.entity) for a in plan.actions if isinstance(a, WriteKeyring)
             and state.created.keyrings.get(os.path.abspath(a.path), _NO_RECORD).entity
             != a.entity]
    if not (pools or users or files):
        return
    try:
        records.record_created(conn, state.created.owner, pools, users, files)
    except CephstackError as e:  # the layout is right; only pruning it later is lost
        progress(f"not recorded as created by cephstack (--prune will leave them): {e}")


_REMOVALS = (RemovePool, RemoveClient, RemoveKeyring, ForgetRecord)


def removals(conn: CephConnection, plan: Plan
             ) -> list[list[tuple[str, Callable[[], None]]]]:
    """apply --prune's removals, as rounds of (progress name, call) (prune.py decided
    them; a plan with refusals never gets here): last, once everything else is in place.
    Pools first, alone: the monitors may still refuse a pool deletion, and then no user
    or file is gone. Their records go after (forget_removed)."""
    def remove(a: Action) -> None:
        if isinstance(a, RemovePool):
            records.remove_pool(conn, a.name)
        elif isinstance(a, RemoveClient):
            records.remove_user(conn, a.entity)
        elif isinstance(a, RemoveKeyring):
            records.remove_keyring(conn, a.path)
        # ForgetRecord: only its record goes (forget_removed)

    steps = [(f"- {a.address}", lambda a=a: remove(a)) for a in plan.actions
             if isinstance(a, _REMOVALS)]
    pools = {f"- {a.address}" for a in plan.actions if isinstance(a, RemovePool)}
    return [r for r in ([s for s in steps if s[0] in pools],
                        [s for s in steps if s[0] not in pools]) if r]


def forget_removed(conn: CephConnection, plan: Plan, state: ClusterState, done: list[str],
                   progress: Progress) -> None:
    """The records of what the removal round removed (and of what was found gone), in
    one update of the record documents."""
    gone = [a.forgets for a in plan.actions
            if isinstance(a, _REMOVALS) and f"- {a.address}" in done]
    try:
        records.forget_records(conn, state.created.owner, gone)
    except CephstackError as e:  # removed all the same; a stale record only gets forgotten
        progress(f"records of removed things not forgotten (the next --prune will): {e}")
