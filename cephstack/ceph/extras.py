"""Reading and converging the cluster-wide extras of plan/extras.py: the manager's trash
purge schedules (rbd_support: `rbd trash purge schedule list/add/remove`, level spec
`pool`) and the monitors' msgr2 settings (`config dump`, `config set global`).

Read only when the spec asks for them; a manager that does not answer leaves the
schedules unread (a plan note), not the plan failed: they are converged next time.
"""

from __future__ import annotations

import errno as errnos
import time
from collections.abc import Callable
from typing import Any

from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephCommandError, CephstackError
from cephstack.plan import secure, trash
from cephstack.plan.extras import NOT_READ

POOL_KNOWN_WAIT = 30.0  # seconds the manager may lag the monitors' OSD map
_MGR_HINT = ("is a ceph-mgr active (`ceph mgr stat`)? Its rbd_support module keeps the "
             "trash purge schedules")


def purge_schedules(conn: CephConnection) -> dict[str, tuple[str, ...]]:
    """Pool -> the intervals of the trash purge schedules set on the pool itself."""
    listed = conn.mgr("rbd trash purge schedule list", hint=_MGR_HINT, level_spec="") or {}
    out: dict[str, tuple[str, ...]] = {}
    for entry in listed.values():
        name = str(entry.get("name", ""))
        if name.endswith("/") and name.count("/") == 1:  # "pool/": the pool, no namespace
            out[name[:-1]] = tuple(str(s["interval"]) for s in entry.get("schedule", []))
    return out


def global_config(conn: CephConnection, names: tuple[str, ...]) -> dict[str, str]:
    return {str(e["name"]): str(e["value"]) for e in conn.mon("config dump") or []
            if e.get("section") == "global" and e.get("name") in names}


def read_extras(conn: CephConnection, spec: Any) -> dict[str, Any]:
    """The facts plan/extras.py plans from, for what the spec asks."""
    out: dict[str, Any] = {}
    if trash.wanted(spec):
        try:
            out[trash.FACTS] = purge_schedules(conn)
        except CephstackError as e:
            out[NOT_READ] = (f"the trash purge schedules ({e.message}); apply sets them "
                             "once the manager answers",)
    if secure.wanted(spec):
        out[secure.FACTS] = global_config(conn, secure.REQUIRED)
    return out


def extra_steps(conn: CephConnection, actions: Any) -> list[tuple[str, Callable[[], None]]]:
    """(what, run) for each extra action of a plan; after the pools exist (a schedule
    names an existing pool)."""
    steps: list[tuple[str, Callable[[], None]]] = []
    for a in actions:
        if isinstance(a, trash.SetTrashPurge):
            steps.append((f"~ {a.address}", lambda a=a: set_purge(conn, a.pool, a.before,
                                                                  a.after)))
        elif isinstance(a, secure.SetClusterConfig):
            steps.append((f"~ {a.address}", lambda a=a: conn.mon(
                "config set", who="global", name=a.name, value=a.after)))
    return steps


def _schedule(conn: CephConnection, verb: str, pool: str, interval: str,
              wait: float = POOL_KNOWN_WAIT) -> None:
    """One schedule command; a pool created moments ago is unknown to the manager until its
    OSD map catches up (EINVAL "failed to parse"): asked again, within `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.mgr(f"rbd trash purge schedule {verb}", hint=_MGR_HINT, level_spec=f"{pool}/",
                     interval=interval)
            return
        except CephCommandError as e:
            if e.errno != errnos.EINVAL or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def set_purge(conn: CephConnection, pool: str, before: tuple[str, ...],
              after: str | None) -> None:
    for interval in before:
        if interval != after:
            _schedule(conn, "remove", pool, interval)
    if after and after not in before:
        _schedule(conn, "add", pool, after)
