"""The reads behind `cephstack status`: read-only, bounded, whatever the size of a pool.

Per run, after observe(): three mon commands (`df detail`: stored, objects, max_avail,
quotas, with `osd blocklist ls` at once; then `pg dump pgs_brief`: PG states per pool,
about 100 bytes per PG).
Per pool whose PGs are all active, at once: the image directory (`rbd ls`: one omap read
per 1024 names), the trash (one omap read) and librbd's pool stats (`rbd pool stats`: one
small header read per image, no image opened), which count images and snapshots exactly.
Then at most `max_images` images opened read-only (no watch of their own), 16 at a time,
for what only an open image tells: locks and their holders, watchers, snapshot names
(Cinder backup snapshots) and, for the Glance pool, the clones of each image (librbd's
children listing: rbd_children of each pool, and the image's own clone-v2 records).
When a pool has more images than its share of `max_images`, a random sample is opened
(a new one each run) and the view says so.
"""

from __future__ import annotations

import errno as errnos
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cephstack import interrupt
from cephstack.adopt.audit import recognise
from cephstack.ceph.adapter import CephConnection
from cephstack.ceph.observe import _pool_pg_states
from cephstack.day2.keystatus import insecure_checks, read_insecure_keys
from cephstack.day2.status import (
    DEFAULT_MAX_IMAGES,
    FleetStatus,
    ImageFacts,
    Locker,
    PoolFacts,
    Status,
    StatusFacts,
    TrashEntry,
    build_status,
    image_budget,
    parse_blocklist,
    status_pools,
)
from cephstack.errors import CephCommandError, OpTimedOut, PermissionDenied
from cephstack.plan.state import ClusterState
from cephstack.session import fleet
from cephstack.session.connect import Settings, connect
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.spec.fleet import split
from cephstack.spec.load import Spec

SCAN_THREADS = 16  # images open at once


def _image(conn: CephConnection, pool: str, name: str, children: bool) -> ImageFacts | None:
    """One image's locks, watchers, snapshot names (and clones): None if it went away."""
    interrupt.check()
    try:
        with conn.image(pool, name, read_only=True) as image:
            snaps = tuple(s["name"] for s in image.list_snaps())
            watchers = tuple(str(w["addr"]) for w in image.watchers_list())
            held = image.list_lockers() or {}
            lockers = tuple(Locker(str(c), str(cookie), str(addr), bool(held.get("exclusive")),
                                   str(held.get("tag", ""))) for c, cookie, addr
                            in held.get("lockers", []))
            kids = tuple((str(c["pool"]), str(c["image"])) for c in image.list_children2()
                         ) if children and snaps else ()
    except (OpTimedOut, PermissionDenied):
        raise  # the cluster or the caps, not this image: the run stops and says so
    except CephCommandError as e:
        if e.errno == errnos.ENOENT:  # removed since the directory was read
            return None
        return ImageFacts(name, error=e.message)  # one broken image must not hide the rest
    return ImageFacts(name, snaps, watchers, lockers, kids)


def _iso(when: Any) -> str | None:
    return when.isoformat(sep=" ", timespec="seconds") if hasattr(when, "isoformat") else None


def _pool_rbd(conn: CephConnection, pool: str) -> tuple[list[str], list[TrashEntry], dict]:
    names, trash, stats = conn.concurrently([
        lambda: list(conn.rbd("list", pool)),
        lambda: [TrashEntry(str(t["name"]), str(t.get("source", "")),
                            str(t["deferment_end_time"]) if t.get("deferment_end_time")
                            else None, _iso(t.get("deletion_time")))
                 for t in conn.rbd("trash_list", pool)],
        lambda: conn.rbd("pool_stats_get", pool),
    ])
    return names, trash, stats


