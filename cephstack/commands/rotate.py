"""rotate: new cephx keys for the spec's users, and every file holding them rewritten."""

from __future__ import annotations

import argparse

from cephstack.commands.common import (
    EXIT_CODES,
    add_cluster,
    add_lock_wait,
    add_only_clusters,
    add_output,
    confirm,
    connect,
    hold_lock,
    load_spec_of,
    observe_for,
    print_err,
    print_out,
)
from cephstack.errors import EXIT_FAILED


def _rendered(spec):
    """state -> the spec's rendered files against the disk (nothing when it renders none)."""
    if spec.render is None:
        return lambda _state: ()
    from cephstack.render.drift import rendered_on_disk

    return lambda state: rendered_on_disk(spec, state)


def _plan(spec, conn, targets):
    from cephstack.ceph.auth import read_marker, rotate_method
    from cephstack.day2.rotate import plan_rotation

    state = observe_for(conn, spec)
    plan = plan_rotation(spec, state, targets, read_marker(conn), rotate_method(conn),
                         _rendered(spec))
    return state, plan


def _plan_json(plan) -> dict:
    from cephstack.report.views import _action_json

    return {"rotate": list(plan.rotate), "finish": list(plan.finish), "method": plan.method,
            "steps": plan.steps(), "files": [_action_json(a) for a in plan.files],
            "install_bundles": list(plan.roles), "notes": list(plan.notes),
            "refusals": list(plan.refusals)}


def _plan_text(plan) -> str:
    lines = ["cephstack will rotate keys in this order (no key is ever shown):", ""]
    lines += [f"  {i}. {step}" for i, step in enumerate(plan.steps(), 1)]
    lines.append("")
    lines += [f"Note: {n}" for n in plan.notes]
    lines += [f"Refused: {r}" for r in plan.refusals]
    return "\n".join(lines)


def cmd_rotate(args: argparse.Namespace) -> int:
    import contextlib

    from cephstack import interrupt
    from cephstack.day2.multifence import several
    from cephstack.day2.rotate import carry_out, resolve_users
    from cephstack.report.views import dumps

    spec = load_spec_of(args)
    if several(args, spec):  # each cluster holding the users, at once
        return _rotate_clusters(args, spec)
    targets = resolve_users(spec, args.users, args.all)
    as_json = args.output == "json"
    with connect(args, spec) as conn, contextlib.ExitStack() as locked:
        if not args.dry_run:
            # Under the run lock from the first look: no apply or other rotate in between.
            interrupt.configure(hint="run the same rotate again: it finishes the rotation "
                                     "(the cluster records which users it was rotating)")
            locked.enter_context(hold_lock(args, conn, "rotate"))
        state, plan = _plan(spec, conn, targets)
        if not as_json:
            print_out(_plan_text(plan))
        if plan.refusals or args.dry_run:
            if as_json:
                print_out(dumps({"format_version": "1", "dry_run": args.dry_run,
                                 **_plan_json(plan), "done": []}))
            elif args.dry_run and not plan.refusals:
                print_out("Dry run: nothing was changed.")
            return EXIT_FAILED if plan.refusals else 0
        if not confirm(args, "Rotate these keys?", "nothing rotated"):
            return EXIT_FAILED
        progress = (lambda _: None) if as_json else (lambda line: print_err(f"  {line}"))
        result = carry_out(conn, spec, plan, state, lambda: observe_for(conn, spec),
                           _rendered(spec), progress)
    if as_json:
        print_out(dumps({"format_version": "1", "dry_run": False, **_plan_json(plan),
                         "done": result.done, "seconds": round(result.seconds, 3),
                         "mon_commands": result.mon_commands}))
        return 0
    users = ", ".join((*plan.rotate, *plan.finish))
    print_out(f"Rotation complete for {users}: {len(result.done)} step(s) in "
              f"{result.seconds:.1f} s, {result.mon_commands} mon command(s).")
    for role in plan.roles:
        print_out(f"Next, on each {role} host: cephstack host install "
                  f"{plan.render_directory}/{role}  (then restart what its README.txt names)")
    return 0


