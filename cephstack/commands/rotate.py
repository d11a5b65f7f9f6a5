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
    load_spec_of,
    print_out,
    settings_of,
)
from cephstack.errors import EXIT_FAILED


def _progress(args: argparse.Namespace, several: bool):
    """Progress lines on stderr as each step is done (JSON: none): prefixed by the cluster
    when there are several."""
    from cephstack.commands.fleetoutput import progress_printer

    return lambda cluster, line: progress_printer(args.output == "json", cluster,
                                                  several)(line)


def _one_cluster_failure(rotation, several: bool) -> None:
    """A spec's one cluster: its error is the command's, as ever (several: each is shown
    under its cluster)."""
    if not several and rotation.multi.failed:
        raise rotation.multi.failed[0].error


def cmd_rotate(args: argparse.Namespace) -> int:
    from cephstack import interrupt
    from cephstack.commands.fence import chosen, per_cluster
    from cephstack.commands.fleetoutput import report_failures
    from cephstack.day2 import rotating
    from cephstack.day2.rotate import BadUsers
    from cephstack.report import rotateviews as views
    from cephstack.report.views import dumps
    from cephstack.session import fleet

    spec = load_spec_of(args)
    several = per_cluster(args, spec)  # --cluster and the overrides checked
    parts = chosen(spec, args.only_clusters)
    as_json = args.output == "json"
    if not args.dry_run:
        interrupt.configure(hint="run the same rotate again: it finishes the rotation "
                                 + ("on each cluster (each records which users it was "
                                    "rotating)" if several else "(the cluster records "
                                    "which users it was rotating)"))
    rotation = None
    try:
        mode = "pending" if args.pending else "commit" if args.commit else "now"
        rotation = rotating.prepare(settings_of(args), spec, parts, args.users, args.all,
                                    args.dry_run, mode, args.key_type)
        _one_cluster_failure(rotation, several)
        plan = next(iter(rotation.plans.values()), None)
        if plan is None and not several:
            raise BadUsers(f"no user to rotate: {spec.path} declares none")
        if not as_json:
            print_out(views.plan_text_by_cluster(rotation) if several
                      else views.rotation_plan_text(plan))
        if rotation.refusals or args.dry_run or not rotation.plans:
            if as_json:
                print_out(dumps(views.document_by_cluster(rotation, args.dry_run) if several
                                else views.one_cluster_json(plan, args.dry_run, [])))
            elif args.dry_run and not rotation.refusals:
                print_out("Dry run: nothing was changed.")
            if several:
                report_failures(rotation.multi, as_json)
            return rotation.exit_code()
        if not confirm(args, "Rotate these keys?", "nothing rotated"):
            return EXIT_FAILED
        rotating.carry_out(spec, rotation, _progress(args, several))
        _one_cluster_failure(rotation, several)
    finally:
        if rotation is not None:
            fleet.close(rotation.multi)
    if not several:
        [(name, taken)] = rotation.taken.items()
        done = rotation.done[name]
        print_out(dumps(views.one_cluster_json(plan, False, done, taken.seconds,
                                               taken.mon_commands)) if as_json
                  else views.one_cluster_done(plan, len(done), taken.seconds,
                                              taken.mon_commands))
        return 0
    print_out(dumps(views.document_by_cluster(rotation, False)) if as_json
              else views.done_by_cluster(rotation))
    report_failures(rotation.multi, as_json)
    return rotation.exit_code()


def register(sub, fmt) -> None:
    p = sub.add_parser(
        "rotate", help="new cephx keys for service users; rewrite every file holding them",
        formatter_class=fmt, epilog=EXIT_CODES + (
            "\nexamples:\n"
            "  cephstack rotate glance nova --dry-run\n"
            "  cephstack rotate --all --key-type aes256k --pending --yes\n"
            "  cephstack rotate --all --commit --yes\n"
            "  cephstack rotate nova -f sites.yaml --cluster edge1 --yes\n"),
        description="Give each named user (a service of the spec: glance, cinder-volume, "
        "cinder-backup, nova; or a user: client.glance) a new cephx key, or every user of "
        "the spec with --all: all new keys in one monitor commit (`auth import` with each "
        "user's current caps; `auth rotate` where the cluster has it), then the admin-side "
        "keyring files and the rendered bundles (keyrings, libvirt secret values) rewritten "
        "from the cluster. `cephstack host install BUNDLE` on each host completes it. From "
        "the rotation on, new connections with an old key are refused; clients already "
        "connected keep working until they must authenticate again (docs/rotation.md). "
        "Shows the plan and asks first; --dry-run only shows it. A run that stopped "
        "(killed, even with SIGKILL) is finished by running it again. With a spec of several "
        "clusters, each user is rotated on every cluster holding one of its pools (its own "
        "key there), each cluster under its own lock and record; a cluster that fails is "
        "reported while the others are rotated.")
    p.add_argument("users", nargs="*", metavar="USER",
                   help="a service or user of the spec (glance, nova, client.cinder-volume)")
    p.add_argument("--all", action="store_true", help="every user the spec declares")
    p.add_argument("--key-type", choices=("aes", "aes256k"), help="the new keys' type "
                   "(default: the one the cluster prefers). aes256k is refused while a host "
                   "using a user's key cannot use it (Ceph clients older than Squid 19.2.6 / "
                   "Tentacle 20.2.4, seen in the monitors' sessions), naming those hosts")
    staged = p.add_mutually_exclusive_group()
    staged.add_argument("--pending", action="store_true", help="stage a pending key per user "
                        "(Reef and later: old and pending keys both work until a client "
                        "first uses the pending one, which commits it) and rewrite the files "
                        "with it; install every bundle, restart, then --commit")
    staged.add_argument("--commit", action="store_true", help="make the staged pending keys "
                        "the only ones (refused while a file does not hold them yet)")
    p.add_argument("--dry-run", action="store_true", help="show the plan; change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_only_clusters(p, "rotate only on this cluster", "every cluster holding the users")
    add_cluster(p)
    add_lock_wait(p)
    add_output(p)
    p.set_defaults(func=cmd_rotate)
