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

from cephstack import interrupt
from cephstack.ceph.adapter import CephConnection
from cephstack.ceph.observe import _pool_pg_states
from cephstack.day2.status import (
    DEFAULT_MAX_IMAGES,
    ImageFacts,
    Locker,
    PoolFacts,
    StatusFacts,
    TrashEntry,
    image_budget,
    parse_blocklist,
    status_pools,
)
from cephstack.errors import CephCommandError, OpTimedOut, PermissionDenied
from cephstack.plan.state import ClusterState
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


def _pool_rbd(conn: CephConnection, pool: str) -> tuple[list[str], list[TrashEntry], dict]:
    names, trash, stats = conn.concurrently([
        lambda: list(conn.rbd("list", pool)),
        lambda: [TrashEntry(str(t["name"]), str(t.get("source", "")),
                            str(t["deferment_end_time"]) if t.get("deferment_end_time")
                            else None) for t in conn.rbd("trash_list", pool)],
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
    raw = (df or {}).get("stats", {})
    return StatusFacts(
        pools=pools, blocklist=exact, blocklist_ranges=ranges,
        capacity={k: int(raw[k]) for k in ("total_bytes", "total_avail_bytes",
                                           "total_used_raw_bytes") if k in raw},
        taken_at=taken_at, seconds=time.monotonic() - started,
        mon_commands=conn.commands_sent, images_opened=len(chosen),
        max_images=max_images)
