"""status: what each OpenStack pool holds and what needs a look, read-only."""

from __future__ import annotations

import argparse
import time

from cephstack.commands.common import (
    CLUSTER_EXIT_CODES,
    add_cluster,
    add_output,
    connect,
    load_spec_of,
    print_out,
)
from cephstack.errors import EXIT_BAD_INPUT, EXIT_FAILED

STATUS_EXIT_CODES = f"""\
exit codes:
  0  the status was read (whatever it shows); with clusters: in the spec, a cluster that
     could not be read gives its code below while the others are shown
  {EXIT_FAILED}  a Ceph command failed or was refused (permission denied)
  {EXIT_BAD_INPUT}  bad input: invalid spec or arguments
""" + CLUSTER_EXIT_CODES


def read(args: argparse.Namespace, spec, conn, state=None, started: float | None = None):
    """Observe (unless `state` is given), read and build the status: (ClusterState,
    StatusFacts, Status). Shared with `report`, which observes for its plan first."""
    from cephstack.ceph.observe import observe
    from cephstack.day2.status import build_status
    from cephstack.day2.status_read import read_status

    started = time.monotonic() if started is None else started
    state = observe(conn) if state is None else state
    facts = read_status(conn, state, spec, args.max_images, started=started)
    return state, facts, build_status(state, facts, spec)


def cmd_status(args: argparse.Namespace) -> int:
    from cephstack.report.statusviews import dumps, status_json, status_prometheus, status_text

    spec = load_spec_of(args) if args.spec else None
    if spec is not None and spec.clusters:  # every cluster at once, a section each
        from cephstack.day2.multistatus import show

        return show(args, spec, lambda text: _write_out(args.out, text))
    with connect(args, spec) as conn:
        _, _, status = read(args, spec, conn)
    if args.prometheus:
        text = status_prometheus(status)
    elif args.output == "json":
        text = dumps(status_json(status)) + "\n"
    else:
        text = status_text(status) + "\n"
    if args.out:
        _write_out(args.out, text)
    else:
        print_out(text.rstrip("\n"))
    return 0


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
                       formatter_class=fmt, epilog=STATUS_EXIT_CODES,
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
