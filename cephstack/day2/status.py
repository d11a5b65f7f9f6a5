"""`cephstack status`: what each OpenStack pool holds and what is wrong with it now.

Pure: the facts status_read gathers (StatusFacts) become a Status (build_status);
statusviews.py shows it as text, JSON or Prometheus' text exposition format.

A lock's holder is "gone" when either:
- its address is in the OSD blocklist (its OSD requests are refused: certainly gone), or
- the lock is librbd's exclusive lock (tag "internal", cookie "auto <n>") and its holder no
  longer watches the image header: librbd itself takes that as a dead owner and breaks
  the lock when another client opens the image. A crashed client keeps its watch until the
  OSD drops it (osd_client_watch_timeout, 30 s by default), so a crash shows here only
  after that.
Any other lock (an advisory `rbd lock add`, whose holder never watches) is listed with its
holder's address as "held": nothing in the cluster tells whether that holder lives.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cephstack.adopt.audit import BACKUP_PILE_UP, is_backup_snapshot, recognise
from cephstack.plan.state import ClusterState, Health
from cephstack.spec.load import Spec

if TYPE_CHECKING:
    from cephstack.session.fleet import Fleet

DEFAULT_MAX_IMAGES = 1000  # images opened per run (locks, watchers, snapshot names, clones)
LIVE, HELD, STALE = "live", "held", "stale"
_MANAGED_LOCK_TAG = "internal"  # librbd's exclusive lock (cls_lock tag)


# -- facts, as status_read gathers them ------------------------------------------------

@dataclass(frozen=True)
class Locker:
    entity: str  # client.4122: the holder's instance, not its cephx user
    cookie: str
    address: str  # 127.0.0.1:0/3507576585 (ip:port/nonce)
    exclusive: bool = True
    tag: str = _MANAGED_LOCK_TAG


@dataclass(frozen=True)
class ImageFacts:
    """One image opened read-only (no watch of its own)."""

    name: str
    snapshots: tuple[str, ...] = ()
    watchers: tuple[str, ...] = ()  # addresses watching the header: clients with it open
    lockers: tuple[Locker, ...] = ()
    children: tuple[tuple[str, str], ...] = ()  # (pool, image) clones of its snapshots
    error: str = ""  # it could not be opened or read: Ceph's error


@dataclass(frozen=True)
class TrashEntry:
    name: str
    source: str  # USER (rbd trash mv, Glance), REMOVING, MIGRATION, MIRRORING
    deferred_until: str | None = None
    deleted_at: str | None = None  # when it was moved to the trash (ISO 8601)


@dataclass(frozen=True)
class PoolFacts:
    name: str
    stored: int = 0  # ceph df STORED: logical bytes, what quotas count
    used: int = 0  # raw bytes used, all copies
    objects: int = 0
    max_avail: int = 0  # what can still be written before an OSD reaches full_ratio
    quota_bytes: int = 0
    quota_objects: int = 0
    pg_states: dict[str, int] | None = None  # None: unknown (no manager answered)
    read: bool = True  # False: its PGs were not all active, so RBD reads were skipped
    note: str = ""
    images: int | None = None
    provisioned_bytes: int | None = None
    snapshots: int | None = None
    trash: tuple[TrashEntry, ...] = ()
    scanned: tuple[ImageFacts, ...] = ()  # the images opened (all, or a sample)


@dataclass(frozen=True)
class StatusFacts:
    pools: dict[str, PoolFacts]
    blocklist: tuple[str, ...] = ()  # exact client addresses
    blocklist_ranges: tuple[str, ...] = ()  # CIDR ranges (osd blocklist range add)
    capacity: dict[str, int] = field(default_factory=dict)
    taken_at: float = 0.0  # Unix time of the reads
    seconds: float = 0.0
    mon_commands: int = 0
    images_opened: int = 0
    max_images: int = DEFAULT_MAX_IMAGES
    insecure_keys: tuple = ()  # day2/keystatus.py InsecureKey: services on an insecure key
    auth_checks: tuple[str, ...] = ()  # the cluster's AUTH_INSECURE_* health checks


# -- the status ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LockStatus:
    image: str
    entity: str
    address: str
    cookie: str
    exclusive: bool
    state: str  # live | held | stale
    why: str


@dataclass(frozen=True)
class PoolStatus:
    name: str
    services: tuple[str, ...]
    stored: int
    used: int
    objects: int
    max_avail: int
    quota_bytes: int
    quota_objects: int
    pg_states: dict[str, int] | None
    read: bool
    note: str
    images: int | None
    provisioned_bytes: int | None
    snapshots: int | None
    trash: tuple[TrashEntry, ...]
    scanned: int
    clones: int | None  # images here that are clones of a Glance image; None: not known
    clones_complete: bool
    images_with_clones: int | None  # the Glance pool: its images that pin clones
    watched: tuple[tuple[str, str], ...]  # (image, watcher address)
    locks: tuple[LockStatus, ...]
    backup_snapshots: tuple[tuple[str, int], ...]  # Cinder pools: (volume, count) > 0
    unreadable: tuple[tuple[str, str], ...] = ()  # (image, Ceph's error) of images opened

    @property
    def sampled(self) -> bool:
        return self.images is not None and self.scanned < self.images

    @property
    def fill_ratio(self) -> float:
        """How full the pool is against what the cluster can still give it (max_avail)."""
        total = self.stored + self.max_avail
        return self.stored / total if total else 0.0

    @property
    def quota_bytes_ratio(self) -> float | None:
        return self.stored / self.quota_bytes if self.quota_bytes else None

    @property
    def quota_objects_ratio(self) -> float | None:
        return self.objects / self.quota_objects if self.quota_objects else None

    @property
    def pgs(self) -> int:
        return sum((self.pg_states or {}).values())

    @property
    def pgs_inactive(self) -> int | None:
        if self.pg_states is None:
            return None
        return sum(n for s, n in self.pg_states.items() if "active" not in s.split("+"))

    @property
    def oldest_trash(self) -> TrashEntry | None:
        """The entry longest in the trash: what nothing purged (plan/trash.py)."""
        dated = [t for t in self.trash if t.deleted_at]
        return min(dated, key=lambda t: t.deleted_at or "") if dated else None

    @property
    def watched_images(self) -> int:
        return len({image for image, _ in self.watched})

    @property
    def stale_locks(self) -> tuple[LockStatus, ...]:
        return tuple(lock for lock in self.locks if lock.state == STALE)

    @property
    def backup_pile_ups(self) -> tuple[tuple[str, int], ...]:
        return tuple((v, n) for v, n in self.backup_snapshots if n >= BACKUP_PILE_UP)


@dataclass(frozen=True)
class Status:
    pools: tuple[PoolStatus, ...]
    services: dict[str, tuple[str, tuple[str, ...]]]  # kind -> (entity, its pools)
    images_pool: str | None
    health: Health | None
    capacity: dict[str, int]
    missing_pools: tuple[str, ...]  # in the spec, not in the cluster
    taken_at: float
    seconds: float
    mon_commands: int
    images_opened: int
    max_images: int
    blocklist_entries: int
    insecure_keys: tuple = ()  # see StatusFacts
    auth_checks: tuple[str, ...] = ()


def status_pools(state: ClusterState, spec: Spec | None
                 ) -> tuple[dict[str, tuple[str, ...]], str | None]:
    """The pools status shows (spec pools, RBD pools, pools a service writes) with their
    services, and the Glance pool. Without a spec, services are recognised as audit does."""
    roles, images = recognise(state, spec)
    by_pool: dict[str, list[str]] = {}
    for role in roles:
        for pool in role.pools:
            by_pool.setdefault(pool, [])
            if role.service not in by_pool[pool]:
                by_pool[pool].append(role.service)
    names = set(by_pool) | {n for n, p in state.pools.items() if "rbd" in p.applications}
    if spec is not None:
        names |= set(spec.pools)
    return {n: tuple(sorted(by_pool.get(n, ()))) for n in sorted(names)}, images


def image_budget(counts: dict[str, int], budget: int) -> dict[str, int]:
    """How many images to open in each pool: all of them when they fit in `budget`; else
    a fair share each (smaller pools whole, what they leave shared among the larger)."""
    out, left = {}, max(0, budget)
    ordered = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))
    for i, (pool, n) in enumerate(ordered):
        out[pool] = min(n, left // (len(ordered) - i))
        left -= out[pool]
    return {pool: out[pool] for pool in counts}


def _bare(address: str) -> str:
    """127.0.0.1:0/123 whatever the messenger prefix (v1:, v2:, any:)."""
    return re.sub(r"^(v1|v2|any):", "", address.strip())


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    host = _bare(address).rsplit("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def blocklisted(address: str, exact: tuple[str, ...], ranges: tuple[str, ...] = ()) -> bool:
    if _bare(address) in {_bare(a) for a in exact}:
        return True
    ip = _ip(address)
    for cidr in ranges:
        try:
            if ip is not None and ip in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:
            continue
    return False


def parse_blocklist(out: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(addresses, CIDR ranges) from `osd blocklist ls`, which prints two JSON arrays back
    to back since ranges exist (16.2.11); the mon adapter hands that over as text."""
    docs: list[Any] = []
    if isinstance(out, str):
        decoder, text, at = json.JSONDecoder(), out.strip(), 0
        while at < len(text):
            try:
                doc, at = decoder.raw_decode(text, at)
            except ValueError:
                break
            docs.append(doc)
            while at < len(text) and text[at].isspace():
                at += 1
    elif out is not None:
        docs = [out]
    exact = tuple(str(e["addr"]) for e in (docs[0] if docs else [])
                  if isinstance(e, dict) and e.get("addr"))
    ranges = []
    for e in docs[1] if len(docs) > 1 else []:
        addr = str(e.get("addr") or e.get("range") or "") if isinstance(e, dict) else ""
        ip, _, mask = addr.rpartition("/")
        if ip and mask.isdigit():  # "10.0.0.0:0/24": the port is 0, the nonce a prefix length
            ranges.append(f"{ip.rsplit(':', 1)[0].strip('[]')}/{mask}")
    return exact, tuple(ranges)


