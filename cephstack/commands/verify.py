"""verify: each service's real RBD workflows with its own key; --cleanup."""

from __future__ import annotations

import argparse
import sys

from cephstack.commands.common import (
    EXIT_CODES,
    add_cluster,
    add_lock_wait,
    add_output,
    connect,
    load_spec_of,
    print_out,
)
from cephstack.errors import EXIT_FAILED


def cmd_verify(args: argparse.Namespace) -> int:
    from cephstack.report.views import dumps, verify_json, verify_text
    from cephstack.verify.cleanup import cleanup_leftovers
    from cephstack.verify.progress import Progress
    from cephstack.verify.run import run_verify

    spec = load_spec_of(args)
    if spec is not None and spec.clusters:  # several clusters: each, and across them
        return _verify_clusters(args, spec)
    with connect(args, spec) as admin:
        if args.cleanup:
            found = cleanup_leftovers(admin, list(spec.pools))
            removed = found.removed
            if args.output == "json":
                print_out(dumps({"format_version": "1", "removed": removed,
                                 "live_runs_skipped": found.live_runs}))
            else:
                print_out("\n".join(f"  - {r}" for r in removed) or "  nothing to remove")
                print_out(f"Cleanup: removed {len(removed)} leftover(s) of earlier verify runs.")
                if found.live_runs:
                    print_out(f"Left alone: verify run(s) still running: "
                              f"{', '.join(found.live_runs)}.")
            return 0
        # On stderr in both output formats: stdout stays the report (one JSON document).
        progress = Progress(sys.stderr)
        try:
            report = run_verify(spec, admin, only=args.only, progress=progress,
                                lock_wait=args.lock_wait, evacuate_wait=args.evacuate_wait)
        finally:
            progress.close()
    print_out(dumps(verify_json(report)) if args.output == "json" else verify_text(report))
    if report.error is not None:
        return report.error.exit_code
    return 0 if report.passed else EXIT_FAILED


def _verify_clusters(args: argparse.Namespace, spec) -> int:
    from cephstack.commands.multicommands import refuse_overrides
    from cephstack.report.views import dumps
    from cephstack.verify import multi
    from cephstack.verify.progress import Progress

    refuse_overrides(args, spec)
    if args.cleanup:
        found = multi.cleanup_clusters(args, spec)
        failed = {n: r.pop("error") for n, r in found.items()}
        if args.output == "json":
            print_out(dumps({"format_version": "1", "clusters": {
                n: {**r, "error": failed[n].as_json() if failed[n] else None}
                for n, r in found.items()}}))
        else:
            for name, r in found.items():
                print_out(f"{name}: " + (f"error: {failed[name]}" if failed[name] else
                                         f"removed {len(r['removed'])} leftover(s)"))
                print_out("\n".join(f"  - {x}" for x in r["removed"]))
        errors = [e for e in failed.values() if e is not None]
        return errors[0].exit_code if errors else 0
    progress = Progress(sys.stderr)
    try:
        report = multi.run_multi_verify(args, spec, progress)
    finally:
        progress.close()
    print_out(dumps(multi.as_json(report)) if args.output == "json" else multi.as_text(report))
    return report.exit_code()


def register(sub, fmt) -> None:
    p = sub.add_parser("verify", help="prove each service's RBD workflows with its own key",
                       formatter_class=fmt, epilog=EXIT_CODES,
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
