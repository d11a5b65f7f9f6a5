"""The reads and acts behind `cephstack fence`, `unfence` and `locks`, and verify's evacuate
takeover: what a dead host's clients hold (status' bounded reads), blocklisting them (mon
`osd blocklist add|rm`), breaking their locks (librbd break_lock); and the one workflow of
each command over the fleet (one cluster, or several at once, each on its own part of the
spec: a host may be a Ceph client of several clusters, and is fenced wherever it is).

fence reads everywhere first (what the address holds, the blocklist, the daemons' own
addresses) and acts only after: an address that is no host, this process's own, or a
Ceph daemon's (without --force) stops the whole command before anything changes. A
cluster that fails is reported with its error while the others go on.

The order is what makes a takeover safe: first the blocklist entry (once the OSDs have the
new OSD map they refuse the fenced client's requests and drop its watches), then the locks.
A lock broken first could be re-taken, or written under, by a client that only seemed dead.
Every call is bounded by the connection's timeouts (rados_mon_op_timeout and
rados_osd_op_timeout; the wait for the new OSD map by the operation timeout too).
"""

from __future__ import annotations

import errno as errnos
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cephstack.ceph.adapter import CephConnection
from cephstack.day2.fence import (
    ALREADY_FREE,
    FencePlan,
    FenceResult,
    HeldImage,
    LockOutcome,
    Target,
    UnfenceItem,
    blocklist_entries,
    held_images,
    own_targets,
    plan_fence,
    plan_unfence,
)
from cephstack.day2.fenceguard import (
    MAPS,
    DaemonAddress,
    daemon_addresses,
    daemon_conflicts,
    never_fenced,
)
from cephstack.day2.status import Locker, Status, StatusFacts, build_status
from cephstack.day2.status_read import SCAN_THREADS, read_status
from cephstack.errors import (
    BadTarget,
    CephCommandError,
    CephstackError,
    OpTimedOut,
    PermissionDenied,
)
from cephstack.session import fleet
from cephstack.session.connect import Settings
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.spec.fleet import split
from cephstack.spec.load import Spec

Progress = Callable[[str, str], None]  # (cluster, line)


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


def read_daemons(conn: CephConnection) -> tuple[DaemonAddress, ...]:
    """Every address of a monitor, manager, OSD, MDS and service daemon (RGW, rbd-mirror)
    of the cluster, from its maps, read at once."""
    return daemon_addresses(*conn.concurrently([lambda m=m: conn.mon(m) for m in MAPS]))


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


# -- the workflows over the fleet ---------------------------------------------------------

def fleet_of(spec: Spec | None, only: list[str] | None = None) -> Fleet:
    """The clusters a command runs on: the spec's (those `only` names; the caller checked
    them), each with its part of the spec; without a spec, the one the flags reach."""
    named = spec is not None and bool(spec.clusters)
    parts = split(spec) if spec is not None else {"ceph": None}
    return Fleet({n: ClusterRun(n, part, named=named)  # type: ignore[arg-type]
                  for n, part in parts.items() if not only or n in only}, named=named)


def _refused(runs: Fleet) -> None:
    """Raise the refusals of the clusters that refused (nothing changed anywhere)."""
    refused = [r.error for r in runs.runs.values() if isinstance(r.error, BadTarget)]
    if not refused:
        return
    if not runs.named:
        raise refused[0]
    raise BadTarget("; ".join(f"{r.name}: {r.error.message}" for r in runs.runs.values()
                              if isinstance(r.error, BadTarget)), hint=refused[0].hint)


def refuse_never_fenced(targets: tuple[Target, ...]) -> None:
    """The unspecified, multicast and broadcast addresses: refused, --force or not."""
    never = [why for t in targets if (why := never_fenced(t))]
    if never:
        raise BadTarget("; ".join(never), hint="give the dead host's address, or one "
                        "client instance IP:PORT/NONCE (see `cephstack locks`)")


