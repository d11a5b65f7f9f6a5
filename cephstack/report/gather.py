"""What `cephstack report` reads: every cluster of the spec observed and read at once
(day2.status_read.read_each: a thread each, each against its part of the spec), then each
cluster's part of the page (its status, plan with keys masked, audit findings and access
picture). A cluster that cannot be read keeps its error in the Fleet; the others are read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cephstack.adopt.access import build_access
from cephstack.adopt.audit import audit
from cephstack.day2.status import Status, StatusFacts
from cephstack.day2.status_read import read, read_each
from cephstack.plan.state import ClusterState
from cephstack.report.pages import ClusterPage, FleetPages
from cephstack.session.connect import Settings, observe_for, plan_for
from cephstack.session.fleet import ClusterRun
from cephstack.spec.load import Spec


def _volume_snapshots(facts: StatusFacts, status: Status) -> dict[str, list[str]]:
    """Snapshot names of the Cinder volumes status opened, as the audit takes them."""
    cinder = {p.name for p in status.pools if "cinder-volume" in p.services}
    return {f"{pool}/{image.name}": list(image.snapshots)
            for pool, found in facts.pools.items() if pool in cinder
            for image in found.scanned if image.name.startswith("volume-")}


def observe_cluster(conn: Any, spec: Spec | None, max_images: int
                    ) -> tuple[ClusterState, StatusFacts, Status]:
    """Observe one cluster (as plan does, given a spec) and read its status."""
    started = time.monotonic()
    state = observe_for(conn, spec) if spec is not None else None
    return read(conn, spec, max_images, state, started)


def page_parts(spec: Spec | None, state: ClusterState, facts: StatusFacts, status: Status,
               access: Any) -> dict[str, Any]:
    """One cluster's part of the page besides verify (html.cluster_body's arguments):
    its status, plan (keys masked), audit findings and access picture."""
    from cephstack.report.views import plan_json

    plan = plan_for(spec, state) if spec is not None else None
    findings = audit(state, spec, state.keyring_files, _volume_snapshots(facts, status))
    return {"status": status, "plan": plan_json(plan) if plan is not None else None,
            "findings": findings, "access": access}


def read_pages(settings: Settings, spec: Spec | None, max_images: int,
               verify: dict[str, dict[str, Any]],
               progress: Callable[[str, str], None] | None = None) -> FleetPages:
    """Every cluster observed and read at once; `verify`: each cluster's own verify report
    (its least-privilege marks); `progress(cluster, line)` after each cluster is read,
    when there are several."""
    pages: dict[str, ClusterPage] = {}
    named = bool(spec is not None and spec.clusters)

    def read_one(run: ClusterRun, conn: Any) -> None:
        started = time.monotonic()
        state, facts, status = observe_cluster(conn, run.spec, max_images)
        access = build_access(run.spec, state, verify.get(run.name))
        pages[run.name] = ClusterPage(state.fsid, page_parts(run.spec, state, facts, status,
                                                             access))
        if named and progress is not None:
            progress(run.name, f"read: {len(status.pools)} pool(s) in "
                     f"{time.monotonic() - started:.1f} s")

    found, named = read_each(settings, spec, read_one)
    return FleetPages(found, {n: pages[n] for n in found.runs if n in pages}, named)
