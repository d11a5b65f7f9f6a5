"""plan and apply: show what would change; make the cluster match the spec."""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

from cephstack.commands.common import (
    EXIT_CODES,
    add_cluster,
    add_lock_wait,
    add_output,
    confirm,
    connect,
    hold_lock,
    load_spec_of,
    observe_for,
    plan_for,
    print_err,
    print_out,
    would_overwrite,
)
from cephstack.errors import EXIT_FAILED, CephstackError


def cmd_plan(args: argparse.Namespace) -> int:
    from cephstack.report.views import dumps, plan_json, plan_text

    spec = load_spec_of(args)
    if spec.clusters:  # several clusters: plan each at once (cephstack/commands/multicommands.py)
        from cephstack.commands.multicommands import cmd_plan as plan_clusters

        return plan_clusters(args, spec)
    if args.out and would_overwrite(Path(args.out), args.force):
        return EXIT_FAILED
    with connect(args, spec) as conn:
        state = _observed(args, conn, spec)
        plan = plan_for(spec, state)
    if args.out:
        from cephstack.keyfiles import write_atomic

        saved = plan_json(plan, spec=str(Path(args.spec).absolute()),
                          spec_sha256=file_sha256(Path(args.spec)), prune=args.prune)
        write_atomic(args.out, dumps(saved) + "\n", 0o644, dir_mode=0o755)
    if args.output == "json":
        print_out(dumps(plan_json(plan, mon_commands=conn.commands_sent)))
    else:
        print_out(plan_text(plan))
        if args.out:
            print_out(f"Saved to {args.out}: cephstack apply --plan {args.out} applies exactly "
                 "this, or refuses if the spec or the cluster changed.")
    if plan.refusals:
        return EXIT_FAILED
    return 2 if args.detailed_exitcode and not plan.empty else 0


def _observed(args: argparse.Namespace, conn, spec):
    """observe_for, with cephstack's records of what it created (and, for --prune, what
    removing them needs)."""
    from cephstack.ceph.records import observe_with_records

    return observe_with_records(conn, lambda: observe_for(conn, spec), spec,
                                getattr(args, "prune", False))


def file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _saved_plan(args: argparse.Namespace) -> dict:
    """Read a saved plan; point args.spec at its spec, refusing if that spec changed."""
    from cephstack.errors import StalePlan

    try:
        saved = json.loads(Path(args.plan).read_text())
        spec_path, digest, fingerprint = saved["spec"], saved["spec_sha256"], \
            saved["fingerprint"]
    except (OSError, ValueError, KeyError) as e:
        raise CephstackError(f"{args.plan}: not a plan saved by cephstack plan --out ({e})") \
            from None
    if not Path(spec_path).is_file() or file_sha256(Path(spec_path)) != digest:
        raise StalePlan(f"the spec {spec_path} changed since {args.plan} was made",
                        hint="run cephstack plan --out again")
    args.spec = spec_path
    if args.prune and not saved.get("prune"):
        raise CephstackError(f"{args.plan} was saved without --prune: it removes nothing",
                             hint="run cephstack plan --prune --out again and review it")
    args.prune = bool(saved.get("prune"))  # the saved plan says whether it removes
    return {"fingerprint": fingerprint}


def _confirm(args: argparse.Namespace) -> bool:
    # a saved plan was reviewed when it was made
    return bool(args.plan) or confirm(args, "Apply these changes?", "nothing applied")


def cmd_apply(args: argparse.Namespace) -> int:
    from cephstack.report.views import dumps, plan_json, plan_text
    from cephstack.session.apply import apply_plan

    saved = _saved_plan(args) if args.plan else None
    spec = load_spec_of(args)
    if spec.clusters:  # several clusters: apply to each at once (commands/multicommands.py)
        from cephstack.commands.multicommands import cmd_apply as apply_clusters

        return apply_clusters(args, spec, _confirm, saved)
    as_json = args.output == "json"
    progress = (lambda _: None) if as_json else (lambda line: print_err(f"  {line}"))
    early = None  # the pools created with the lock's commit (lock_creating_pools)
    with connect(args, spec) as conn, contextlib.ExitStack() as locked:
        state = _observed(args, conn, spec)
        plan = plan_for(spec, state)
        shown = None
        if not plan.empty and creates_pools_early(args, plan):
            shown = plan
            if not as_json:
                print_out(plan_text(plan))
            plan, state, early = lock_creating_pools(args, conn, spec, plan, locked, progress)
        elif not plan.empty:
            # Changes ahead: take the cluster's run lock, then look again under it (another
            # run may just have changed the cluster). A no-op apply never takes it.
            locked.enter_context(hold_lock(args, conn, "apply"))
            state = _observed(args, conn, spec)
            plan = plan_for(spec, state)
        if saved and saved["fingerprint"] != plan.fingerprint:
            from cephstack.errors import StalePlan

            raise StalePlan(f"the cluster changed since {args.plan} was made (state "
                            f"{saved['fingerprint']}, now {plan.fingerprint}); nothing applied",
                            hint="run cephstack plan --out again and review it")
        if not as_json and plan is not shown:
            if shown is not None and early is not None:
                print_out("The cluster changed while the lock was being taken (the new pools "
                          "were created); the plan is now:")
            elif shown is not None:
                print_out("Another run held the lock; looked at again under it, the plan is "
                          "now:")
            print_out(plan_text(plan))
        if plan.empty and not plan.refusals:  # refused with nothing to do: not converged
            if as_json:
                print_out(dumps(plan_json(plan, applied=[], mon_commands=conn.commands_sent)))
            return 0
        applicable = not plan.refusals and not (plan.disruptive and not args.allow_disruptive)
        if applicable and not _confirm(args):
            return EXIT_FAILED
        result = apply_plan(conn, plan, state, allow_disruptive=args.allow_disruptive,
                            progress=progress, pools_created=plan is shown)
        if early is not None:
            result.done[:0], result.seconds = early.done, result.seconds + early.seconds
        # Converged means: observing again finds nothing left to do.
        after_state = observe_for(conn, spec)
        after = plan_for(spec, after_state)
        if plan.render_after_apply and not after.empty and all(
                a.kind in ("rewrite_rendered_file", "remove_rendered_file")
                for a in after.actions):
            # Files that needed the new users' keys: refresh them now, as the plan said.
            refreshed = apply_plan(conn, after, after_state, progress=progress)
            result.done += refreshed.done
            after = plan_for(spec, observe_for(conn, spec))
    if as_json:
        print_out(dumps(plan_json(plan, applied=result.done, seconds=round(result.seconds, 3),
                             mon_commands=conn.commands_sent, converged=after.empty)))
    else:
        print_out(f"Apply complete: {len(result.done)} step(s) in {result.seconds:.1f} s, "
             f"{result.commands_sent} mon command(s).")
    if not after.empty:
        print_err("error: the cluster still differs from the spec after apply:\n"
             + plan_text(after))
        return EXIT_FAILED
    return 0


