"""fence, unfence and locks: cut a dead host's Ceph clients off and free what they held;
lift that again; show who holds each image."""

from __future__ import annotations

import argparse

from cephstack.commands.common import (
    CLUSTER_EXIT_CODES,
    add_cluster,
    add_only_clusters,
    add_output,
    load_spec_of,
    print_out,
    settings_of,
)
from cephstack.commands.status import add_max_images
from cephstack.errors import EXIT_BAD_INPUT, EXIT_FAILED

FENCE_EXIT_CODES = f"""\
exit codes:
  0  done, or the dry run was shown (with clusters: in the spec, on every cluster; one
     that failed gives its code below while the others are done; several kinds: 1)
  {EXIT_FAILED}  a Ceph command failed or was refused (permission denied), or a lock could
     not be broken
  {EXIT_BAD_INPUT}  bad input: an address that is neither a host nor IP:PORT/NONCE, no host at
     all (0.0.0.0, ::, a range), an address of this very process, or (fence, without
     --force) of a Ceph daemon of the cluster; invalid spec or arguments
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


def chosen(spec, names: list[str] | None) -> dict:
    """The spec's part for each cluster --cluster names (every cluster without it), in the
    spec's order; an unknown name is bad input."""
    from cephstack.errors import SeveralClustersUsage
    from cephstack.spec.fleet import split

    parts = split(spec)
    unknown = [n for n in dict.fromkeys(names or []) if n not in parts]
    if unknown:
        raise SeveralClustersUsage(
            f"--cluster {', '.join(unknown)}: no such cluster in {spec.path}",
            hint=f"its clusters: {', '.join(parts)}")
    return {n: p for n, p in parts.items() if not names or n in names}


def per_cluster(args: argparse.Namespace, spec) -> bool:
    """Whether the output has a section per cluster (a spec with clusters:); checks
    --cluster (it needs such a spec, and names of its clusters) and refuses --conf,
    --keyring and --id there (each cluster is reached as the spec says)."""
    from cephstack.errors import SeveralClustersUsage
    from cephstack.session.fleet import refuse_overrides

    only = getattr(args, "only_clusters", None)
    if spec is not None and spec.clusters:
        refuse_overrides(settings_of(args), spec)
        chosen(spec, only)
        return True
    if only:
        where = f"the spec {spec.path} has one cluster" if spec is not None else "no spec given"
        raise SeveralClustersUsage(
            f"--cluster {', '.join(only)}: {where}",
            hint="--cluster chooses among the clusters: of a spec (-f); a one-cluster spec's "
                 "cluster is used as it is")
    return False


def _progress(args: argparse.Namespace, several: bool):
    """Per-cluster progress lines on stderr, with several clusters (one: none, as ever)."""
    from cephstack.commands.fleetoutput import progress_printer

    if not several:
        return lambda _cluster, _line: None
    return lambda cluster, line: progress_printer(args.output == "json", cluster)(line)


def _show(args: argparse.Namespace, several: bool, runs, parts: list, **top) -> int:
    """One cluster: its view as ever (its error raised as the command's); several: a
    section each, the failures named on stderr, the combined exit code."""
    from cephstack.commands.fleetoutput import report_failures
    from cephstack.report.fenceviews import clusters_json, clusters_text, combined_exit_code
    from cephstack.report.statusviews import dumps

    as_json = args.output == "json"
    if not several:
        part, = parts
        if part.error is not None:
            raise part.error
        print_out(dumps(part.document) if as_json else part.text)
        return part.exit_code
    print_out(dumps(clusters_json(parts, **top)) if as_json else clusters_text(parts))
    report_failures(runs, as_json)
    return combined_exit_code([p.code for p in parts])


def cmd_fence(args: argparse.Namespace) -> int:
    from cephstack.day2 import fencing
    from cephstack.report.fenceviews import fence_parts
    from cephstack.session import fleet

    spec = load_spec_of(args) if args.spec else None
    several = per_cluster(args, spec)
    runs = fencing.fleet_of(spec, args.only_clusters)
    try:
        found = fencing.fence_fleet(
            settings_of(args), runs, _targets(args), act=args.yes, max_images=args.max_images,
            expire=args.expire, force=args.force, progress=_progress(args, several))
    finally:
        fleet.close(runs)
    return _show(args, several, runs, fence_parts(runs, found, args.yes),
                 dry_run=not args.yes)


