"""`cephstack fence`, `unfence` and `locks` for a spec with `clusters:` (commands/fence.py
hands such a spec here): the one-cluster reads and acts on every cluster of the spec, or
those --cluster names, at once (fleet.each: one thread each), each on its own part of
the spec (clusters.split: its OpenStack pools). A host may be a Ceph client of several
clusters (an edge compute of its edge cluster, and of the central one for Glance): its
address is fenced wherever it is.

fence reads everywhere first (the images the address holds, the blocklist) and acts only
after: an address that covers cephstack's own connection to any cluster stops the whole
command before anything changes. A cluster that cannot be reached or fails is reported
with its error while the others are fenced; the exit code is then non-zero (as plan's).
"""

from __future__ import annotations

import argparse
from typing import Any

from cephstack.commands.common import print_out, settings_of
from cephstack.commands.multicommands import (
    SeveralClustersUsage,
    progress_printer,
    refuse_overrides,
    report_failures,
)
from cephstack.errors import EXIT_FAILED
from cephstack.report.multifenceviews import (
    ClusterPart,
    clusters_json,
    clusters_text,
    combined_exit_code,
    fence_summary,
    locks_summary,
    unfence_summary,
)
from cephstack.report.statusviews import dumps
from cephstack.session import fleet
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.spec.fleet import split
from cephstack.spec.load import Spec


def several(args: argparse.Namespace, spec: Spec | None) -> bool:
    """Whether the command runs across clusters; --cluster needs a spec with clusters:."""
    if spec is not None and spec.clusters:
        return True
    if getattr(args, "only_clusters", None):
        where = f"the spec {spec.path} has one cluster" if spec is not None else "no spec given"
        raise SeveralClustersUsage(
            f"--cluster {', '.join(args.only_clusters)}: {where}",
            hint="--cluster chooses among the clusters: of a spec (-f); a one-cluster spec's "
                 "cluster is used as it is")
    return False


def chosen(spec: Spec, names: list[str] | None) -> dict[str, Spec]:
    """The spec's part for each cluster --cluster names (every cluster without it), in the
    spec's order; an unknown name is bad input."""
    parts = split(spec)
    unknown = [n for n in dict.fromkeys(names or []) if n not in parts]
    if unknown:
        raise SeveralClustersUsage(
            f"--cluster {', '.join(unknown)}: no such cluster in {spec.path}",
            hint=f"its clusters: {', '.join(parts)}")
    return {n: p for n, p in parts.items() if not names or n in names}


def _runs(args: argparse.Namespace, spec: Spec) -> Fleet:
    refuse_overrides(args, spec)
    return Fleet({name: ClusterRun(name, part)
                     for name, part in chosen(spec, args.only_clusters).items()})


def _open(args: argparse.Namespace, run: ClusterRun) -> Any:
    return fleet.connect_run(settings_of(args), run)


def _finish(args: argparse.Namespace, multi: Fleet, parts: list[ClusterPart],
            **top: Any) -> int:
    as_json = args.output == "json"
    print_out(dumps(clusters_json(parts, **top)) if as_json else clusters_text(parts))
    report_failures(multi, as_json)
    return combined_exit_code([p.code for p in parts])


def _part(run: ClusterRun, **found: Any) -> ClusterPart:
    return ClusterPart(run.name, run.spec.cluster.conf, error=run.error, **found)


def fence_clusters(args: argparse.Namespace, spec: Spec, targets: tuple) -> int:
    from cephstack.commands.fence import BadTarget, _refuse_own
    from cephstack.day2 import fencing as fencing
    from cephstack.day2.fence import plan_fence
    from cephstack.report.fenceviews import fence_json, fence_text

    multi = _runs(args, spec)
    runs = list(multi.runs.values())
    plans, results = {}, {}
    as_json = args.output == "json"

    def read(run: ClusterRun) -> None:
        conn = _open(args, run)
        _refuse_own(conn, targets)
        _, status = fencing.scan(conn, run.spec, args.max_images)
        entries, ranges = fencing.read_blocklist(conn)
        plans[run.name] = plan_fence(targets, status, entries, ranges, args.expire)
        progress_printer(as_json, run.name)(f"read: {len(plans[run.name].locks)} lock(s) to break")

    def act(run: ClusterRun) -> None:
        results[run.name] = result = fencing.fence(run.conn, plans[run.name])
        progress_printer(as_json, run.name)(fence_summary(plans[run.name], result))

    try:
        fleet.each(runs, read)
        refused = [r for r in runs if isinstance(r.error, BadTarget)]
        if refused:  # nothing changed anywhere: this process would be cut off half-way
            raise BadTarget("; ".join(f"{r.name}: {r.error.message}" for r in refused),
                            hint=refused[0].error.hint)
        if args.yes:
            fleet.each(runs, act)
    finally:
        fleet.close(multi)
    parts = []
    for run in runs:
        plan, result = plans.get(run.name), results.get(run.name)
        if plan is None or (args.yes and result is None):
            parts.append(_part(run))
            continue
        parts.append(_part(run, text=fence_text(plan, result),
                           document=fence_json(plan, result),
                           summary=fence_summary(plan, result),
                           exit_code=EXIT_FAILED if result is not None and result.failed
                           else 0))
    return _finish(args, multi, parts, dry_run=not args.yes)


def unfence_clusters(args: argparse.Namespace, spec: Spec, targets: tuple) -> int:
    from cephstack.commands.fence import check_removed
    from cephstack.day2 import fencing as fencing
    from cephstack.day2.fence import plan_unfence
    from cephstack.report.fenceviews import unfence_json, unfence_text

    multi = _runs(args, spec)
    runs = list(multi.runs.values())
    done = bool(args.yes)
    items: dict[str, tuple] = {}

    def unfence(run: ClusterRun) -> None:
        conn = _open(args, run)
        entries, ranges = fencing.read_blocklist(conn)
        found = plan_unfence(targets, entries, ranges)
        if done:
            check_removed(found, fencing.unfence(
                conn, [i.target for i in found if i.until is not None]))
        items[run.name] = found

    try:
        fleet.each(runs, unfence)
    finally:
        fleet.close(multi)
    parts = [_part(run, text=unfence_text(items[run.name], done),
                   document=unfence_json(items[run.name], done),
                   summary=unfence_summary(items[run.name], done))
             if run.ok else _part(run) for run in runs]
    return _finish(args, multi, parts, dry_run=not done)


def locks_clusters(args: argparse.Namespace, spec: Spec) -> int:
    from cephstack.day2 import fencing as fencing
    from cephstack.day2.fence import held_images
    from cephstack.day2.status import STALE
    from cephstack.report.fenceviews import locks_json, locks_text

    multi = _runs(args, spec)
    runs = list(multi.runs.values())
    found: dict[str, tuple] = {}

    def read(run: ClusterRun) -> None:
        facts, status = fencing.scan(_open(args, run), run.spec, args.max_images)
        found[run.name] = (held_images(status, facts.blocklist, facts.blocklist_ranges),
                           status)

    try:
        fleet.each(runs, read)
    finally:
        fleet.close(multi)
    parts = []
    for run in runs:
        if not run.ok:
            parts.append(_part(run))
            continue
        held, status = found[run.name]
        stale = sum(lk.state == STALE for h in held for lk in h.locks)
        parts.append(_part(run, text=locks_text(held, status),
                           document=locks_json(held, status),
                           summary=locks_summary(held, stale)))
    return _finish(args, multi, parts)
