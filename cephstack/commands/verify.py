"""verify: each service's real RBD workflows with its own key; --cleanup."""

from __future__ import annotations

import argparse
import signal

from cephstack.commands.common import (
    EXIT_CODES,
    add_cluster,
    add_output,
    connect,
    load_spec_of,
    print_err,
    print_out,
)
from cephstack.errors import EXIT_FAILED


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C, so verify's cleanup (a finally block) runs."""
    raise KeyboardInterrupt


def cmd_verify(args: argparse.Namespace) -> int:
    from cephstack.report import dumps, verify_json, verify_text
    from cephstack.verify.cleanup import cleanup
    from cephstack.verify.run import run_verify

    spec = load_spec_of(args)
    signal.signal(signal.SIGTERM, _interrupt)
    with connect(args, spec) as admin:
        if args.cleanup:
            removed = cleanup(admin, list(spec.pools))
            if args.output == "json":
                print_out(dumps({"format_version": "1", "removed": removed}))
            else:
                print_out("\n".join(f"  - {r}" for r in removed) or "  nothing to remove")
                print_out(f"Cleanup: removed {len(removed)} leftover(s) of earlier verify runs.")
            return 0
        progress = (lambda _: None) if args.output == "json" else (
            lambda step: print_err(f"  ... {step}"))
        report = run_verify(spec, admin, only=args.only, progress=progress)
    print_out(dumps(verify_json(report)) if args.output == "json" else verify_text(report))
    return 0 if report.passed else EXIT_FAILED


def register(sub, fmt) -> None:
    p = sub.add_parser("verify", help="prove each service's RBD workflows with its own key",
                       formatter_class=fmt, epilog=EXIT_CODES,
                       description="Connect as each service's own user (its keyring file) "
                       "and run its real RBD workflows: Glance upload/download/delete, Cinder "
                       "volumes, snapshots and clones (copy-on-write from images), backups "
                       "and restores, Nova guest disks, an evacuate takeover after a host "
                       "crash; then a least-privilege matrix. Everything it creates carries "
                       "one run marker and is removed at the end, even after a failure or "
                       "Ctrl-C. Never changes caps or pool settings. Exit 0 only if every "
                       "step passed.")
    add_cluster(p)
    p.add_argument("--only", metavar="SERVICE",
                   help="glance, cinder-volume, cinder-backup, nova, or config (the "
                   "checks of rendered files only)")
    p.add_argument("--cleanup", action="store_true",
                   help="only remove leftovers of a killed verify run, touching nothing else")
    add_output(p)
    p.set_defaults(func=cmd_verify)
