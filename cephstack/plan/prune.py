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
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cephstack.errors import SharedCluster
from cephstack.plan.actions import Action, ForgetRecord, RemoveClient, RemoveKeyring, RemovePool
from cephstack.plan.state import ClusterState, PoolContents, PruneFacts, RecordedKeyring
from cephstack.spec.caps import parse_cap
from cephstack.spec.load import Spec


@dataclass(frozen=True)
class Candidates:
    pools: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    keyrings: tuple[tuple[str, str], ...] = ()  # (path, entity) of this host's files
    stale: tuple[tuple[str, str, str], ...] = ()  # (record, name, what is gone)
    doubts: tuple[str, ...] = ()  # records the facts do not bear out: never acted on

    @property
    def addresses(self) -> list[str]:
        return ([f"pool.{p}" for p in self.pools] + list(self.users)
                + [f"keyring {p}" for p, _ in self.keyrings])


def _declared_keyrings(spec: Spec, wanted: Collection[str], real_dir: str) -> dict[str, str]:
    """The keyring files the spec declares, by the path with the directory's links
    resolved (observed: Created.keyring_dir), so two namings of one directory are one."""
    k = spec.keyrings
    if not k.manage:
        return {}
    return {os.path.join(real_dir or os.path.abspath(k.directory),
                         os.path.basename(k.path_for(e))): e for e in wanted}


# Users cephstack never creates, whatever a record says: Ceph's own daemons' and the admin.
_NOT_OURS = re.compile(r"client\.(admin|bootstrap-[\w.-]*)|(?!client\.).*")


def _user_doubt(entity: str, spec: Spec, state: ClusterState) -> str | None:
    """Why the record of `entity` is not believed (None: it is)."""
    if _NOT_OURS.fullmatch(entity) or entity == spec.cluster.client:
        return f"{entity} is not a user cephstack creates"
    given = state.created.user_caps.get(entity)
    if given is None:
        return f"no caps were recorded for {entity}"
    try:
        same = _normal(state.clients[entity].caps) == _normal(given)
    except ValueError:  # caps cephstack cannot parse were not written by cephstack
        same = False
    return None if same else f"{entity}'s caps are no longer the ones cephstack gave it"


def _normal(caps: dict[str, str]) -> dict[str, frozenset]:
    return {daemon: parse_cap(text) for daemon, text in caps.items() if text.strip()}


def _pool_doubt(name: str, state: ClusterState) -> str | None:
    recorded = state.created.pool_times.get(name, "")
    have = state.pools[name].create_time
    if not recorded or recorded != have:
        return (f"pool {name} has the recorded id but not the recorded creation time "
                f"({recorded or 'none recorded'}, now {have or 'unknown'})")
    return None


def _keyring_doubt(path: str, rec: RecordedKeyring, declared_dir: str) -> str | None:
    if not declared_dir or os.path.dirname(rec.real) != declared_dir:
        return f"{path} is not in the spec's keyring directory"
    if not rec.regular or rec.real != os.path.abspath(path):
        return f"{path} is not a regular file reached without a link"
    return None


def candidates(spec: Spec, state: ClusterState, wanted: Collection[str]) -> Candidates:
    """`wanted`: the users the spec declares (catalog.desired_clients). A record is a
    claim: it is acted on only when the facts still bear it out (the pool's id and
    creation time, a client. user cephstack could have made with the caps it gave it, a
    regular file in the keyring directory); a doubtful one is named, never acted on."""
    created = state.created
    pools, users, stale, doubts = [], [], [], []
    for name, pool_id in sorted(created.pools.items()):
        have = state.pools.get(name)
        if have is not None and have.pool_id == pool_id:
            if name not in spec.pools:
                doubt = _pool_doubt(name, state)
                (doubts.append(doubt) if doubt else pools.append(name))
        elif name not in spec.pools:  # a declared one missing is made again, and recorded
            stale.append(("pool", name, f"pool {name} (id {pool_id}) is gone"
                          + (f"; the pool of that name now has id {have.pool_id}"
                             if have is not None else "")))
    for entity in sorted(created.users):
        if entity in wanted:
            continue
        if entity not in state.clients:
            stale.append(("user", entity, f"user {entity} is gone"))
        elif doubt := _user_doubt(entity, spec, state):
            doubts.append(doubt)
        else:
            users.append(entity)
    declared = _declared_keyrings(spec, wanted, created.keyring_dir)
    keyrings = []
    for path, rec in sorted(created.keyrings.items()):
        if declared.get(rec.real) == rec.entity or declared.get(path) == rec.entity:
            continue
        if not rec.exists:
            stale.append(("keyring", path, f"keyring file {path} is gone"))
        elif doubt := _keyring_doubt(path, rec, created.keyring_dir):
            doubts.append(doubt)
        else:
            keyrings.append((path, rec.entity))
    return Candidates(tuple(pools), tuple(users), tuple(keyrings), tuple(stale),
                      tuple(doubts))


