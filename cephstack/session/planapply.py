"""plan and apply over a fleet (one cluster or several). plan: every cluster observed and
planned at once, then mirroring and a several-cluster spec's rendered files. apply: each
cluster's plan under its run lock, carried out on every cluster at once, then mirroring,
then the check that observing again finds nothing left to do, then the rendered files.

With --yes a plan's new pools are created with the run lock's own commit (they need no
proposal interval behind it); any other plan with changes takes the lock and is made again
under it (another run may just have changed the cluster). A plan with nothing to do never
takes the lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cephstack.errors import CephstackError
from cephstack.plan.make import Plan
from cephstack.session import fleet
from cephstack.session.connect import Settings, hold_lock
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.session.mirroring import apply_mirroring, check_mirroring, plan_mirroring
from cephstack.spec.load import Spec

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ApplyOptions:
    yes: bool = False  # nobody confirms interactively
    saved: bool = False  # a plan saved by plan --out (reviewed when it was made)
    allow_disruptive: bool = False


def creates_pools_early(options: ApplyOptions, plan: Plan) -> bool:
    """apply --yes creates the plan's new pools with the run lock's commit: a plan nobody
    confirms interactively, that can be applied, whose pools need no new CRUSH rule."""
    kinds = {a.kind for a in plan.actions}
    return (options.yes and not options.saved and applicable(plan, options)
            and "create_pool" in kinds and "create_crush_rule" not in kinds)


def applicable(plan: Plan, options: ApplyOptions) -> bool:
    return not plan.refusals and not (plan.disruptive and not options.allow_disruptive)


def still_the_plan(shown: Plan, now: Plan) -> bool:
    """Whether `now` (planned after `shown`'s new pools were made) asks for the rest of
    `shown` and nothing else: the same actions apart from those pools', and no refusal."""
    created = {a.address for a in shown.actions if a.kind == "create_pool"}

    def rest(p: Plan) -> list[tuple[str, str]]:
        return sorted((a.kind, a.address) for a in p.actions if a.address not in created)

    return not now.refusals and rest(shown) == rest(now)


def lock_creating_pools(settings: Settings, run: ClusterRun, progress: Progress) -> None:
    """Take the run lock with the plan's new pools created in the same monitor round, then
    look again under the lock. run.plan stays the plan shown when, apart from those pools,
    the cluster still calls for exactly the rest of it (its pool steps need the new pools
    as planned, not as the monitors' PG summary shows them a moment after creation); else
    it is the plan made under the lock, as without --yes. Creating a declared pool that is
    missing is safe whoever wins a race for the lock."""
    from cephstack.session.apply import ApplyResult, create_pools

    shown = run.shown = run.plan
    outcome: list[ApplyResult | Exception] = []

    def create() -> None:
        started = time.monotonic()
        try:
            done = create_pools(run.conn, shown, progress)
            done.seconds = time.monotonic() - started
            outcome.append(done)
        except Exception as e:  # raised below, under the lock, like any apply failure
            outcome.append(e)

    lock = run.locked.enter_context(hold_lock(settings, run.conn, "apply", alongside=create))
    fleet.replan(run)
    if not lock.ran_alongside:  # another run held the lock at first: nothing was created
        return
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    run.early = outcome[0]
    if still_the_plan(shown, run.plan):
        run.plan, run.pools_created = shown, True


def lock_and_replan(settings: Settings, options: ApplyOptions,
                    progress_of: Callable[[str], Progress]) -> Callable[[ClusterRun], None]:
    """fleet.start's `then` for apply: changes ahead take the lock (with --yes, creating
    the new pools in the lock's own monitor round), then look again under it."""
    def then(run: ClusterRun) -> None:
        if run.plan is None or run.plan.empty:
            return
        if creates_pools_early(options, run.plan):
            lock_creating_pools(settings, run, progress_of(run.name))
        else:
            run.locked.enter_context(hold_lock(settings, run.conn, "apply"))
            fleet.replan(run)
    return then


def plan(settings: Settings, spec: Spec,
         then: Callable[[ClusterRun], None] | None = None) -> Fleet:
    """Every cluster connected, observed and planned (`then` right after, in its thread);
    then mirroring and rendered files planned. The caller closes it (fleet.close)."""
    multi = fleet.start(settings, spec, then=then)
    try:
        plan_mirroring(spec, multi)
        fleet.plan_rendered(spec, multi)
    except BaseException:
        fleet.close(multi)
        raise
    return multi


def start_apply(settings: Settings, spec: Spec, options: ApplyOptions,
                progress_of: Callable[[str], Progress]) -> Fleet:
    """plan(), each cluster with changes locked and planned again under its lock."""
    return plan(settings, spec, then=lock_and_replan(settings, options, progress_of))


def nothing_to_do(multi: Fleet) -> bool:
    return multi.empty and not multi.refused


def needs_confirming(multi: Fleet, options: ApplyOptions) -> bool:
    """Whether anything would be applied (a plan refused or disruptive without
    --allow-disruptive is refused without asking)."""
    return any(r.plan is not None and not r.plan.empty and applicable(r.plan, options)
               for r in multi.runs.values() if r.ok) or bool(
        multi.mirroring or multi.mirroring_pending or (multi.rendered
                                                       and multi.rendered.actions))


def apply(spec: Spec, multi: Fleet, options: ApplyOptions, progress_of: Callable[[str], Progress],
          differs: Callable[[ClusterRun], str]) -> tuple[list[str], list[str]]:
    """Carry out every cluster's plan at once, then mirroring; check that each cluster
    converged (`differs(run)`: the error of one that did not), that mirroring did, then
    write a several-cluster spec's rendered files. Returns (mirroring steps, rendered
    files written); each cluster's steps are in run.applied, its errors in run.error."""
    runs = list(multi.runs.values())
    fleet.each(runs, lambda run: _apply_one(run, options, progress_of(run.name)))
    mirrored = apply_mirroring(spec, multi, progress_of("mirroring"))
    fleet.each(runs, lambda run: _converge(run, progress_of(run.name), differs))
    check_mirroring(spec, multi)
    return mirrored, _write_rendered(spec, multi)


def _apply_one(run: ClusterRun, options: ApplyOptions, progress: Progress) -> None:
    from cephstack.session.apply import ApplyFailed, apply_plan

    if run.plan is None or (run.plan.empty and not run.plan.refusals):
        return
    early = list(run.early.done) if run.early else []
    try:
        run.result = apply_plan(run.conn, run.plan, run.state,
                                allow_disruptive=options.allow_disruptive, progress=progress,
                                pools_created=run.pools_created)
    except ApplyFailed as e:
        run.applied = early + list(e.done)
        raise
    if run.early is not None:
        run.result.seconds += run.early.seconds
    run.applied = run.result.done = early + run.result.done


def _only_rendered_files(plan: Plan) -> bool:
    return not plan.empty and all(
        a.kind in ("rewrite_rendered_file", "remove_rendered_file") for a in plan.actions)


def _converge(run: ClusterRun, progress: Progress,
              differs: Callable[[ClusterRun], str]) -> None:
    """Observe again (run.after): converged means nothing left to do. Rendered files that
    needed the new users' keys are refreshed first, as the plan said. run.plan stays the
    plan that was applied."""
    from cephstack.session.apply import apply_plan

    applied = run.plan
    try:
        fleet.replan(run, records=False)
        if applied is not None and applied.render_after_apply and \
                _only_rendered_files(run.plan):
            refreshed = apply_plan(run.conn, run.plan, run.state, progress=progress)
            run.applied += refreshed.done
            fleet.replan(run, records=False)
        run.after = run.plan
    finally:
        run.plan = applied
    if not run.after.empty:
        raise CephstackError(differs(run))


def _write_rendered(spec: Spec, multi: Fleet) -> list[str]:
    """After the clusters (their new users' keys exist now): a several-cluster spec's
    render: files, then the check that nothing is left to write. (A spec's one cluster
    writes them in its own plan.)"""
    from cephstack.session.drift import rendered_plan, write_rendered_files

    if spec.render is None or any(r.spec.render is not None for r in multi.runs.values()):
        return []
    if multi.failed:
        multi.rendered_error = CephstackError(
            "rendered files not written: rendering needs every cluster, and "
            f"{', '.join(r.name for r in multi.failed)} failed")
        return []
    planned = multi.rendered
    try:
        states = {n: r.state for n, r in multi.runs.items()}
        done = write_rendered_files(spec, rendered_plan(spec, states))
        if (left := rendered_plan(spec, states)) and left.actions:
            raise CephstackError("rendered files still differ after apply: " + ", ".join(
                a.address for a in left.actions))
    except CephstackError as e:
        multi.rendered_error, done = e, []
    multi.rendered = planned  # report what was planned
    return done
