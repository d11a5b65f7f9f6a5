"""audit: a pool Cinder uses whose trash nothing purges (plan/trash.py says why it piles up:
Cinder moves a volume that still has clones to the RBD trash and, without deferred
deletion, never purges it)."""

from __future__ import annotations

from typing import Any

from cephstack.errors import CephstackError
from cephstack.plan.opinions import WARNING, Finding
from cephstack.plan.trash import cinder_purges
from cephstack.spec.load import Spec

FINDING = "trash-not-purged"


def unpurged_findings(volume_pools: list[str], schedules: dict[str, tuple[str, ...]] | None,
                      spec: Spec | None) -> list[Finding]:
    """`schedules`: pool -> its trash purge intervals (None: not read, nothing to say)."""
    if schedules is None or (spec is not None and cinder_purges(spec)):
        return []
    return [Finding(
        FINDING, WARNING, f"pool {pool}",
        "nothing purges the RBD trash of this Cinder pool (no `rbd trash purge schedule`)",
        "volumes Cinder deletes while clones depend on them move to the trash and keep "
        "their space forever, unless cinder.conf sets enable_deferred_deletion",
        f"trash_purge: 1d on pool {pool} in the spec (apply sets the schedule), or "
        f"`rbd trash purge schedule add --pool {pool} 1d`")
        for pool in volume_pools if not schedules.get(pool)]


def trash_facts(conn: Any) -> dict[str, Any]:
    """ClusterState.extras with the pools' trash purge schedules (empty: not read)."""
    from cephstack.ceph.extras import purge_schedules

    try:
        return {"trash_purge": purge_schedules(conn)}
    except CephstackError:  # no manager: import writes no trash_purge
        return {}


def unpurged(conn: Any, spec: Spec | None, volume_pools: list[str]) -> list[Finding]:
    from cephstack.ceph.extras import purge_schedules

    if not volume_pools:
        return []
    try:
        schedules = purge_schedules(conn)
    except CephstackError:  # no manager: the schedules cannot be told
        schedules = None
    return unpurged_findings(volume_pools, schedules, spec)
