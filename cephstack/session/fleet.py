"""The clusters of a spec as one fleet: the one-cluster connect/observe/plan on every
cluster at once (one thread each: N clusters cost about one). A spec with `cluster:` is a
fleet of one; with `clusters:` each cluster's addresses are shown under its name
("edge1/pool.images-edge1"), and RBD mirroring is set up once the pools exist on both sides
(cephstack.session.mirroring).

A cluster that fails (unreachable, refused, a step failed) keeps its error; the others'
plans and results are still shown and applied. Exit non-zero if any failed.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from cephstack.errors import EXIT_FAILED, CephstackError, SeveralClustersUsage
from cephstack.plan.make import Plan
from cephstack.plan.mirroring import MirrorAction
from cephstack.session.connect import Settings, connect, observe_for, plan_for
from cephstack.spec.fleet import split
from cephstack.spec.load import Spec


@dataclass
class ClusterRun:
    """One cluster's part of a run: its plan, what apply did, and its error if any."""

    name: str
    spec: Spec
    observe_as: Spec | None = None  # the spec observe_for reads (render: the monitors too)
    conn: Any = None
    state: Any = None
    plan: Plan | None = None
    applied: list[str] = field(default_factory=list)  # steps done, without the cluster
    after: Plan | None = None  # planned again after apply: empty when converged
    error: Exception | None = None
    locked: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    early: Any = None  # what creating the new pools with the lock's commit did
    pools_created: bool = False  # ... so apply_plan does not create them again
    prune: bool = False  # observed for --prune: its removals and refusals are planned
    shown: Plan | None = None  # the plan shown before the lock was taken (apply --yes)
    result: Any = None  # apply_plan's ApplyResult
    named: bool = True  # one of a spec's `clusters:` (not a spec's one `cluster:`)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Fleet:
    runs: dict[str, ClusterRun]
    mirroring: list[MirrorAction] = field(default_factory=list)
    mirroring_pending: str | None = None  # why mirroring could not be planned yet
    mirroring_note: str | None = None  # why it was not looked at (a side failed)
    rendered: Plan | None = None  # the spec's rendered files against the disk (render:)
    rendered_error: Exception | None = None
    mirroring_error: Exception | None = None
    named: bool = True  # the clusters are shown by name (a spec with `clusters:`)

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

    @property
    def only(self) -> ClusterRun:
        """The run of a fleet of one."""
        [run] = self.runs.values()
        return run

    def exit_code(self) -> int:
        errors = [r.error for r in self.failed] + [
            e for e in (self.mirroring_error, self.rendered_error) if e is not None]
        if not errors:
            return 0
        codes = {getattr(e, "exit_code", EXIT_FAILED) for e in errors}
        return codes.pop() if len(codes) == 1 else EXIT_FAILED


def refuse_overrides(settings: Any, spec: Spec) -> None:
    """--conf, --keyring and --id name one cluster: with several, the spec says each.
    `settings`: Settings (or anything with conf, keyring and client)."""
    if not spec.clusters:
        return
    given = [flag for flag, attr in (("--conf", "conf"), ("--keyring", "keyring"),
                                     ("--id", "client")) if getattr(settings, attr, None)]
    if given:
        raise SeveralClustersUsage(
            f"{', '.join(given)}: the spec {spec.path} has several clusters "
            f"({', '.join(spec.clusters)}); each is reached as its clusters: entry says",
            hint="set conf, keyring and client under clusters: in the spec")


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
    clusters: a late command would miss the monitor's current proposal, a second lost).
    The caller closes the fleet (close()); on an interruption it is closed here."""
    refuse_overrides(settings, spec)
    prune, named = settings.prune, bool(spec.clusters)
    runs = {name: ClusterRun(name, sub, replace(sub, render=spec.render) if spec.render
                             else sub, prune=prune, named=named)
            for name, sub in split(spec).items()}
    multi = Fleet(runs, named=named)

    def open_(run: ClusterRun) -> None:
        connect_run(settings, run)

    def plan_(run: ClusterRun) -> None:
        replan(run)
        if then is not None:
            then(run)

    try:
        if prune:  # every cluster reached before any is planned: no two entries share one
            from cephstack.plan.prune import refuse_shared

            each(list(runs.values()), open_)
            refuse_shared(runs)
            each(list(runs.values()), plan_)
        else:
            each(list(runs.values()), lambda run: (open_(run), plan_(run)))
    except BaseException:  # SIGINT/SIGTERM: release the locks taken, close the connections
        close(multi)
        raise
    return multi


def connect_run(settings: Settings, run: ClusterRun) -> Any:
    """Connect `run` to its cluster (run.conn, also returned), as its spec entry says."""
    try:
        run.conn = connect(settings, run.spec)
    except CephstackError as e:  # the one-cluster hint names --conf; here it is the spec
        if run.named and any(flag in (e.hint or "") for flag in ("--conf", "--keyring", "--id")):
            e.hint = f"check clusters.{run.name} (conf, keyring, client) in the spec"
        raise
    return run.conn


def replan(run: ClusterRun, *, records: bool = True) -> None:
    """Observe and plan `run` again; with cephstack's records of what it created (and, for
    --prune, what removing them needs) unless `records` is False (the check after apply)."""
    from cephstack.ceph.records import observe_with_records

    def observe():
        return observe_for(run.conn, run.observe_as or run.spec)

    run.state = (observe_with_records(run.conn, observe, run.spec, run.prune) if records
                 else observe())
    run.plan = plan_for(run.spec, run.state)


def plan_rendered(spec: Spec, multi: Fleet) -> None:
    """render: files against the disk, from every cluster's state (not when one failed),
    when no cluster's own plan holds them (a fleet of one compares them in its plan)."""
    if spec.render is None or any(r.spec.render is not None for r in multi.runs.values()):
        return
    from cephstack.session.drift import rendered_plan

    multi.rendered = rendered_plan(spec, {n: r.state if r.ok else None
                                          for n, r in multi.runs.items()})


def close(multi: Fleet) -> None:
    for run in multi.runs.values():
        with contextlib.suppress(Exception):
            run.locked.close()
        if run.conn is not None:
            with contextlib.suppress(Exception):
                run.conn.close()