def cmd_unfence(args: argparse.Namespace) -> int:
    from cephstack.day2 import fencing
    from cephstack.report.fenceviews import unfence_parts
    from cephstack.session import fleet

    spec = load_spec_of(args) if args.spec else None
    several = per_cluster(args, spec)
    runs = fencing.fleet_of(spec, args.only_clusters)
    try:
        items = fencing.unfence_fleet(settings_of(args), runs, _targets(args),
                                      act=args.yes)
    finally:
        fleet.close(runs)
    return _show(args, several, runs, unfence_parts(runs, items, args.yes),
                 dry_run=not args.yes)


def cmd_locks(args: argparse.Namespace) -> int:
    from cephstack.day2 import fencing
    from cephstack.report.fenceviews import locks_parts
    from cephstack.session import fleet

    spec = load_spec_of(args) if args.spec else None
    several = per_cluster(args, spec)
    runs = fencing.fleet_of(spec, args.only_clusters)
    try:
        found = fencing.locks_fleet(settings_of(args), runs, args.max_images)
    finally:
        fleet.close(runs)
    return _show(args, several, runs, locks_parts(runs, found))


def _act_flags(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--yes", action="store_true", help=f"{what} (without it: a dry run)")
    g.add_argument("--dry-run", action="store_true",
                   help="show what would be done and change nothing (the default)")


def register(sub, fmt) -> None:
    p = sub.add_parser(
        "fence", help="cut a dead host's Ceph clients off and break their locks",
        formatter_class=fmt, epilog=FENCE_EXIT_CODES + (
            "\nexamples:\n"
            "  cephstack fence 10.0.0.5 -f cephstack.yaml\n"
            "  cephstack fence 10.0.0.5 -f cephstack.yaml --yes --expire 2h\n"
            "  cephstack fence 10.0.0.5:0/3172645 -f sites.yaml --cluster edge1 --yes\n"),
        description="For a compute or controller host that died (or is cut off from the "
        "cloud but may still run), given by its address: list the OpenStack images its "
        "clients watch or lock (instance disks, volumes, Glance images: the pools the spec "
        "or the cluster's services say), then, with --yes, blocklist its address (mon `osd "
        "blocklist add`: the OSDs refuse every request of those clients from then on), break "
        "their locks (librbd break_lock) and report what was freed; Nova on another host "
        "then takes a guest disk over at once instead of after the OSD watch timeout. "
        "Without --yes it is a dry run: reads only. Reads are bounded as status' are: at most "
        "--max-images images opened, 16 at a time. Refused before any change: no host at all "
        "(0.0.0.0, ::, a range or wildcard; --force does not change that), this process's "
        "own address, and, without --force, an address of a monitor, manager, OSD, MDS, RGW "
        "or rbd-mirror daemon of the cluster or of a host running one.")
    p.add_argument("addresses", nargs="+", metavar="ADDR", type=_target, help=_ADDR_HELP)
    p.add_argument("--expire", type=_duration, metavar="DURATION",
                   help="how long the blocklist entries last: 3600, 90s, 15m, 2h, 1d "
                   "(default: Ceph's mon_osd_blocklist_default_expire, 1 h unless changed); "
                   "`cephstack unfence` lifts them earlier")
    _act_flags(p, "blocklist and break the locks")
    p.add_argument("--force", action="store_true",
                   help="fence even an address of a Ceph daemon of the cluster (a monitor, "
                   "manager, OSD, MDS, RGW or rbd-mirror daemon, or a host running one), "
                   "refused otherwise; never 0.0.0.0, :: or a range")
    add_cluster(p, spec_default=None)
    add_only_clusters(p)
    add_max_images(p)
    add_output(p)
    p.set_defaults(func=cmd_fence)

    u = sub.add_parser(
        "unfence", help="remove blocklist entries fence added",
        formatter_class=fmt, epilog=FENCE_EXIT_CODES + (
            "\nexamples:\n"
            "  cephstack unfence 10.0.0.5 -f cephstack.yaml\n"
            "  cephstack unfence 10.0.0.5 -f cephstack.yaml --yes\n"),
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
        formatter_class=fmt, epilog=LOCKS_EXIT_CODES + (
            "\nexamples:\n"
            "  cephstack locks -f cephstack.yaml\n"
            "  cephstack locks -f sites.yaml --cluster edge1 --output json\n"),
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
