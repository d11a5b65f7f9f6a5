"""apply --prune: what cephstack created that the spec no longer declares, decided from
the observed state and cephstack's own records (cephstack/ceph/records.py). Pure.

Only what a record says cephstack created is ever a candidate: a pool or user made by
hand, or adopted with `cephstack import`, has no record and stays, declared or not. A
pool counts as cephstack's only while it has the id recorded at its creation (a namesake
made by hand after a deletion has another). Without --prune (no PruneFacts observed) the
candidates are only counted in a note; with it they become `-` actions, or refusals when
removing them would lose data or cut off a running client.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass

from cephstack.plan.actions import Action, ForgetRecord, RemoveClient, RemoveKeyring, RemovePool
from cephstack.plan.state import ClusterState, PoolContents, PruneFacts
from cephstack.spec.load import Spec


@dataclass(frozen=True)
class Candidates:
    pools: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    keyrings: tuple[tuple[str, str], ...] = ()  # (path, entity) of this host's files
    stale: tuple[tuple[str, str, str], ...] = ()  # (record, name, what is gone)

    @property
    def addresses(self) -> list[str]:
        return ([f"pool.{p}" for p in self.pools] + list(self.users)
                + [f"keyring {p}" for p, _ in self.keyrings])


def _declared_keyrings(spec: Spec, wanted: Collection[str]) -> dict[str, str]:
    k = spec.keyrings
    return {os.path.abspath(k.path_for(e)): e for e in wanted} if k.manage else {}


def candidates(spec: Spec, state: ClusterState, wanted: Collection[str]) -> Candidates:
    """`wanted`: the users the spec declares (catalog.desired_clients)."""
    created = state.created
    pools, users, stale = [], [], []
    for name, pool_id in sorted(created.pools.items()):
        have = state.pools.get(name)
        if have is not None and have.pool_id == pool_id:
            if name not in spec.pools:
                pools.append(name)
        elif name not in spec.pools:  # a declared one missing is made again, and recorded
            stale.append(("pool", name, f"pool {name} (id {pool_id}) is gone"
                          + (f"; the pool of that name now has id {have.pool_id}"
                             if have is not None else "")))
    for entity in sorted(created.users):
        if entity in wanted:
            continue
        if entity not in state.clients:
            stale.append(("user", entity, f"user {entity} is gone"))
        elif entity != spec.cluster.client:  # never the user cephstack itself connects as
            users.append(entity)
    declared = _declared_keyrings(spec, wanted)
    keyrings = []
    for path, rec in sorted(created.keyrings.items()):
        if declared.get(path) == rec.entity:
            continue
        if rec.exists:
            keyrings.append((path, rec.entity))
        else:
            stale.append(("keyring", path, f"keyring file {path} is gone"))
    return Candidates(tuple(pools), tuple(users), tuple(keyrings), tuple(stale))


def _contents_text(c: PoolContents) -> str:
    snaps = f"{'at least ' if c.snapshots_partial else ''}{c.snapshots} snapshot(s)"
    return f"{c.images} image(s), {snaps}, {c.trash} trash entr{'y' if c.trash == 1 else 'ies'}"


def _pool_removals(names: tuple[str, ...], state: ClusterState, facts: PruneFacts
                   ) -> tuple[list[Action], list[str]]:
    actions: list[Action] = []
    refusals = []
    for name in names:
        contents = facts.pool_contents.get(name)
        if contents is None:
            refusals.append(f"pool.{name}: what it holds was not read; plan --prune again")
        elif not contents.empty:
            refusals.append(
                f"pool.{name}: cephstack created it and the spec no longer declares it, but "
                f"it holds {_contents_text(contents)}; --prune deletes only an empty pool; "
                "fix: move or delete them (or declare the pool again), or apply without "
                "--prune")
        else:
            actions.append(RemovePool(name, state.pools[name].pool_id))
    if actions and facts.pool_delete_allowed is not True:
        # Refused rather than switched on for the one command: mon_allow_pool_delete is
        # the operator's own guard, cluster-wide. Turning it on opens a window in which
        # any client may delete any pool, and a run killed before restoring it would
        # leave it open for good; the operator decides, with the command in the hint.
        names_text = ", ".join(a.address for a in actions)
        refusals.append(
            f"{names_text}: the monitors do not allow deleting pools (mon_allow_pool_delete "
            f"is {'not readable' if facts.pool_delete_allowed is None else 'false'}); fix: "
            "`ceph config set mon mon_allow_pool_delete true`, apply --prune, then `ceph "
            "config set mon mon_allow_pool_delete false`; or apply without --prune")
    return actions, refusals


@dataclass(frozen=True)
class Pruning:
    actions: tuple[Action, ...] = ()
    refusals: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    candidates: Candidates = Candidates()


def prune_plan(spec: Spec, state: ClusterState, wanted: Collection[str]) -> Pruning:
    """What cephstack created and the spec no longer declares: `-` actions and refusals
    when observed for --prune, else one note."""
    found = candidates(spec, state, wanted)
    facts = state.prune
    if facts is None:
        shown = found.addresses
        if not shown:
            return Pruning(candidates=found)
        listed = ", ".join(shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5
                                         else "")
        return Pruning(notes=(f"{len(shown)} thing{'s' if len(shown) != 1 else ''} "
                              f"cephstack created {'are' if len(shown) != 1 else 'is'} no "
                              f"longer declared: apply --prune removes them ({listed})",),
                       candidates=found)
    actions, refusals = _pool_removals(found.pools, state, facts)
    for entity in found.users:
        sessions = facts.sessions.get(entity)
        if sessions is None:
            refusals.append(f"{entity}: its sessions were not read; plan --prune again")
        elif sessions:
            refusals.append(
                f"{entity}: cephstack created it and the spec no longer declares it, but "
                f"{sessions} client session(s) with the monitors use it now; --prune removes "
                "a user only once no client is connected with it; fix: move those clients "
                "to their new user (host install of the new bundle, restart the service), "
                "then apply --prune again; apply without --prune makes the other changes")
        else:
            actions.append(RemoveClient(entity))
    stale = list(found.stale)
    for path, entity in found.keyrings:
        if facts.keyrings_held.get(path):
            actions.append(RemoveKeyring(path, entity))
        else:  # replaced since apply wrote it: not cephstack's file any more
            stale.append(("keyring", path, f"{path} no longer holds the key of "
                          f"{entity}: left in place"))
    actions += [ForgetRecord(*record) for record in stale]
    return Pruning(tuple(actions), tuple(refusals), (), found)