def _contents_text(c: PoolContents) -> str:
    snaps = f"{'at least ' if c.snapshots_partial else ''}{c.snapshots} snapshot(s)"
    text = f"{c.images} image(s), {snaps}, {c.trash} trash entr{'y' if c.trash == 1 else 'ies'}"
    if c.objects:
        where = ", ".join(f"namespace {ns}" if ns else "the default namespace"
                          for ns in c.namespaces)
        text += (f", {'at least ' if c.objects_partial else ''}{c.objects} RADOS object(s) "
                 f"(in {where})")
    return text


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
            "`ceph tell mon.* config set mon_allow_pool_delete true`, apply --prune, then "
            "`ceph tell mon.* config set mon_allow_pool_delete false` (the running value: "
            "`ceph config set` does nothing while the monitors' ceph.conf sets it); or apply "
            "without --prune")
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
    told = _doubt_notes(found, state)
    if facts is None:
        shown = found.addresses
        if not shown:
            return Pruning(notes=told, candidates=found)
        listed = ", ".join(shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5
                                         else "")
        return Pruning(notes=(f"{len(shown)} thing{'s' if len(shown) != 1 else ''} "
                              f"cephstack created {'are' if len(shown) != 1 else 'is'} no "
                              f"longer declared: apply --prune removes them ({listed})",)
                       + told, candidates=found)
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
    return Pruning(tuple(actions), tuple(refusals), told, found)


def _doubt_notes(found: Candidates, state: ClusterState) -> tuple[str, ...]:
    """Records never acted on: those the facts do not bear out, and those kept from before
    records were per spec (another spec on this cluster may have made those)."""
    notes = [f"a record of what cephstack created is not acted on: {d} (`cephstack records "
             "list` shows the records)" for d in found.doubts]
    old = state.created.others.get("", ())
    if old:
        shown = ", ".join(old[:5]) + (f" and {len(old) - 5} more" if len(old) > 5 else "")
        notes.append(f"{len(old)} record(s) from before records were kept per spec ({shown}) "
                     "are never pruned: if this spec created them, `cephstack records adopt` "
                     "makes them its own")
    return tuple(notes)


# -- entries of a fleet that reach one Ceph cluster -----------------------------------
# Each cluster keeps its own records of what cephstack created, and each part of the spec
# is compared with them alone. That holds only while two entries of clusters: are two
# Ceph clusters: two entries reaching one cluster would each take the other's pools and
# users for undeclared ones, so --prune fails those entries before planning anything on
# them (from each connection's fsid alone: no command sent).


def shared(fsids: Mapping[str, str]) -> dict[str, list[str]]:
    """{entry: the other entries with its fsid} for the entries that share a cluster."""
    by_fsid: dict[str, list[str]] = {}
    for name, fsid in fsids.items():
        by_fsid.setdefault(fsid, []).append(name)
    return {name: [other for other in names if other != name]
            for names in by_fsid.values() if len(names) > 1 for name in names}


def shared_error(name: str, others: list[str], fsid: str) -> SharedCluster:
    return SharedCluster(
        f"--prune: clusters.{name} and clusters.{', clusters.'.join(others)} reach the same "
        f"Ceph cluster (fsid {fsid}); cephstack's records of what it created there are "
        f"shared, so pruning {name}'s part would remove what {', '.join(others)} declares: "
        "nothing planned or removed on it",
        hint="give each Ceph cluster one entry under clusters: (or run without --prune)")


def refuse_shared(runs: Mapping[str, Any]) -> None:
    """Between connecting and planning (fleet.start with --prune): each connected run
    (a ClusterRun) that shares its cluster with another entry fails with SharedCluster."""
    fsids = {name: run.conn.fsid() for name, run in runs.items() if run.ok}
    for name, others in shared(fsids).items():
        runs[name].error = shared_error(name, others, fsids[name])
