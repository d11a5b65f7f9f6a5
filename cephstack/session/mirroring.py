"""RBD mirroring of a fleet's mirroring: pair, planned and applied like a cluster's plan:
its facts observed on both sides and its actions planned (cephstack.ceph.mirror,
cephstack.plan.mirroring) once both sides' pools exist, carried out by apply after the
clusters' own plans, then checked to have nothing left."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cephstack.errors import CephCommandError, CephstackError
from cephstack.plan.make import RBD_APPLICATION
from cephstack.plan.mirroring import MirrorAction
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.spec.load import Spec

# The manager's rbd_support module knows a pool is an RBD pool from its own copy of the OSD
# map, a moment after the monitors: right after apply creates a pool, its snapshot
# schedule commands answer EINVAL "... is not an RBD pool" until that copy catches up.
_MGR_CATCH_UP = 10.0


def _manager_caught_up(call: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + _MGR_CATCH_UP
    while True:
        try:
            return call()
        except CephCommandError as e:
            if "is not an RBD pool" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _sides(spec: Spec, multi: Fleet) -> list[ClusterRun]:
    m = spec.mirroring
    return [multi.runs[m.primary], multi.runs[m.secondary]]


def _planned(spec: Spec, sides: list[ClusterRun], carry_out: bool = False,
             progress: Callable[[str], None] = lambda _: None) -> list[MirrorAction]:
    """Mirroring observed and planned (and with `carry_out`, its actions carried out),
    again as a whole while the manager catches up with new pools."""
    from cephstack.ceph import mirror

    m = spec.mirroring
    sites = {"primary_site": m.primary, "secondary_site": m.secondary}

    def once() -> list[MirrorAction]:
        actions = mirror.mirroring_changes(sides[0].conn, sides[1].conn, list(m.pools),
                                           schedule=m.schedule, **sites)
        if carry_out:
            mirror.carry_out(sides[0].conn, sides[1].conn, actions, progress=progress,
                             **sites)
        return actions

    return _manager_caught_up(once)


def plan_mirroring(spec: Spec, multi: Fleet) -> None:
    """What mirroring would change, asked of both sides (read-only); pending while a side's
    pools do not exist yet (apply sets it up right after creating them)."""
    m = spec.mirroring
    if m is None:
        return
    sides = _sides(spec, multi)
    if not all(r.ok and r.state is not None for r in sides):
        multi.mirroring_note = (f"mirroring {m.primary} -> {m.secondary} not looked at: "
                                f"{', '.join(r.name for r in sides if not r.ok)} failed")
        return
    # Ready: the pool exists and is an RBD pool (apply --yes creates pools first, with the
    # run lock, and enables the rbd application in a later round).
    missing = [f"{r.name}/{p}" for r in sides for p in m.pools
               if p not in r.state.pools or RBD_APPLICATION not in r.state.pools[p].applications]
    if missing:
        multi.mirroring_pending = (f"mirroring {m.primary} -> {m.secondary} of "
                                   f"{', '.join(m.pools)} is set up once {', '.join(missing)} "
                                   "exist as RBD pools (apply sets it up right after them)")
        return
    try:
        multi.mirroring = _planned(spec, sides)
    except CephstackError as e:
        multi.mirroring_error = e


def apply_mirroring(spec: Spec, multi: Fleet, progress: Callable[[str], None]) -> list[str]:
    """Plan mirroring again (the pools exist now) and carry its actions out."""
    m = spec.mirroring
    if m is None or not (multi.mirroring or multi.mirroring_pending):
        return []
    sides = _sides(spec, multi)
    if not all(r.ok for r in sides):
        multi.mirroring_error = CephstackError(
            f"mirroring {m.primary} -> {m.secondary} not set up: "
            f"{', '.join(r.name for r in sides if not r.ok)} failed",
            hint="fix that cluster and run apply again")
        return []
    try:
        actions = _planned(spec, sides, carry_out=True, progress=progress)
    except CephstackError as e:
        multi.mirroring_error = e
        return []
    return [f"{a.address}: {a.detail}" for a in actions]


def check_mirroring(spec: Spec, multi: Fleet) -> None:
    """After apply (states observed again): mirroring must now have nothing left to do."""
    if spec.mirroring is None or multi.mirroring_error:
        return
    probe = Fleet(multi.runs)
    plan_mirroring(spec, probe)
    left = [f"{a.address}: {a.detail}" for a in probe.mirroring] + (
        [probe.mirroring_pending] if probe.mirroring_pending else [])
    if probe.mirroring_error or left:
        multi.mirroring_error = probe.mirroring_error or CephstackError(
            "mirroring still differs from the spec after apply: " + "; ".join(left))
