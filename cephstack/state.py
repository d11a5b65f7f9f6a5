"""The observed state of a cluster: facts only, as observe() reads them. Pure data, so the
planner, the audit and their tests use it without touching librados."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from cephstack.keyfiles import FileState, Secret

# Ceph's defaults, used when the cluster's config database does not set them.
DEFAULT_MAX_PG_PER_OSD = 250
DEFAULT_POOL_SIZE = 3


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


@dataclass(frozen=True)
class ClientState:
    entity: str
    caps: dict[str, str]
    key: Secret


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

    def fingerprint(self) -> str:
        """A digest of every fact a plan depends on (keys included, hashed, never shown)."""
        facts = {
            "fsid": self.fsid,
            "pools": {n: vars(p) for n, p in self.pools.items()},
            "clients": {n: [c.caps, c.key.reveal()] for n, c in self.clients.items()},
            "files": {p: [f.exists, f.key.reveal() if f.key else None, f.mode, f.owner, f.group]
                      for p, f in self.keyring_files.items()},
            "osds_in": self.osds_in,
            "max_pg_per_osd": self.max_pg_per_osd,
            "default_pool_size": self.default_pool_size,
        }
        return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