def lock_state(locker: Locker, watchers: tuple[str, ...], exact: tuple[str, ...],
               ranges: tuple[str, ...] = ()) -> tuple[str, str]:
    """(live | held | stale, why): see the module's docstring for "gone"."""
    if blocklisted(locker.address, exact, ranges):
        return STALE, "holder blocklisted"
    managed = locker.tag == _MANAGED_LOCK_TAG and locker.cookie.startswith("auto ")
    watching = _bare(locker.address) in {_bare(w) for w in watchers}
    if managed and not watching:
        return STALE, "holder no longer watches the image (librbd breaks this lock)"
    if managed:
        return LIVE, "holder watches the image"
    return HELD, "advisory lock: whether its holder lives cannot be told"


def _children_by_pool(facts: StatusFacts, images_pool: str | None
                      ) -> tuple[dict[str, int], int | None, bool]:
    glance = facts.pools.get(images_pool) if images_pool else None
    if glance is None or not glance.read:
        return {}, None, False
    counts: dict[str, int] = {}
    for image in glance.scanned:
        for pool, _ in image.children:
            counts[pool] = counts.get(pool, 0) + 1
    pinned = sum(1 for image in glance.scanned if image.children)
    complete = glance.images is not None and len(glance.scanned) >= glance.images
    return counts, pinned, complete


