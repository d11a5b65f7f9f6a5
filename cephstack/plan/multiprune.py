"""--prune with several clusters (clusters: in the spec): what is left to check beyond the
one-cluster pruning each cluster's part gets unchanged (cephstack/plan/prune.py, its records,
its run lock, its refusals; fleet.py runs them per cluster).

Each cluster keeps its own records of what cephstack created (cephstack/ceph/records.py),
and each part of the spec is compared with them alone: a pool recorded on edge1 and no
longer declared for edge1 is a candidate there, whatever the other clusters declare. That
holds only while two entries of clusters: are two Ceph clusters. Two entries reaching one
cluster share one set of records, and each would take the other's pools and users for
undeclared ones: --prune fails those entries before planning anything on them (from each
connection's fsid alone: no command sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cephstack.errors import EXIT_BAD_INPUT, CephstackError


class SharedCluster(CephstackError):
    """Two clusters: entries reach the same Ceph cluster: --prune would remove what the
    other entry declares. The spec's mistake (exit 2), found once connected."""

    exit_code = EXIT_BAD_INPUT
    kind = "invalid-spec"


def shared(fsids: Mapping[str, str]) -> dict[str, list[str]]:
    """{entry: the other entries with its fsid} for the entries that share a cluster."""
    by_fsid: dict[str, list[str]] = {}
    for name, fsid in fsids.items():
        by_fsid.setdefault(fsid, []).append(name)
    return {name: [other for other in names if other != name]
            for names in by_fsid.values() if len(names) > 1 for name in names}


def shared_error(name: str, others: list[str], fsid: str) -> SharedCluster:
    return SharedCluster(
        f"--prune: clusters.{name} and clusters.{', clusters.'.join(others)} reach the same "
        f"Ceph cluster (fsid {fsid}); cephstack's records of what it created there are "
        f"shared, so pruning {name}'s part would remove what {', '.join(others)} declares: "
        "nothing planned or removed on it",
        hint="give each Ceph cluster one entry under clusters: (or run without --prune)")


def refuse_shared(runs: Mapping[str, Any]) -> None:
    """Between connecting and planning (fleet.start with --prune): each connected run
    (a ClusterRun) that shares its cluster with another entry fails with SharedCluster."""
    fsids = {name: run.conn.fsid() for name, run in runs.items() if run.ok}
    for name, others in shared(fsids).items():
        runs[name].error = shared_error(name, others, fsids[name])
