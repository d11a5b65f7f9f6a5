"""plan and apply for a spec with `clusters:`: the one-cluster observe/plan/apply on every
cluster at once (one thread each: N clusters cost about one), each address prefixed by its
cluster ("edge1/pool images-edge1"), then RBD mirroring once the pools exist on both sides.

A cluster that fails (unreachable, refused, a step failed) is reported with its error; the
others' plans and results are still shown and applied. Exit non-zero if any failed.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from cephstack.errors import EXIT_FAILED, CephCommandError, CephstackError
from cephstack.plan.make import RBD_APPLICATION, Plan
from cephstack.session.connect import Settings, connect, observe_for, plan_for
from cephstack.spec.fleet import split
from cephstack.spec.load import Spec


class _InCluster:
    """An action of one cluster's plan, its address prefixed with the cluster's name."""

    def __init__(self, cluster: str, action: Any) -> None:
        self.action = action
        self.address = f"{cluster}/{action.address}"
        self.symbol, self.kind = action.symbol, action.kind

    @property
    def disruptive(self) -> bool:
        return self.action.disruptive

    def changes(self) -> tuple:
        return self.action.changes()


@dataclass(frozen=True)
class MirrorStep:
    """A mirroring change (cephstack.ceph.mirror's MirrorChange) shown like an action."""

    address: str
    detail: str
    symbol = "~"
    kind = "mirroring"
    disruptive = False

    def changes(self) -> tuple:
        return ()


def prefixed(cluster: str, plan: Plan) -> Plan:
    return replace(plan, actions=tuple(_InCluster(cluster, a) for a in plan.actions),
                   unmanaged_pools=tuple(f"{cluster}/{p}" for p in plan.unmanaged_pools),
                   unmanaged_clients=tuple(f"{cluster}/{c}" for c in plan.unmanaged_clients),
                   refusals=tuple(f"{cluster}: {r}" for r in plan.refusals),
                   notes=tuple(f"{cluster}: {n}" for n in plan.notes))


@dataclass
class ClusterRun:
    """One cluster's part of a run: its plan, what apply did, and its error if any."""

    name: str
    spec: Spec
    observe_as: Spec | None = None  # the spec observe_for reads (render: the monitors too)
    conn: Any = None
    state: Any = None
    plan: Plan | None = None
    applied: list[str] = field(default_factory=list)
    after: Plan | None = None
    error: Exception | None = None
    locked: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    early: Any = None  # what creating the new pools with the lock's commit did
    pools_created: bool = False  # ... so apply_plan does not create them again
    prune: bool = False  # observed for --prune: its removals and refusals are planned

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Fleet:
    runs: dict[str, ClusterRun]
    mirroring: list[MirrorStep] = field(default_factory=list)
    mirroring_pending: str | None = None  # why mirroring could not be planned yet
    mirroring_note: str | None = None  # why it was not looked at (a side failed)
    rendered: Plan | None = None  # the spec's rendered files against the disk (render:)
    rendered_error: Exception | None = None
    mirroring_error: Exception | None = None

    @property
    def failed(self) -> list[ClusterRun]:
        return [r for r in self.runs.values() if not r.ok]

    @property
    def empty(self) -> bool:
        return all(r.plan is None or r.plan.empty for r in self.runs.values()) \
            and not self.mirroring and not self.mirroring_pending \
            and not (self.rendered and self.rendered.actions)

    @property
    def refused(self) -> bool:
        return any(r.plan and r.plan.refusals for r in self.runs.values())

    @property
    def fingerprint(self) -> str:
        parts = [f"{n}:{r.plan.fingerprint if r.plan else 'error'}" for n, r in self.runs.items()]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def exit_code(self) -> int:
        errors = [r.error for r in self.failed] + [
            e for e in (self.mirroring_error, self.rendered_error) if e is not None]
        if not errors:
            return 0
        codes = {getattr(e, "exit_code", EXIT_FAILED) for e in errors}
        return codes.pop() if len(codes) == 1 else EXIT_FAILED


def each(runs: list[ClusterRun], work: Callable[[ClusterRun], None]) -> None:
    """`work` on every cluster still healthy, one thread each; an error stays its cluster's."""
    def guarded(run: ClusterRun) -> None:
        try:
            work(run)
        except Exception as e:  # noqa: BLE001 - reported per cluster, never lost
            run.error = e

    todo = [r for r in runs if r.ok]
    if len(todo) == 1:
        guarded(todo[0])
    elif todo:
        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            list(pool.map(guarded, todo))


def start(settings: Settings, spec: Spec,
          then: Callable[[ClusterRun], None] | None = None) -> Fleet:
    """Connect to every cluster, observe it and plan it, at once; `then` right after, in
    the same thread (apply's lock follows the observation without waiting for the other
    clusters: a late command would miss the monitor's current proposal, a second lost)."""

    prune = settings.prune
    runs = {name: ClusterRun(name, sub, replace(sub, render=spec.render) if spec.render
                             else sub, prune=prune) for name, sub in split(spec).items()}

    def open_(run: ClusterRun) -> None:
        connect_run(settings, run)

    def plan_(run: ClusterRun) -> None:
        replan(run)
        if then is not None:
            then(run)

    if prune:  # every cluster reached before any is planned: two entries must not share one
        from cephstack.plan.multiprune import refuse_shared

        each(list(runs.values()), open_)
        refuse_shared(runs)
        each(list(runs.values()), plan_)
    else:
        each(list(runs.values()), lambda run: (open_(run), plan_(run)))
    return Fleet(runs)


def connect_run(settings: Settings, run: ClusterRun) -> Any:
    """Connect `run` to its cluster (run.conn, also returned), as its spec entry says."""
    try:
        run.conn = connect(settings, run.spec)
    except CephstackError as e:  # the one-cluster hint names --conf; here it is the spec
        if any(flag in (e.hint or "") for flag in ("--conf", "--keyring", "--id")):
            e.hint = f"check clusters.{run.name} (conf, keyring, client) in the spec"
        raise
    return run.conn


def replan(run: ClusterRun, *, records: bool = True) -> None:
    """Observe and plan `run` again; with cephstack's records of what it created (and, for
    --prune, what removing them needs) unless `records` is False (the check after apply,
    as one-cluster apply's)."""
    from cephstack.ceph.records import observe_with_records

    def observe():
        return observe_for(run.conn, run.observe_as or run.spec)

    run.state = (observe_with_records(run.conn, observe, run.spec, run.prune) if records
                 else observe())
    run.plan = plan_for(run.spec, run.state)


# The manager's rbd_support module knows a pool is an RBD pool from its own copy of the OSD
# map, a moment after the monitors: right after apply creates a pool, its snapshot
# schedule commands answer EINVAL "... is not an RBD pool" until that copy catches up.
_MGR_CATCH_UP = 10.0


def _manager_caught_up(call: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + _MGR_CATCH_UP
    while True:
        try:
            return call()
        except CephCommandError as e:
            if "is not an RBD pool" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def plan_rendered(spec: Spec, multi: Fleet) -> None:
    """render: files against the disk, from every cluster's state (not when one failed)."""
    from cephstack.render.multidrift import rendered_plan

    multi.rendered = rendered_plan(spec, {n: r.state if r.ok else None
                                          for n, r in multi.runs.items()})


def plan_mirroring(spec: Spec, multi: Fleet) -> None:
    """What mirroring would change, asked of both sides (read-only); pending while a side's
    pools do not exist yet (apply sets it up right after creating them)."""
    m = spec.mirroring
    if m is None:
        return
    sides = [multi.runs[m.primary], multi.runs[m.secondary]]
    if not all(r.ok and r.state is not None for r in sides):
        multi.mirroring_note = (f"mirroring {m.primary} -> {m.secondary} not looked at: "
                                f"{', '.join(r.name for r in sides if not r.ok)} failed")
        return
    # Ready: the pool exists and is an RBD pool (apply --yes creates pools first, with the
    # run lock, and enables the rbd application in a later round).
    missing = [f"{r.name}/{p}" for r in sides for p in m.pools
               if p not in r.state.pools or RBD_APPLICATION not in r.state.pools[p].applications]
    if missing:
        multi.mirroring_pending = (f"mirroring {m.primary} -> {m.secondary} of "
                                   f"{', '.join(m.pools)} is set up once {', '.join(missing)} "
                                   "exist as RBD pools (apply sets it up right after them)")
        return
    from cephstack.ceph.mirror import mirroring_changes

    try:
        changes = _manager_caught_up(lambda: mirroring_changes(
            sides[0].conn, sides[1].conn, list(m.pools), primary_site=m.primary,
            secondary_site=m.secondary, schedule=m.schedule))
    except CephstackError as e:
        multi.mirroring_error = e
        return
    multi.mirroring = [MirrorStep(c.address, c.detail) for c in changes]


def apply_mirroring(spec: Spec, multi: Fleet, progress: Callable[[str], None]) -> list[str]:
    m = spec.mirroring
    if m is None or not (multi.mirroring or multi.mirroring_pending):
        return []
    sides = [multi.runs[m.primary], multi.runs[m.secondary]]
    if not all(r.ok for r in sides):
        multi.mirroring_error = CephstackError(
            f"mirroring {m.primary} -> {m.secondary} not set up: "
            f"{', '.join(r.name for r in sides if not r.ok)} failed",
            hint="fix that cluster and run apply again")
        return []
    from cephstack.ceph.mirror import ensure_mirroring

    try:
        done = _manager_caught_up(lambda: ensure_mirroring(
            sides[0].conn, sides[1].conn, list(m.pools), primary_site=m.primary,
            secondary_site=m.secondary, schedule=m.schedule, progress=progress))
    except CephstackError as e:
        multi.mirroring_error = e
        return []
    return [f"{c.address}: {c.detail}" for c in done]


def check_mirroring(spec: Spec, multi: Fleet) -> None:
    """After apply (states observed again): mirroring must now have nothing left to do."""
    if spec.mirroring is None or multi.mirroring_error:
        return
    probe = Fleet(multi.runs)
    plan_mirroring(spec, probe)
    left = [f"{s.address}: {s.detail}" for s in probe.mirroring] + (
        [probe.mirroring_pending] if probe.mirroring_pending else [])
    if probe.mirroring_error or left:
        multi.mirroring_error = probe.mirroring_error or CephstackError(
            "mirroring still differs from the spec after apply: " + "; ".join(left))


def close(multi: Fleet) -> None:
    for run in multi.runs.values():
        with contextlib.suppress(Exception):
            run.locked.close()
        if run.conn is not None:
            with contextlib.suppress(Exception):
                run.conn.close()
