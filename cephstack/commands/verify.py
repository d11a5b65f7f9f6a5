"""verify: each service's real RBD workflows with its own key; --cleanup."""

from __future__ import annotations

import argparse
import sys

from cephstack import FORMAT_VERSION
from cephstack.commands.common import (
    EXIT_CODES,
    add_cluster,
    add_lock_wait,
    add_output,
    load_spec_of,
    print_err,
    print_out,
    settings_of,
)


def cmd_verify(args: argparse.Namespace) -> int:
    from cephstack.report.verifyviews import fleet_json, fleet_text
    from cephstack.report.views import dumps
    from cephstack.verify.fleet import Options, verify_fleet
    from cephstack.verify.progress import Progress

    spec = load_spec_of(args)
    if args.cleanup:
        return _cleanup(args, spec)
    # On stderr in both output formats: stdout stays the report (one JSON document).
    progress = Progress(sys.stderr)
    try:
        report = verify_fleet(settings_of(args), spec, Options(args.only, args.evacuate_wait),
                              progress)
    finally:
        progress.close()
    if not report.several:  # a fleet of one: its error is the command's, as always
        one = next(iter(report.clusters.values()))
        if one.error is not None:
            raise one.error
    print_out(dumps(fleet_json(report)) if args.output == "json" else fleet_text(report))
    for where, error in report.stops():  # the closing line: what did not answer, where
        place = f"{where}: " if report.several else ""
        hint = getattr(error, "hint", None)
        print_err(f"error: {place}{getattr(error, 'message', error)}"
                  + (f"\n  hint: {hint}" if hint else ""))
    return report.exit_code()


def _cleanup(args: argparse.Namespace, spec) -> int:
    from cephstack.report.views import dumps
    from cephstack.verify.fleet import cleanup_fleet

    found = cleanup_fleet(settings_of(args), spec)
    if not spec.clusters:  # a fleet of one: today's document, its error the command's
        [one] = found.values()
        if one.error is not None:
            raise one.error
        removed, live = one.found.removed, one.found.live_runs
        if args.output == "json":
            print_out(dumps({"format_version": FORMAT_VERSION, "removed": removed,
                             "live_runs_skipped": live}))
        else:
            print_out("\n".join(f"  - {r}" for r in removed) or "  nothing to remove")
            print_out(f"Cleanup: removed {len(removed)} leftover(s) of earlier verify runs.")
            if live:
                print_out(f"Left alone: verify run(s) still running: {', '.join(live)}.")
        return 0
    if args.output == "json":
        print_out(dumps({"format_version": FORMAT_VERSION, "clusters": {n: {
            "removed": r.found.removed, "live_runs_skipped": r.found.live_runs,
            "error": r.error.as_json() if r.error else None} for n, r in found.items()}}))
    else:
        for name, r in found.items():
            print_out(f"{name}: " + (f"error: {r.error}" if r.error else
                                     f"removed {len(r.found.removed)} leftover(s)"))
            print_out("\n".join(f"  - {x}" for x in r.found.removed))
    errors = [r.error for r in found.values() if r.error is not None]
    return errors[0].exit_code if errors else 0


def register(sub, fmt) -> None:
    p = sub.add_parser("verify", help="prove each service's RBD workflows with its own key",
                       formatter_class=fmt, epilog=EXIT_CODES + (
                           "\nexamples:\n"
                           "  cephstack verify -f cephstack.yaml\n"
                           "  cephstack verify --only cinder-volume --evacuate-wait\n"
                           "  cephstack verify --output json > verify.json\n"
                           "  cephstack verify --cleanup\n"),
                       description="Connect as each service's own user (its keyring file) "
                       "and run its real RBD workflows: Glance upload/download/delete, Cinder "
                       "volumes, snapshots and clones (copy-on-write from images), backups "
                       "and restores and a volume's takeover after a host crash, on every "
                       "Cinder backend with its own rbd_user and pool (steps end with "
                       "[<cinder.conf section>]), Nova guest disks, an evacuate takeover "
                       "after a host crash (fenced as Nova's user: seconds; --evacuate-wait "
                       "for librbd's own, ~30 s); then a least-privilege matrix. Each step's "
                       "result is shown on stderr as it finishes, with a live line while the "
                       "run waits (rewritten in place on a terminal). Everything it creates "
                       "carries one run marker and is removed at the end, even after a failure or "
                       "Ctrl-C. Never changes caps or pool settings. Exit 0 only if every "
                       "step passed. With clusters: in the spec, every cluster is verified "
                       "at once (steps named <cluster>/<service>), plus what only exists "
                       "across them: a backup on another cluster restored, Nova's clone "
                       "from its zone's Glance store, and with mirroring: the failover "
                       "drill (<primary>-><secondary>/cinder-volume).")
    add_cluster(p)
    p.add_argument("--only", metavar="SERVICE",
                   help="glance, cinder-volume, cinder-backup, nova, or config (the "
                   "checks of rendered files only)")
    p.add_argument("--cleanup", action="store_true",
                   help="only remove leftovers of verify runs that were killed, touching "
                   "nothing else (runs still alive are left alone)")
    p.add_argument("--evacuate-wait", action="store_true",
                   help="prove the evacuate takeover by librbd's own path: the new host "
                   "waits until the OSDs drop the crashed client's watch "
                   "(osd_client_watch_timeout, 30 s by default), then librbd blocklists it. "
                   "Default: the fencing path an operator takes (cephstack fence), as Nova's "
                   "user: blocklist the dead client, break its lock; seconds")
    add_lock_wait(p)
    add_output(p)
    p.set_defaults(func=cmd_verify)