def _pool_status(p: PoolFacts, services: tuple[str, ...], facts: StatusFacts,
                 clones: dict[str, int] | None, clones_complete: bool, pinned: int | None,
                 images_pool: str | None) -> PoolStatus:
    locks, watched, backups = [], [], []
    for image in p.scanned:
        if image.error:
            continue
        watched += [(image.name, w) for w in image.watchers]
        for locker in image.lockers:
            state, why = lock_state(locker, image.watchers, facts.blocklist,
                                    facts.blocklist_ranges)
            locks.append(LockStatus(image.name, locker.entity, locker.address, locker.cookie,
                                    locker.exclusive, state, why))
        count = sum(1 for s in image.snapshots if is_backup_snapshot(s))
        if "cinder-volume" in services and count:
            backups.append((image.name, count))
    return PoolStatus(
        name=p.name, services=services, stored=p.stored, used=p.used, objects=p.objects,
        max_avail=p.max_avail, quota_bytes=p.quota_bytes, quota_objects=p.quota_objects,
        pg_states=p.pg_states, read=p.read, note=p.note, images=p.images,
        provisioned_bytes=p.provisioned_bytes, snapshots=p.snapshots, trash=p.trash,
        scanned=len(p.scanned),
        clones=None if clones is None or not p.read else clones.get(p.name, 0),
        clones_complete=clones_complete,
        images_with_clones=pinned if p.name == images_pool else None,
        watched=tuple(sorted(watched)),
        locks=tuple(sorted(locks, key=lambda lk: (lk.state != STALE, lk.image, lk.address))),
        backup_snapshots=tuple(sorted(backups)),
        unreadable=tuple(sorted((i.name, i.error) for i in p.scanned if i.error)))


def build_status(state: ClusterState, facts: StatusFacts, spec: Spec | None = None) -> Status:
    """The status of every OpenStack pool from what status_read gathered."""
    pools, images_pool = status_pools(state, spec)
    counts, pinned, complete = _children_by_pool(facts, images_pool)
    clones = counts if images_pool in facts.pools and facts.pools[images_pool].read else None
    roles, _ = recognise(state, spec)
    services: dict[str, tuple[str, tuple[str, ...]]] = {}
    for role in roles:
        entity, owned = services.get(role.service, (role.entity, ()))
        services[role.service] = (entity, tuple(dict.fromkeys(owned + role.pools)))
    return Status(
        pools=tuple(_pool_status(facts.pools[n], svc, facts, clones, complete, pinned,
                                 images_pool) for n, svc in pools.items() if n in facts.pools),
        services=dict(sorted(services.items())), images_pool=images_pool, health=state.health,
        capacity=dict(facts.capacity), taken_at=facts.taken_at,
        missing_pools=tuple(n for n in pools if n not in facts.pools),
        seconds=facts.seconds, mon_commands=facts.mon_commands,
        images_opened=facts.images_opened, max_images=facts.max_images,
        blocklist_entries=len(facts.blocklist) + len(facts.blocklist_ranges),
        insecure_keys=facts.insecure_keys, auth_checks=facts.auth_checks)


@dataclass
class FleetStatus:
    """Every cluster's status (status_read.read_statuses): name -> Status of those read
    (the others' errors are in `fleet`); `named`: shown per cluster (status_read.fleet_of)."""

    fleet: Fleet
    statuses: dict[str, Status]
    named: bool
    store_gaps: list = field(default_factory=list)  # stores.StoreGap: several Glance stores
    # (cluster, pool) -> mirrorstatus.MirroredImage list: the mirroring: pools, both sides
    mirrored: dict = field(default_factory=dict)