def creates_pools_early(args: argparse.Namespace, plan) -> bool:
    """apply --yes creates the plan's new pools with the run lock's commit: a plan nobody
    confirms interactively, that can be applied, whose pools need no new CRUSH rule."""
    kinds = {a.kind for a in plan.actions}
    return (args.yes and not args.plan and not plan.refusals
            and not (plan.disruptive and not args.allow_disruptive)
            and "create_pool" in kinds and "create_crush_rule" not in kinds)


def lock_creating_pools(args: argparse.Namespace, conn, spec, plan, locked, progress):
    """Take the run lock with the plan's new pools created in the same monitor round, then
    look again under the lock. Returns (plan, state, what create_pools did): the plan kept
    when, apart from those pools, the cluster still calls for exactly the rest of it (its
    pool steps need the new pools as planned, not as the monitors' PG summary shows them
    a moment after creation); else the plan made under the lock, as without --yes.
    Creating a declared pool that is missing is safe whoever wins a race for the lock."""
    import time

    from cephstack.session.apply import ApplyResult, create_pools

    outcome: list[ApplyResult | Exception] = []

    def create() -> None:
        started = time.monotonic()
        try:
            done = create_pools(conn, plan, progress)
            done.seconds = time.monotonic() - started
            outcome.append(done)
        except Exception as e:  # raised below, under the lock, like any apply failure
            outcome.append(e)

    lock = locked.enter_context(hold_lock(args, conn, "apply", alongside=create))
    state = _observed(args, conn, spec)
    now = plan_for(spec, state)
    if not lock.ran_alongside:  # another run held the lock at first: nothing was created
        return now, state, None
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return (plan if still_the_plan(plan, now) else now), state, outcome[0]


def still_the_plan(shown, now) -> bool:
    """Whether `now` (planned after `shown`'s new pools were made) asks for the rest of
    `shown` and nothing else: the same actions apart from those pools', and no refusal."""
    created = {a.address for a in shown.actions if a.kind == "create_pool"}

    def rest(p) -> list[tuple[str, str]]:
        return sorted((a.kind, a.address) for a in p.actions if a.address not in created)

    return not now.refusals and rest(shown) == rest(now)


def _add_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prune", action="store_true",
                   help="also remove what cephstack created and the spec no longer declares "
                   "(pools when empty, users when no client is connected with them, keyring "
                   "files apply wrote); never what cephstack did not create")


def register(sub, fmt) -> None:
    p = sub.add_parser("plan", help="show what apply would change", formatter_class=fmt,
                       epilog=EXIT_CODES, description="Observe the cluster and show, "
                       "Terraform-style, what apply would change. Changes nothing.")
    add_cluster(p)
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 0 when there is nothing to do, 2 when there are changes")
    p.add_argument("--out", metavar="FILE", help="also save the plan (no keys in it) for "
                   "apply --plan FILE")
    p.add_argument("--force", action="store_true", help="let --out overwrite an existing file")
    _add_prune(p)
    add_output(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("apply", help="make the cluster match the spec", formatter_class=fmt,
                       epilog=EXIT_CODES, description="Plan, show the plan, ask, apply, "
                       "then observe again to prove the cluster matches. Deletes only with "
                       "--prune, and only what cephstack created.")
    add_cluster(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--plan", metavar="FILE", help="apply a plan saved by plan --out: refused "
                   "if the spec or the cluster changed since (its spec replaces -f)")
    p.add_argument("--allow-disruptive", action="store_true",
                   help="also apply changes that move data or remove a client's access")
    _add_prune(p)
    add_lock_wait(p)
    add_output(p)
    p.set_defaults(func=cmd_apply)