def _rotate_clusters(args: argparse.Namespace, spec) -> int:
    from cephstack.commands.multicommands import error_text, refuse_overrides, report_failures
    from cephstack.day2 import multirotate as multirotate
    from cephstack.report.views import dumps
    from cephstack.session import fleet

    refuse_overrides(args, spec)
    as_json = args.output == "json"
    rotation = None
    try:
        rotation = multirotate.prepare(args, spec)
        if not as_json:
            print_out(multirotate.plan_text(rotation))
        if rotation.refusals or args.dry_run or not rotation.plans:
            if as_json:
                print_out(dumps(multirotate.document(rotation, args.dry_run)))
            elif args.dry_run and not rotation.refusals:
                print_out("Dry run: nothing was changed.")
            report_failures(rotation.multi, as_json)
            return multirotate.exit_code(rotation)
        if not confirm(args, "Rotate these keys?", "nothing rotated"):
            return EXIT_FAILED
        multirotate.carry_out(args, spec, rotation)
    finally:
        if rotation is not None:
            fleet.close(rotation.multi)
    if as_json:
        print_out(dumps(multirotate.document(rotation, False)))
    else:
        for name, done in rotation.done.items():
            run = rotation.multi.runs[name]
            print_out(f"{name}: " + (
                f"FAILED: {error_text(run.error)}" if not run.ok else
                f"rotation complete, {len(done)} step(s)"
                if "rotation record removed" in done else
                "keys and keyring files rewritten; rotation record kept (the rendered "
                "files were not): run the same rotate again"))
        if rotation.rendered_note:
            print_out(f"Note: {rotation.rendered_note}")
        if rotation.multi.rendered_error:
            print_out(f"error: rendered files: {error_text(rotation.multi.rendered_error)}")
        for role in rotation.roles if rotation.rendered_done is not None else ():
            print_out(f"Next, on each {role} host: cephstack host install "
                      f"{rotation.render_directory}/{role}  (then restart what its "
                      "README.txt names)")
    report_failures(rotation.multi, as_json)
    return multirotate.exit_code(rotation)


def register(sub, fmt) -> None:
    p = sub.add_parser(
        "rotate", help="new cephx keys for service users; rewrite every file holding them",
        formatter_class=fmt, epilog=EXIT_CODES,
        description="Give each named user (a service of the spec: glance, cinder-volume, "
        "cinder-backup, nova; or a user: client.glance) a new cephx key, or every user of "
        "the spec with --all: all new keys in one monitor commit (`auth import` with each "
        "user's current caps; `auth rotate` where the cluster has it), then the admin-side "
        "keyring files and the rendered bundles (keyrings, libvirt secret values) rewritten "
        "from the cluster. `cephstack host install BUNDLE` on each host completes it. From "
        "the rotation on, new connections with an old key are refused; clients already "
        "connected keep working until they must authenticate again (README: Rotating keys). "
        "Shows the plan and asks first; --dry-run only shows it. A run that stopped "
        "(killed, even with SIGKILL) is finished by running it again. With a spec of several "
        "clusters, each user is rotated on every cluster holding one of its pools (its own "
        "key there), each cluster under its own lock and record; a cluster that fails is "
        "reported while the others are rotated.")
    p.add_argument("users", nargs="*", metavar="USER",
                   help="a service or user of the spec (glance, nova, client.cinder-volume)")
    p.add_argument("--all", action="store_true", help="every user the spec declares")
    p.add_argument("--dry-run", action="store_true", help="show the plan; change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_only_clusters(p, "rotate only on this cluster", "every cluster holding the users")
    add_cluster(p)
    add_lock_wait(p)
    add_output(p)
    p.set_defaults(func=cmd_rotate)
