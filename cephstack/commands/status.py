"""status: what each OpenStack pool holds and what needs a look, read-only."""

from __future__ import annotations

import argparse

from cephstack.commands.common import (
    CLUSTER_EXIT_CODES,
    add_cluster,
    add_output,
    load_spec_of,
    print_out,
    settings_of,
)
from cephstack.errors import EXIT_BAD_INPUT, EXIT_FAILED

STATUS_EXIT_CODES = f"""\
exit codes:
  0  the status was read (whatever it shows); with clusters: in the spec, a cluster that
     could not be read gives its code below while the others are shown
  {EXIT_FAILED}  a Ceph command failed or was refused (permission denied)
  {EXIT_BAD_INPUT}  bad input: invalid spec or arguments
""" + CLUSTER_EXIT_CODES


def cmd_status(args: argparse.Namespace) -> int:
    """Every cluster of the spec read at once (one: as it always was; several: a section,
    document or label each, a cluster not read named with its error)."""
    from cephstack.commands.fleetoutput import report_failures
    from cephstack.day2.status_read import read_statuses
    from cephstack.report.statusviews import dumps, fleet_json, fleet_prometheus, fleet_text
    from cephstack.session.fleet import refuse_overrides

    spec = load_spec_of(args) if args.spec else None
    settings = settings_of(args)
    if spec is not None:
        refuse_overrides(settings, spec)  # --conf & co. with several clusters
    found = read_statuses(settings, spec, args.max_images)
    if args.prometheus:
        text = fleet_prometheus(found)
    elif args.output == "json":
        text = dumps(fleet_json(found)) + "\n"
    else:
        text = fleet_text(found) + "\n"
    if args.out:
        _write_out(args.out, text)
    else:
        print_out(text.rstrip("\n"))
    if found.named:  # on stderr: each error in full where stdout does not show it
        report_failures(found.fleet, args.output == "json" or args.prometheus
                        or bool(args.out))
    return found.fleet.exit_code()


def _write_out(path: str, text: str) -> None:
    from cephstack.safefiles import write_atomic

    # A textfile collector must never read a half-written file: temp file + rename.
    write_atomic(path, text, 0o644, dir_mode=0o755)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a number of images: {text!r}")
    return value


def add_max_images(p: argparse.ArgumentParser) -> None:
    from cephstack.day2.status import DEFAULT_MAX_IMAGES

    p.add_argument("--max-images", type=_count, default=DEFAULT_MAX_IMAGES, metavar="N",
                   help="open at most N images (read-only, 16 at a time) for locks, "
                   "watchers, backup snapshots and clones; larger pools are sampled and "
                   f"say so (default {DEFAULT_MAX_IMAGES}; counts of images, snapshots and "
                   "trash are always exact)")


def register(sub, fmt) -> None:
    p = sub.add_parser("status", help="each OpenStack pool: space, quota, PGs, images, locks",
                       formatter_class=fmt, epilog=STATUS_EXIT_CODES + (
                           "\nexamples:\n"
                           "  cephstack status -f cephstack.yaml\n"
                           "  cephstack status --max-images 200 --output json\n"
                           "  cephstack status --prometheus --out cephstack.prom\n"),
                       description="Read, per OpenStack service and pool: stored bytes and "
                       "what the cluster can still give it (max_avail), quota and how full "
                       "it is, PG states, images, snapshots, clones of Glance images, trash "
                       "entries, watchers, locks whose holder is gone (blocklisted, or an "
                       "exclusive lock whose holder no longer watches the image) and Cinder "
                       "backup snapshots piling up. One line per pool; --output json has "
                       "everything; --prometheus writes the text exposition format for "
                       "node_exporter's textfile collector (with --out FILE, atomically). "
                       "Reads only, in bounded time: at most --max-images images are opened. "
                       "A spec with clusters: is read on every cluster at once: a section "
                       "(text), a document under \"clusters\" (json) or a cluster label "
                       "(Prometheus) each; a cluster that cannot be read is shown with its "
                       "error, the others as usual, and the exit code is then non-zero.")
    add_cluster(p, spec_default=None)
    add_max_images(p)
    p.add_argument("--out", metavar="FILE",
                   help="write to FILE (replaced atomically, mode 0644) instead of stdout, "
                   "e.g. /var/lib/node_exporter/textfile/cephstack.prom")
    views = p.add_mutually_exclusive_group()
    add_output(views)
    views.add_argument("--prometheus", action="store_true",
                       help="Prometheus text exposition format instead of text or json")
    p.set_defaults(func=cmd_status)
