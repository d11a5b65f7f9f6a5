"""The reads and acts behind `cephstack fence`, `unfence` and `locks`, and verify's evacuate
takeover: what a dead host's clients hold (status' bounded reads), blocklisting them (mon
`osd blocklist add|rm`), breaking their locks (librbd break_lock).

The order is what makes a takeover safe: first the blocklist entry (once the OSDs have the
new OSD map they refuse the fenced client's requests and drop its watches), then the locks.
A lock broken first could be re-taken, or written under, by a client that only seemed dead.
Every call is bounded by the connection's timeouts (rados_mon_op_timeout and
rados_osd_op_timeout; the wait for the new OSD map by the operation timeout too).
"""

from __future__ import annotations

import errno as errnos
import time
from concurrent.futures import ThreadPoolExecutor

from cephstack.ceph.adapter import CephConnection
from cephstack.day2.fence import (
    ALREADY_FREE,
    FencePlan,
    FenceResult,
    LockOutcome,
    Target,
    blocklist_entries,
)
from cephstack.day2.status import Locker, Status, StatusFacts, build_status
from cephstack.day2.status_read import SCAN_THREADS, read_status
from cephstack.errors import CephCommandError, OpTimedOut, PermissionDenied
from cephstack.spec.load import Spec


def scan(conn: CephConnection, spec: Spec | None, max_images: int
         ) -> tuple[StatusFacts, Status]:
    """status' reads (observe, then at most `max_images` images opened read-only, 16 at a
    time): every lock and watcher of the OpenStack pools, with the blocklist."""
    from cephstack.ceph.observe import observe

    started = time.monotonic()
    state = observe(conn)
    facts = read_status(conn, state, spec, max_images, started=started)
    return facts, build_status(state, facts, spec)


def read_blocklist(conn: CephConnection) -> tuple[dict[str, str], tuple[str, ...]]:
    """({entry: until}, CIDR ranges) of the OSD blocklist."""
    return blocklist_entries(conn.mon("osd blocklist ls"))


def blocklist(conn: CephConnection, addresses: list[str], expire: float | None = None) -> None:
    """Add the entries (all at once: one monitor commit), then fetch the new OSD map, so
    that what this connection does next reaches OSDs that already refuse those clients."""
    extra = {} if expire is None else {"expire": float(expire)}
    conn.concurrently([lambda a=a: conn.mon("osd blocklist", blocklistop="add", addr=a,
                                            **extra) for a in addresses])
    conn.wait_for_osdmap()


def unblocklist(conn: CephConnection, addresses: list[str]) -> None:
    conn.concurrently([lambda a=a: conn.mon("osd blocklist", blocklistop="rm", addr=a)
                       for a in addresses])


def lockers(conn: CephConnection, pool: str, image: str) -> list[Locker]:
    """The locks on one image (opened read-only: no watch of its own)."""
    with conn.image(pool, image, read_only=True) as img:
        held = img.list_lockers() or {}
    return [Locker(str(c), str(cookie), str(addr), bool(held.get("exclusive")),
                   str(held.get("tag", ""))) for c, cookie, addr in held.get("lockers", [])]


def watchers(conn: CephConnection, pool: str, image: str) -> list[str]:
    with conn.image(pool, image, read_only=True) as img:
        return [str(w["addr"]) for w in img.watchers_list()]


def _break(conn: CephConnection, outcome: LockOutcome) -> LockOutcome:
    try:
        with conn.image(outcome.pool, outcome.image, read_only=True) as img:
            img.break_lock(outcome.entity, outcome.cookie)
    except (OpTimedOut, PermissionDenied):
        raise  # the cluster or the caps: the command stops and says so
    except CephCommandError as e:
        outcome.note = ALREADY_FREE if e.errno == errnos.ENOENT else e.message
        return outcome
    outcome.freed = True
    return outcome


def break_locks(conn: CephConnection, locks: list[LockOutcome]) -> list[LockOutcome]:
    """Break each lock (its holder blocklisted already), at most 16 at a time. A lock that
    is gone (released, or broken by librbd for another client) is "already released".

    librbd's break_lock would blocklist the holder again, with Ceph's default expiry in
    place of the one asked for: rbd_blocklist_on_break_lock is turned off on `conn`."""
    conn.set_option("rbd_blocklist_on_break_lock", "false")
    if len(locks) <= 1:
        return [_break(conn, o) for o in locks]
    with ThreadPoolExecutor(max_workers=min(SCAN_THREADS, len(locks))) as pool:
        futures = [pool.submit(_break, conn, o) for o in locks]
    return [f.result() for f in futures]


def fence(conn: CephConnection, plan: FencePlan) -> FenceResult:
    """Blocklist the targets, break their locks, then look again at the images they held:
    the entries with their expiry, each lock's outcome, and any watch still there."""
    blocklist(conn, [t.address for t in plan.targets], plan.expire)
    outcomes = break_locks(conn, [LockOutcome(h.pool, h.image, lk.entity, lk.cookie,
                                              lk.address) for h, lk in plan.locks])
    entries, _ = read_blocklist(conn)
    held = sorted({(h.pool, h.image) for h in plan.hits})
    seen = conn.concurrently([lambda p=p, i=i: _watchers_or_none(conn, p, i) for p, i in held])
    still = [(p, i, w) for (p, i), found in zip(held, seen, strict=True) for w in found or []
             if any(t.matches(w) for t in plan.targets)]
    return FenceResult({t.address: entries.get(t.address, "") for t in plan.targets},
                       outcomes, still)


def _watchers_or_none(conn: CephConnection, pool: str, image: str) -> list[str] | None:
    try:
        return watchers(conn, pool, image)
    except (OpTimedOut, PermissionDenied):
        raise
    except CephCommandError:
        return None  # removed meanwhile: nobody watches it


def unfence(conn: CephConnection, targets: list[Target]) -> dict[str, str]:
    """Remove the targets' own entries; the blocklist as it is afterwards."""
    unblocklist(conn, [t.address for t in targets])
    return read_blocklist(conn)[0]
