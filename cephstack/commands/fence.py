"""fence, unfence and locks: cut a dead host's Ceph clients off and free what they held;
lift that again; show who holds each image."""

from __future__ import annotations

import argparse

from cephstack.commands.common import (
    CLUSTER_EXIT_CODES,
    add_cluster,
    add_only_clusters,
    add_output,
    connect,
    load_spec_of,
    print_out,
)
from cephstack.commands.status import add_max_images
from cephstack.errors import EXIT_BAD_INPUT, EXIT_FAILED, CephstackError

FENCE_EXIT_CODES = f"""\
exit codes:
  0  done, or the dry run was shown (with clusters: in the spec, on every cluster; one
     that failed gives its code below while the others are done; several kinds: 1)
  {EXIT_FAILED}  a Ceph command failed or was refused (permission denied), or a lock could
     not be broken
  {EXIT_BAD_INPUT}  bad input: an address that is neither a host nor IP:PORT/NONCE, an address
     of this very process, invalid spec or arguments
""" + CLUSTER_EXIT_CODES

LOCKS_EXIT_CODES = f"""\
exit codes:
  0  the locks were read (whatever they show)
  {EXIT_FAILED}  a Ceph command failed or was refused (permission denied)
  {EXIT_BAD_INPUT}  bad input: invalid spec or arguments
""" + CLUSTER_EXIT_CODES

_ADDR_HELP = ("a host address (10.0.0.5: every Ceph client on that host: its QEMU guests, "
              "cinder-volume, glance-api, and any Ceph daemon's own client there) or one "
              "client instance as `rbd status` and `cephstack locks` show it, IP:PORT/NONCE "
              "(10.0.0.5:0/3507576585)")


class BadTarget(CephstackError):
    exit_code = EXIT_BAD_INPUT
    kind = "invalid-arguments"