def refuse_targets(conn: CephConnection, targets: tuple[Target, ...],
                   force: bool) -> tuple[str, ...]:
    """Refuse (BadTarget) a target that would cut this process off, or that reaches a
    Ceph daemon of the cluster (unless `force`: then the reasons, for the views)."""
    refuse_never_fenced(targets)
    own = conn.client_address()
    if mine := own_targets(targets, own):
        raise BadTarget(
            f"{', '.join(t.text for t in mine)} would cut off this cephstack process itself "
            f"(its connection is {own}): the fence would stop half-way",
            hint="run fence from another host, or give the dead client's instance "
                 "(IP:PORT/NONCE, see `cephstack locks`)")
    daemons = daemon_conflicts(targets, read_daemons(conn))
    if daemons and not force:
        raise BadTarget("; ".join(daemons), hint="fence only dead OpenStack clients; "
                        "--force fences a daemon's address anyway")
    return daemons


@dataclass
class Fenced:
    """fence on each cluster: what it would do and, with --yes, what it did."""

    plans: dict[str, FencePlan]
    results: dict[str, FenceResult]


def fence_fleet(settings: Settings, runs: Fleet, targets: tuple[Target, ...], *, act: bool,
                max_images: int, expire: float | None, force: bool = False,
                progress: Progress = lambda _c, _l: None) -> Fenced:
    """Read every cluster (refusing bad targets there), then, with `act`, fence on each."""
    refuse_never_fenced(targets)  # before any connection
    found = Fenced({}, {})

    def read(run: ClusterRun) -> None:
        conn = fleet.connect_run(settings, run)
        forced = refuse_targets(conn, targets, force)
        _, status = scan(conn, run.spec, max_images)
        entries, ranges = read_blocklist(conn)
        plan = plan_fence(targets, status, entries, ranges, expire, forced)
        found.plans[run.name] = plan
        progress(run.name, f"read: {len(plan.locks)} lock(s) to break")

    def fence_one(run: ClusterRun) -> None:
        found.results[run.name] = fence(run.conn, found.plans[run.name])
        progress(run.name, "fenced")

    clusters = list(runs.runs.values())
    fleet.each(clusters, read)
    _refused(runs)
    if act:
        fleet.each(clusters, fence_one)
    return found


def unfence_fleet(settings: Settings, runs: Fleet, targets: tuple[Target, ...], *,
                  act: bool) -> dict[str, tuple[UnfenceItem, ...]]:
    """Each cluster's entries of the targets; with `act`, removed (and checked gone)."""
    items: dict[str, tuple[UnfenceItem, ...]] = {}

    def unfence_one(run: ClusterRun) -> None:
        conn = fleet.connect_run(settings, run)
        entries, ranges = read_blocklist(conn)
        found = plan_unfence(targets, entries, ranges)
        if act:
            check_removed(found, unfence(conn, [i.target for i in found
                                                if i.until is not None]))
        items[run.name] = found

    fleet.each(list(runs.runs.values()), unfence_one)
    return items


def check_removed(items: tuple[UnfenceItem, ...], left: dict[str, str]) -> None:
    """After unfence: every entry it removed must be gone from the blocklist (`left`)."""
    stuck = [i.target.address for i in items
             if i.until is not None and i.target.address in left]
    if stuck:
        raise CephstackError(f"still in the blocklist after removal: {', '.join(stuck)}",
                             hint="another client may have added them again; "
                                  "check `ceph osd blocklist ls`")


def locks_fleet(settings: Settings, runs: Fleet, max_images: int
                ) -> dict[str, tuple[tuple[HeldImage, ...], Status]]:
    """Each cluster's locked or watched images (read only), with its status' reads."""
    found: dict[str, Any] = {}

    def read(run: ClusterRun) -> None:
        facts, status = scan(fleet.connect_run(settings, run), run.spec, max_images)
        found[run.name] = (held_images(status, facts.blocklist, facts.blocklist_ranges),
                           status)

    fleet.each(list(runs.runs.values()), read)
    return found
