"""plan and apply: show what would change; make the cluster match the spec."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from cephstack.commands.common import (
    EXIT_CODES,
    add_cluster,
    add_lock_wait,
    add_output,
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
    from cephstack.report import dumps, plan_json, plan_text

    spec = load_spec_of(args)
    if args.out and would_overwrite(Path(args.out), args.force):
        return EXIT_FAILED
    with connect(args, spec) as conn:
        state = observe_for(conn, spec)
        plan = plan_for(spec, state)
    if args.out:
        from cephstack.keyfiles import write_atomic

        saved = plan_json(plan, spec=str(Path(args.spec).absolute()),
                          spec_sha256=_sha256(Path(args.spec)))
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


def _sha256(path: Path) -> str:
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
    if not Path(spec_path).is_file() or _sha256(Path(spec_path)) != digest:
        raise StalePlan(f"the spec {spec_path} changed since {args.plan} was made",
                        hint="run cephstack plan --out again")
    args.spec = spec_path
    return {"fingerprint": fingerprint}


def _confirm(args: argparse.Namespace) -> bool:
    if args.yes or args.plan:  # a saved plan was reviewed when it was made
        return True
    if not sys.stdin.isatty():
        print_err("error: not a terminal and --yes not given: nothing applied")
        return False
    answer = input("Apply these changes? Only 'yes' is accepted: ")
    return answer.strip() == "yes"


def cmd_apply(args: argparse.Namespace) -> int:
    from cephstack.apply import apply_plan
    from cephstack.report import dumps, plan_json, plan_text

    saved = _saved_plan(args) if args.plan else None
    spec = load_spec_of(args)
    as_json = args.output == "json"
    with connect(args, spec) as conn, contextlib.ExitStack() as locked:
        state = observe_for(conn, spec)
        plan = plan_for(spec, state)
        if not plan.empty:
            # Changes ahead: take the cluster's run lock, then look again under it (another
            # run may just have changed the cluster). A no-op apply never takes it.
            locked.enter_context(hold_lock(args, conn, "apply"))
            state = observe_for(conn, spec)
            plan = plan_for(spec, state)
        if saved and saved["fingerprint"] != plan.fingerprint:
            from cephstack.errors import StalePlan

            raise StalePlan(f"the cluster changed since {args.plan} was made (state "
                            f"{saved['fingerprint']}, now {plan.fingerprint}); nothing applied",
                            hint="run cephstack plan --out again and review it")
        if not as_json:
            print_out(plan_text(plan))
        if plan.empty and not plan.refusals:  # refused with nothing to do: not converged
            if as_json:
                print_out(dumps(plan_json(plan, applied=[], mon_commands=conn.commands_sent)))
            return 0
        applicable = not plan.refusals and not (plan.disruptive and not args.allow_disruptive)
        if applicable and not _confirm(args):
            return EXIT_FAILED
        progress = (lambda _: None) if as_json else (lambda line: print_err(f"  {line}"))
        result = apply_plan(conn, plan, state, allow_disruptive=args.allow_disruptive,
                            progress=progress)
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
    add_output(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("apply", help="make the cluster match the spec", formatter_class=fmt,
                       epilog=EXIT_CODES, description="Plan, show the plan, ask, apply, "
                       "then observe again to prove the cluster matches. Never deletes.")
    add_cluster(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--plan", metavar="FILE", help="apply a plan saved by plan --out: refused "
                   "if the spec or the cluster changed since (its spec replaces -f)")
    p.add_argument("--allow-disruptive", action="store_true",
                   help="also apply changes that move data or remove a client's access")
    add_lock_wait(p)
    add_output(p)
    p.set_defaults(func=cmd_apply)