def _target(text: str):
    from cephstack.day2.fence import parse_target

    try:
        return parse_target(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _duration(text: str) -> float:
    from cephstack.day2.fence import parse_duration

    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _targets(args: argparse.Namespace) -> tuple:
    return tuple(dict.fromkeys(args.addresses))  # in order, each once


def _refuse_own(conn, targets: tuple) -> None:
    from cephstack.day2.fence import own_targets

    own = conn.client_address()
    mine = own_targets(targets, own)
    if mine:
        raise BadTarget(
            f"{', '.join(t.text for t in mine)} would cut off this cephstack process itself "
            f"(its connection is {own}): the fence would stop half-way",
            hint="run fence from another host, or give the dead client's instance "
                 "(IP:PORT/NONCE, see `cephstack locks`)")


def cmd_fence(args: argparse.Namespace) -> int:
    from cephstack.day2 import fencing as fencing
    from cephstack.day2.fence import plan_fence
    from cephstack.report.fenceviews import fence_json, fence_text
    from cephstack.report.statusviews import dumps

    spec = load_spec_of(args) if args.spec else None
    targets = _targets(args)
    if several(args, spec):  # clusters: every one at once (cephstack/day2/multifence.py)
        from cephstack.day2.multifence import fence_clusters

        return fence_clusters(args, spec, targets)
    with connect(args, spec) as conn:
        _refuse_own(conn, targets)
        _, status = fencing.scan(conn, spec, args.max_images)
        entries, ranges = fencing.read_blocklist(conn)
        plan = plan_fence(targets, status, entries, ranges, args.expire)
        result = fencing.fence(conn, plan) if args.yes else None
    if args.output == "json":
        print_out(dumps(fence_json(plan, result)))
    else:
        print_out(fence_text(plan, result))
    return EXIT_FAILED if result is not None and result.failed else 0


def cmd_unfence(args: argparse.Namespace) -> int:
    from cephstack.day2 import fencing as fencing
    from cephstack.day2.fence import plan_unfence
    from cephstack.report.fenceviews import unfence_json, unfence_text
    from cephstack.report.statusviews import dumps

    spec = load_spec_of(args) if args.spec else None
    targets = _targets(args)
    if several(args, spec):  # clusters: every one at once (cephstack/day2/multifence.py)
        from cephstack.day2.multifence import unfence_clusters

        return unfence_clusters(args, spec, targets)
    with connect(args, spec) as conn:
        entries, ranges = fencing.read_blocklist(conn)
        items = plan_unfence(targets, entries, ranges)
        done = bool(args.yes)
        if done:
            check_removed(items, fencing.unfence(
                conn, [i.target for i in items if i.until is not None]))
    if args.output == "json":
        print_out(dumps(unfence_json(items, done)))
    else:
        print_out(unfence_text(items, done))
    return 0


def check_removed(items: tuple, left: dict[str, str]) -> None:
    """After unfence: every entry it removed must be gone from the blocklist (`left`)."""
    stuck = [i.target.address for i in items
             if i.until is not None and i.target.address in left]
    if stuck:
        raise CephstackError(f"still in the blocklist after removal: {', '.join(stuck)}",
                             hint="another client may have added them again; "
                                  "check `ceph osd blocklist ls`")


def several(args: argparse.Namespace, spec) -> bool:
    from cephstack.day2.multifence import several as across_clusters

    return across_clusters(args, spec)


def cmd_locks(args: argparse.Namespace) -> int:
    from cephstack.day2 import fencing as fencing
    from cephstack.day2.fence import held_images
    from cephstack.report.fenceviews import locks_json, locks_text
    from cephstack.report.statusviews import dumps

    spec = load_spec_of(args) if args.spec else None
    if several(args, spec):  # clusters: every one at once (cephstack/day2/multifence.py)
        from cephstack.day2.multifence import locks_clusters

        return locks_clusters(args, spec)
    with connect(args, spec) as conn:
        facts, status = fencing.scan(conn, spec, args.max_images)
    held = held_images(status, facts.blocklist, facts.blocklist_ranges)
    if args.output == "json":
        print_out(dumps(locks_json(held, status)))
    else:
        print_out(locks_text(held, status))
    return 0


def _act_flags(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--yes", action="store_true", help=f"{what} (without it: a dry run)")
    g.add_argument("--dry-run", action="store_true",
                   help="show what would be done and change nothing (the default)")


def register(sub, fmt) -> None:
    p = sub.add_parser(
        "fence", help="cut a dead host's Ceph clients off and break their locks",
        formatter_class=fmt, epilog=FENCE_EXIT_CODES,
        description="For a compute or controller host that died (or is cut off from the "
        "cloud but may still run), given by its address: list the OpenStack images its "
        "clients watch or lock (instance disks, volumes, Glance images: the pools the spec "
        "or the cluster's services say), then, with --yes, blocklist its address (mon `osd "
        "blocklist add`: the OSDs refuse every request of those clients from then on), break "
        "their locks (librbd break_lock) and report what was freed; Nova on another host "
        "then takes a guest disk over at once instead of after the OSD watch timeout. "
        "Without --yes it is a dry run: reads only. Reads are bounded as status' are: at most "
        "--max-images images opened, 16 at a time.")
    p.add_argument("addresses", nargs="+", metavar="ADDR", type=_target, help=_ADDR_HELP)
    p.add_argument("--expire", type=_duration, metavar="DURATION",
                   help="how long the blocklist entries last: 3600, 90s, 15m, 2h, 1d "
                   "(default: Ceph's mon_osd_blocklist_default_expire, 1 h unless changed); "
                   "`cephstack unfence` lifts them earlier")
    _act_flags(p, "blocklist and break the locks")
    add_cluster(p, spec_default=None)
    add_only_clusters(p)
    add_max_images(p)
    add_output(p)
    p.set_defaults(func=cmd_fence)

    u = sub.add_parser(
        "unfence", help="remove blocklist entries fence added",
        formatter_class=fmt, epilog=FENCE_EXIT_CODES,
        description="Remove each address's own blocklist entry (`osd blocklist rm`): the host "
        "entry for a host address, the instance's for IP:PORT/NONCE. Entries of single "
        "clients of a host (added by fence, or by librbd when it took a lock over) are left "
        "in place and listed. Only once the host's old clients are gone (the host rebooted): "
        "a client cut off while it ran would write again. Without --yes it is a dry run.")
    u.add_argument("addresses", nargs="+", metavar="ADDR", type=_target, help=_ADDR_HELP)
    _act_flags(u, "remove the entries")
    add_cluster(u, spec_default=None)
    add_only_clusters(u)
    add_output(u)
    u.set_defaults(func=cmd_unfence)

    lk = sub.add_parser(
        "locks", help="who holds each OpenStack image: locks, watchers, stale or live",
        formatter_class=fmt, epilog=LOCKS_EXIT_CODES,
        description="Read-only: every image of the OpenStack pools that is locked or watched, "
        "named in OpenStack terms, with each lock's holder (client and address: what "
        "`cephstack fence` takes), whether it is live, held (an advisory lock) or stale (its "
        "holder blocklisted, or gone from the image), and the addresses watching it. Bounded "
        "as status is: at most --max-images images opened.")
    add_cluster(lk, spec_default=None)
    add_only_clusters(lk)
    add_max_images(lk)
    add_output(lk)
    lk.set_defaults(func=cmd_locks)
