"""The observed state of a cluster: facts only, as observe() reads them. Pure data, so the
planner, the audit and their tests use it without touching librados."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from cephstack.keyfiles import FileState, Secret
from cephstack.plan.keytypes import AuthFacts

# Ceph's defaults, used when the cluster's config database does not set them.
DEFAULT_MAX_PG_PER_OSD = 250
DEFAULT_POOL_SIZE = 3
DEFAULT_MAX_POOL_PG_NUM = 65536  # mon_max_pool_pg_num

# Where a setting's running value comes from (ClusterState.settings), as the monitor's
# `config diff` names its layers, highest first: what a change must go through.
SOURCE_OVERRIDE = "override"  # `ceph tell mon.* config set` (or injectargs): until restart
SOURCE_FILE = "file"  # the monitors' ceph.conf (also "cmdline", "env": how they were started)
SOURCE_DATABASE = "config database"  # `ceph config set` (the monitors' config database)
SOURCE_DEFAULT = "default"  # Ceph's compiled default

# PoolState.pool_init: librbd's pool validation (`rbd pool init`) as its rbd_info object says.
POOL_VALIDATED = "validated"  # "overwrite validated": the pool is ready for RBD
POOL_INIT_STARTED = "started"  # validation began and never finished (an interrupted apply)
POOL_INIT_MISSING = "missing"  # no rbd_info: the rbd application was enabled by hand
POOL_INIT_UNKNOWN = "unknown"  # not readable now (PGs not active, or the read failed)


@dataclass(frozen=True)
class PoolState:
    name: str
    pg_num: int
    size: int
    min_size: int
    crush_rule: str
    autoscale_mode: str
    target_size_ratio: float
    applications: tuple[str, ...]
    quota_max_bytes: int
    quota_max_objects: int
    pool_init: str | None = None  # one of POOL_* above; None: not read (not asked for)
    pool_id: int = -1  # -1: not known
    create_time: str = ""  # as the monitors give it; "" not known


@dataclass(frozen=True)
class RecordedKeyring:
    entity: str
    exists: bool  # something is at the path now
    real: str = ""  # the path with every link resolved ("" when it could not be)
    regular: bool = False  # a regular file, not a link


@dataclass(frozen=True)
class RecordedPool:
    """A pool as cephstack recorded it: by the id and creation time the monitors gave it
    (a namesake made by hand after a deletion has others)."""

    id: int
    created: str = ""  # `osd pool ls detail`'s create_time


@dataclass(frozen=True)
class Created:
    """What cephstack recorded having created (cephstack/ceph/records.py), no key in it."""

    pools: dict[str, int] = field(default_factory=dict)  # name -> the id it had when created
    users: frozenset[str] = frozenset()
    keyrings: dict[str, RecordedKeyring] = field(default_factory=dict)  # this host's files
    pool_times: dict[str, str] = field(default_factory=dict)  # name -> recorded create_time
    user_caps: dict[str, dict[str, str]] = field(default_factory=dict)  # as cephstack gave
    keyring_dir: str = ""  # the spec's keyring directory, every link resolved
    # Records that are not this spec's: by other specs (owner -> "pool x", "client.y") and
    # from before records were kept per spec ("" -> ...): never pruned, only shown.
    others: dict[str, tuple[str, ...]] = field(default_factory=dict)
    owner: str = ""  # whose records these are (Spec.records_owner)


@dataclass(frozen=True)
class PoolContents:
    images: int
    snapshots: int
    trash: int
    snapshots_partial: bool = False  # only the first images' snapshots were counted
    objects: int = 0  # RADOS objects beyond RBD's empty bookkeeping, in any namespace
    namespaces: tuple[str, ...] = ()  # the namespaces those objects are in ("" the default)
    objects_partial: bool = False  # more objects than were listed

    @property
    def empty(self) -> bool:
        return not (self.images or self.snapshots or self.trash or self.objects)


@dataclass(frozen=True)
class PruneFacts:
    """Read only for --prune, about the candidates for removal alone."""

    pool_contents: dict[str, PoolContents] = field(default_factory=dict)
    sessions: dict[str, int] = field(default_factory=dict)  # entity -> monitor sessions
    pool_delete_allowed: bool | None = None  # mon_allow_pool_delete; None: not read
    keyrings_held: dict[str, bool] = field(default_factory=dict)  # path -> holds its key


@dataclass(frozen=True)
class Setting:
    """A setting a plan decision depends on: its value and where it comes from (SOURCE_*);
    `monitors` names the monitors whose running value this is ("" not asked)."""

    value: str
    source: str
    monitors: str = ""


@dataclass(frozen=True)
class ClientState:
    entity: str
    caps: dict[str, str]
    key: Secret


@dataclass(frozen=True)
class CrushNode:
    """A node of `osd tree`: a bucket (negative id: root, host, rack, ...) or an OSD."""

    id: int
    name: str
    type: str  # "root", "host", ..., "osd"
    children: tuple[int, ...] = ()  # buckets: the ids of what they hold
    device_class: str | None = None  # OSDs: "hdd", "ssd", ...
    # OSDs, as they are now (volatile, so not in the fingerprint):
    up: bool = False
    placeable: bool = False  # in (reweight > 0) with a CRUSH weight: CRUSH puts data on it

    @property
    def is_osd(self) -> bool:
        return self.type == "osd" or self.id >= 0


@dataclass(frozen=True)
class CrushRule:
    """A CRUSH rule and what it can place on now: its take steps over `osd tree`."""

    name: str
    id: int
    replicated: bool  # False: an erasure-code rule
    root: str  # the bucket(s) it takes, e.g. "default"
    device_class: str | None  # "ssd" for a rule taking "default~ssd"
    failure_domain: str  # each copy goes to a distinct bucket of this type: "host", "osd"
    osds: int  # OSDs under the root (of the class)
    osds_usable: int  # of them up and in (with a CRUSH weight): where PGs can be active
    domains: int  # failure-domain buckets holding an OSD that is in: copies it can place

    @property
    def where(self) -> str:
        return f"root {self.root!r}" + (f", class {self.device_class}"
                                        if self.device_class else "")


@dataclass(frozen=True)
class Health:
    """The cluster's condition when observed. Not in the fingerprint: it moves on its own."""

    status: str = ""  # HEALTH_OK, HEALTH_WARN, HEALTH_ERR; "" when unknown
    osds: int = 0
    osds_up: int = 0
    osds_in: int = 0
    pgs: int = 0
    pg_states: dict[str, int] = field(default_factory=dict)  # "active+clean" -> count
    pgs_known: bool = True  # False: no manager reports PG states (they may be stale)
    # Per pool, read only when the summary shows PGs not active, or not every pool's PGs
    # yet (bounded: one `pg dump pgs_brief`); PGs not reported count as "unknown".
    pool_pg_states: dict[str, dict[str, int]] | None = None
    checks: tuple[str, ...] = ()  # the health checks raised (POOL_NO_REDUNDANCY, ...)

    def inactive_pgs(self, pool: str) -> int | None:
        """How many of `pool`'s PGs are not active (I/O to them blocks); None: unknown."""
        if not self.pgs_known:
            return None
        if self.pool_pg_states is not None:
            states = self.pool_pg_states.get(pool)
            return None if states is None else sum(
                n for s, n in states.items() if not _active(s))
        return None if any(not _active(s) for s in self.pg_states) else 0

    @property
    def all_active(self) -> bool:
        return self.pgs_known and all(_active(s) for s in self.pg_states)


