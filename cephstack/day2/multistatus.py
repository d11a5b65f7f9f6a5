"""`cephstack status` for a spec with `clusters:` (commands/status.py hands such a spec here):
the one-cluster status read on every cluster at once (fleet.each: one thread each), each
against its part of the spec (clusters.split). Text has a section per cluster, JSON a
document per cluster under "clusters", Prometheus a cluster="<name>" label on every sample.

A cluster that cannot be read is shown with its error while the others are shown; the exit
code is then non-zero (as plan's across clusters). With --prometheus, its samples are left
out and cephstack_cluster_read{cluster="NAME"} is 0 (the shipped alert fires on it).
"""

from __future__ import annotations

import argparse
from typing import Any

from cephstack.commands.common import print_out, settings_of
from cephstack.commands.multicommands import (
    error_json,
    error_text,
    refuse_overrides,
    report_failures,
)
from cephstack.day2.status import FORMAT_VERSION, Status
from cephstack.session import fleet
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.spec.fleet import split
from cephstack.spec.load import Spec


def read_clusters(args: argparse.Namespace, spec: Spec) -> tuple[Fleet, dict[str, Status]]:
    """Every cluster's Status (name -> Status for those read; the others carry their error)."""
    from cephstack.commands.status import read

    refuse_overrides(args, spec)
    multi = Fleet({name: ClusterRun(name, part) for name, part in split(spec).items()})
    statuses: dict[str, Status] = {}

    def read_one(run: ClusterRun) -> None:
        _, _, statuses[run.name] = read(args, run.spec, fleet.connect_run(settings_of(args), run))

    try:
        fleet.each(list(multi.runs.values()), read_one)
    finally:
        fleet.close(multi)
    return multi, {n: statuses[n] for n in multi.runs if n in statuses}


def clusters_text(multi: Fleet, statuses: dict[str, Status]) -> str:
    from cephstack.report.statusviews import status_text

    lines: list[str] = []
    for name, run in multi.runs.items():
        lines.append(f"== cluster {name} ({run.spec.cluster.conf}) ==")
        lines.append(status_text(statuses[name]) if name in statuses
                     else f"error: {name}: {error_text(run.error)}")
        lines.append("")
    lines.append(f"Across {len(multi.runs)} clusters: " + "; ".join(
        f"{name}: {len(statuses[name].pools)} pool(s)" if name in statuses
        else f"{name}: FAILED" for name in multi.runs) + ".")
    return "\n".join(lines)


def clusters_json(multi: Fleet, statuses: dict[str, Status]) -> dict[str, Any]:
    """{"clusters": {name: <the one-cluster document> + "error"}, "failed": [...]}."""
    from cephstack.report.statusviews import status_json

    return {"format_version": FORMAT_VERSION,
            "clusters": {name: {**(status_json(statuses[name]) if name in statuses else {}),
                                "error": error_json(run.error) if run.error else None}
                         for name, run in multi.runs.items()},
            "failed": [r.name for r in multi.failed]}


def show(args: argparse.Namespace, spec: Spec, write) -> int:
    """Read, show (stdout, or `write(text)` for --out) and report each failed cluster on
    stderr; the exit code."""
    from cephstack.report.statusviews import clusters_prometheus, dumps

    multi, statuses = read_clusters(args, spec)
    if args.prometheus:
        text = clusters_prometheus(dict(statuses), [r.name for r in multi.failed])
    elif args.output == "json":
        text = dumps(clusters_json(multi, statuses)) + "\n"
    else:
        text = clusters_text(multi, statuses) + "\n"
    if args.out:
        write(text)
    else:
        print_out(text.rstrip("\n"))
    # On stderr: each error in full where stdout does not show it (JSON, Prometheus).
    report_failures(multi, args.output == "json" or args.prometheus or bool(args.out))
    return multi.exit_code()
