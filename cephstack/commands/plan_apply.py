"""plan and apply: show what would change; make the cluster match the spec."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cephstack.commands.common import (
    EXIT_CODES,
    add_cluster,
    add_lock_wait,
    add_output,
    confirm,
    load_spec_of,
    print_err,
    print_out,
    settings_of,
    would_overwrite,
)
from cephstack.errors import EXIT_FAILED, CephstackError


def cmd_plan(args: argparse.Namespace) -> int:
    from cephstack.report.planviews import view_of
    from cephstack.session import fleet, planapply

    spec = load_spec_of(args)
    settings = settings_of(args)
    fleet.refuse_overrides(settings, spec)
    if args.out and would_overwrite(Path(args.out), args.force):
        return EXIT_FAILED
    multi = planapply.plan(settings, spec)
    fleet.close(multi)
    view = view_of(spec, multi)
    if error := view.failure():
        raise error
    as_json = args.output == "json"
    said = args.out and not multi.failed and not as_json
    if args.out and not multi.failed:
        _save(args, view)
    if said and view.saved_line_first:
        print_out(view.saved_line(args.out))
    print_out(_dumps(view.plan_json(mon_commands=True)) if as_json else view.plan_text())
    if said and not view.saved_line_first:
        print_out(view.saved_line(args.out))
    _print_err(view.failure_lines(as_json))
    if code := multi.exit_code():
        return code
    if multi.refused:
        return EXIT_FAILED
    return 2 if args.detailed_exitcode and not multi.empty else 0


def _dumps(data: dict) -> str:
    from cephstack.report.views import dumps

    return dumps(data)


def _print_err(lines: list[str]) -> None:
    for line in lines:
        print_err(line)


def file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _save(args: argparse.Namespace, view) -> None:
    """plan --out: the plan (no keys) and what apply --plan checks: the spec's digest and
    each cluster's state (its fingerprint)."""
    from cephstack.keyfiles import write_atomic

    saved = view.plan_json(spec=str(Path(args.spec).absolute()),
                           spec_sha256=file_sha256(Path(args.spec)), prune=args.prune)
    write_atomic(args.out, _dumps(saved) + "\n", 0o644, dir_mode=0o755)


def _saved_plan(args: argparse.Namespace) -> dict:
    """Read a saved plan; point args.spec at its spec, refusing if that spec changed."""
    from cephstack.errors import StalePlan

    try:
        saved = json.loads(Path(args.plan).read_text())
        spec_path, digest = saved["spec"], saved["spec_sha256"]
        saved["fingerprint"]  # noqa: B018 - a plan saved by cephstack has one
    except (OSError, ValueError, KeyError, TypeError) as e:
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
    return saved


def _confirm(args: argparse.Namespace) -> bool:
    # a saved plan was reviewed when it was made
    return bool(args.plan) or confirm(args, "Apply these changes?", "nothing applied")


def cmd_apply(args: argparse.Namespace) -> int:
    from cephstack.commands.fleetoutput import progress_printer
    from cephstack.report.planviews import shows_names, view_of
    from cephstack.session import fleet, planapply

    saved = _saved_plan(args) if args.plan else None
    spec = load_spec_of(args)
    settings = settings_of(args)
    fleet.refuse_overrides(settings, spec)
    as_json, named = args.output == "json", shows_names(spec)
    options = planapply.ApplyOptions(yes=args.yes, saved=saved is not None,
                                     allow_disruptive=args.allow_disruptive)

    def progress_of(name: str):
        return progress_printer(as_json, name, named)

    multi = planapply.start_apply(settings, spec, options, progress_of)
    view = view_of(spec, multi)
    try:
        if error := view.failure():
            raise error
        if saved is not None and (stale := view.stale(saved, args.plan)):
            raise stale
        if not as_json:
            print_out(view.shown())
        if planapply.nothing_to_do(multi):
            if as_json:
                print_out(_dumps(view.plan_json(mon_commands=True, applied=[])))
            _print_err(view.failure_lines(as_json))
            return multi.exit_code()
        if planapply.needs_confirming(multi, options) and not _confirm(args):
            return EXIT_FAILED
        mirrored, rendered = planapply.apply(spec, multi, options, progress_of,
                                             view.still_differs)
    finally:
        fleet.close(multi)
    if error := view.failure():  # apply failed: its error, as it is
        raise error
    out, errors, code = view.applied(as_json, mirrored + rendered, mirrored)
    print_out(_dumps(out) if as_json else out)
    _print_err(errors)
    return code


def _add_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prune", action="store_true",
                   help="also remove what cephstack created and the spec no longer declares "
                   "(pools when empty, users when no client is connected with them, keyring "
                   "files apply wrote); never what cephstack did not create")


def register(sub, fmt) -> None:
    p = sub.add_parser("plan", help="show what apply would change", formatter_class=fmt,
                       epilog=EXIT_CODES + (
                           "\nexamples:\n"
                           "  cephstack plan -f cephstack.yaml\n"
                           "  cephstack plan --detailed-exitcode --output json\n"
                           "  cephstack plan --prune --out plan.json\n"),
                       description="Observe the cluster and show, "
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
                       epilog=EXIT_CODES + (
                           "\nexamples:\n"
                           "  cephstack apply -f cephstack.yaml\n"
                           "  cephstack apply --yes --lock-wait 60\n"
                           "  cephstack apply --plan plan.json\n"
                           "  cephstack apply --prune --allow-disruptive\n"),
                       description="Plan, show the plan, ask, apply, "
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