def read_status(conn: CephConnection, state: ClusterState, spec: Spec | None = None,
                max_images: int = DEFAULT_MAX_IMAGES, started: float | None = None,
                rng: random.Random | None = None) -> StatusFacts:
    """Everything `cephstack status` shows beyond observe()'s `state`, read once (see the
    module's docstring). `started`: time.monotonic() when the command began reading (its
    observe() included), for the duration it reports."""
    started = time.monotonic() if started is None else started
    taken_at = time.time()
    services, images_pool = status_pools(state, spec)
    names = [n for n in services if n in state.pools]
    df, blocklist = conn.concurrently([lambda: conn.mon("df", detail="detail"),
                                       lambda: conn.mon("osd blocklist ls")])
    ids = {p["name"]: p["id"] for p in (df or {}).get("pools", [])}
    stats = {p["name"]: p.get("stats", {}) for p in (df or {}).get("pools", [])}
    detail = [{"pool_id": ids.get(n, -1), "pool_name": n, "pg_num": state.pools[n].pg_num}
              for n in names]
    pg_states = _pool_pg_states(conn, detail) if names else {}
    exact, ranges = parse_blocklist(blocklist)

    def readable(pool: str) -> str:
        """Why the pool's RBD reads are skipped ("" when they are not)."""
        if pg_states is None:
            return "PG states unknown (no manager answered): RBD reads skipped"
        states = pg_states.get(pool, {})
        unknown = states.get("unknown", 0)
        inactive = sum(n for s, n in states.items() if "active" not in s.split("+")) - unknown
        why = [f"{inactive} PGs not active"] if inactive else []
        if unknown:  # no OSD reported them yet: a new pool, or the manager just restarted
            why.append(f"{unknown} PGs not yet reported to the manager")
        # A read from a PG that is not active waits for the whole --op-timeout: skip it.
        return f"{', '.join(why)}: RBD reads skipped" if why else ""

    skipped = {n: readable(n) for n in names}
    to_read = [n for n in names if not skipped[n]]
    rbd = dict(zip(to_read, conn.concurrently([lambda n=n: _pool_rbd(conn, n)
                                               for n in to_read]), strict=True))
    budget = image_budget({n: len(rbd[n][0]) for n in to_read}, max_images)
    rng = rng or random.Random()
    chosen = [(n, name) for n in to_read
              for name in (sorted(rbd[n][0]) if budget[n] >= len(rbd[n][0])
                           else sorted(rng.sample(sorted(rbd[n][0]), budget[n])))]
    with ThreadPoolExecutor(max_workers=SCAN_THREADS) as pool_exec:
        futures = [pool_exec.submit(_image, conn, n, name, n == images_pool)
                   for n, name in chosen]
    scanned: dict[str, list[ImageFacts]] = {n: [] for n in to_read}
    for (n, _), future in zip(chosen, futures, strict=True):
        found = future.result()  # the first error, if any, is raised here
        if found is not None:
            scanned[n].append(found)

    pools = {}
    for n in names:
        s, pool = stats.get(n, {}), state.pools[n]
        common = dict(name=n, stored=int(s.get("stored", 0)), used=int(s.get("bytes_used", 0)),
                      objects=int(s.get("objects", 0)), max_avail=int(s.get("max_avail", 0)),
                      quota_bytes=int(s.get("quota_bytes", pool.quota_max_bytes)),
                      quota_objects=int(s.get("quota_objects", pool.quota_max_objects)),
                      pg_states=None if pg_states is None else dict(pg_states.get(n, {})))
        if n not in rbd:
            pools[n] = PoolFacts(**common, read=False, note=skipped[n])
            continue
        listed, trash, pstats = rbd[n]
        pools[n] = PoolFacts(**common, images=len(listed),
                             provisioned_bytes=int(pstats.get("image_provisioned_bytes", 0)),
                             snapshots=int(pstats.get("image_snap_count", 0)),
                             trash=tuple(sorted(trash, key=lambda t: t.name)),
                             scanned=tuple(scanned[n]))
    roles, _ = recognise(state, spec)
    insecure = read_insecure_keys(conn, state, {r.service: r.entity for r in roles})
    raw = (df or {}).get("stats", {})
    return StatusFacts(
        pools=pools, blocklist=exact, blocklist_ranges=ranges,
        capacity={k: int(raw[k]) for k in ("total_bytes", "total_avail_bytes",
                                           "total_used_raw_bytes") if k in raw},
        taken_at=taken_at, seconds=time.monotonic() - started,
        mon_commands=conn.commands_sent, images_opened=len(chosen),
        max_images=max_images, insecure_keys=insecure, auth_checks=insecure_checks(state))


def read(conn: CephConnection, spec: Spec | None, max_images: int = DEFAULT_MAX_IMAGES,
         state: ClusterState | None = None, started: float | None = None
         ) -> tuple[ClusterState, StatusFacts, Status]:
    """Observe (unless `state` is given), read and build one cluster's status: (state,
    facts, status). `report` observes for its plan first and passes its state."""
    from cephstack.ceph.observe import observe

    started = time.monotonic() if started is None else started
    state = observe(conn) if state is None else state
    facts = read_status(conn, state, spec, max_images, started=started)
    return state, facts, build_status(state, facts, spec)


def fleet_of(spec: Spec | None) -> tuple[Fleet, bool]:
    """The clusters a read command reads, and whether they are named (a spec with
    `clusters:`: a section, document or label per cluster). Otherwise one cluster, shown as
    it always was: the spec's `cluster:`, or with no spec the --conf/--keyring/--id ones."""
    if spec is None:
        return Fleet({"ceph": ClusterRun("ceph", None)}), False  # type: ignore[arg-type]
    return Fleet({n: ClusterRun(n, part) for n, part in split(spec).items()}), bool(spec.clusters)


def read_each(settings: Settings, spec: Spec | None, work: Any) -> tuple[Fleet, bool]:
    """`work(run, conn)` on every cluster at once (fleet.each: a thread each); a cluster's
    error stays its own, in the Fleet. With one cluster not named, its error is the
    command's: raised, as it always was."""
    found, named = fleet_of(spec)

    def opened(run: ClusterRun) -> CephConnection:
        if named:  # its errors' hints name the spec's clusters: entry
            return fleet.connect_run(settings, run)
        run.conn = connect(settings, run.spec)  # its hints name --conf, as they always did
        return run.conn

    try:
        fleet.each(list(found.runs.values()), lambda run: work(run, opened(run)))
    finally:
        fleet.close(found)
    if not named and found.failed:
        raise found.failed[0].error  # type: ignore[misc]
    return found, named


def read_statuses(settings: Settings, spec: Spec | None,
                  max_images: int = DEFAULT_MAX_IMAGES) -> FleetStatus:
    """`cephstack status`: every cluster of the spec read at once, each against its part."""
    from cephstack.day2.mirrorstatus import read_mirroring
    from cephstack.day2.stores import list_store, store_gaps, stores_of

    statuses: dict[str, Status] = {}
    stores = stores_of(spec)
    listed: dict[str, set[str] | None] = {}

    def read_one(run: ClusterRun, conn: CephConnection) -> None:
        statuses[run.name] = read(conn, run.spec, max_images)[2]
        for store, cluster, pool in stores:
            if cluster == run.name and pool in run.spec.pools:
                try:
                    listed[store] = list_store(conn, pool)
                except CephCommandError as e:  # a missing pool: shown as not read
                    if e.errno != errnos.ENOENT:
                        raise

        mirrored.update(read_mirroring(conn, spec, run.name))

    mirrored: dict = {}
    found, named = read_each(settings, spec, read_one)
    return FleetStatus(found, {n: statuses[n] for n in found.runs if n in statuses}, named,
                       store_gaps(stores, listed) if stores else [], mirrored)