def _active(state: str) -> bool:
    return "active" in state.split("+")


@dataclass(frozen=True)
class ClusterState:
    fsid: str
    pools: dict[str, PoolState] = field(default_factory=dict)
    clients: dict[str, ClientState] = field(default_factory=dict)
    keyring_files: dict[str, FileState] = field(default_factory=dict)
    osds_in: int = 0
    max_pg_per_osd: int = DEFAULT_MAX_PG_PER_OSD
    default_pool_size: int = DEFAULT_POOL_SIZE  # what a pool created without size gets
    monmap: dict = field(default_factory=dict)  # `mon dump`, when asked for (rendering)
    # This host's accounts the spec names for keyring files: "user NAME" -> exists here.
    accounts: dict[str, bool] = field(default_factory=dict)
    max_pool_pg_num: int = DEFAULT_MAX_POOL_PG_NUM
    # CRUSH rules by name; empty when not observed (the planner then skips rule checks).
    rules: dict[str, CrushRule] = field(default_factory=dict)
    default_crush_rule: str | None = None  # the rule a pool created without one gets
    health: Health | None = None  # None: not observed
    # `osd tree` by node id, for the reach of rules a spec wants created (crush.py).
    crush_nodes: dict[int, CrushNode] = field(default_factory=dict)
    created: Created = Created()  # what cephstack recorded having created
    prune: PruneFacts | None = None  # None: not observed for --prune
    # The settings above (and a few more) by name, with their source (ceph/running.py).
    settings: dict[str, Setting] = field(default_factory=dict)
    # The release and its cephx key types, as the monitor map says (keytypes.py).
    auth: AuthFacts = AuthFacts()
    # Trash purge schedules and msgr2 settings (ceph/extras.py, plan/extras.py); empty: not read
    extras: dict = field(default_factory=dict)

    def fingerprint(self) -> str:
        """A digest of every fact a plan depends on (keys included, hashed, never shown)."""
        facts = {
            "fsid": self.fsid,
            "pools": {n: vars(p) for n, p in self.pools.items()},
            "clients": {n: [c.caps, c.key.reveal()] for n, c in self.clients.items()},
            "files": {p: [f.exists, f.key.reveal() if f.key else None, f.mode, f.owner, f.group,
                          f.several_sections] for p, f in self.keyring_files.items()},
            "osds_in": self.osds_in,
            "max_pg_per_osd": self.max_pg_per_osd,
            "default_pool_size": self.default_pool_size,
            "max_pool_pg_num": self.max_pool_pg_num,
            # What rules and the tree are, not what is up or in now (that moves on its own).
            "rules": {n: [r.id, r.replicated, r.root, r.device_class, r.failure_domain]
                      for n, r in self.rules.items()},
            "crush": {i: [n.name, n.type, n.children, n.device_class]
                      for i, n in self.crush_nodes.items()},
            "created": [self.created.pools, sorted(self.created.users),
                        {p: vars(k) for p, k in self.created.keyrings.items()}],
            "prune": None if self.prune is None else [
                {p: vars(c) for p, c in self.prune.pool_contents.items()},
                self.prune.sessions, self.prune.pool_delete_allowed, self.prune.keyrings_held],
            "extras": {k: v for k, v in self.extras.items() if k != "not_read"},
        }
        return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def counted_osds(state: ClusterState) -> int:
    """The OSDs placement groups spread over, counted one way for the plan's PG budget and
    the audit: the OSDs in, at least 1. The monitor's own check counts at least 3, so it
    accepts layouts that leave each OSD of a 1- or 2-OSD cluster over mon_max_pg_per_osd
    (HEALTH_WARN TOO_MANY_PGS)."""
    return max(state.osds_in, 1)
