"""The spec as data: frozen dataclasses of the desired layout (spec/load.py loads them)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from cephstack.spec.read import show

SERVICE_KINDS = ("glance", "cinder-volume", "cinder-backup", "nova")
_SIZE = re.compile(r"([0-9]{1,30})\s*([KMGTP]i?B?|B)?", re.IGNORECASE)
# Ceph keeps quotas in 64-bit fields; stay below the signed limit, as some tools read them so.
_QUOTA_LIMIT = 2**63
_SAFE_MODES = (0o600, 0o640, 0o400, 0o440)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The Unix user each service runs as on its host (Debian/Ubuntu and RDO packages, kolla
# images): it must be able to read the service's keyring.
SERVICE_UNIX_USERS = {"glance": "glance", "cinder-volume": "cinder", "cinder-backup": "cinder",
                      "nova": "nova"}


@dataclass(frozen=True)
class ClusterSettings:
    conf: str = "/etc/ceph/ceph.conf"
    keyring: str | None = None
    client: str = "client.admin"
    connect_timeout: float = 10.0
    availability_zone: str | None = None  # clusters: only; None: the cluster's name
    # msgr2 mode of the services' connections (spec/extras.py): None leaves Ceph's (crc)
    ms_mode: str | None = None
    require_secure: bool = False  # the cluster refuses connections not in secure mode


@dataclass(frozen=True)
class Quota:
    max_bytes: int = 0  # 0: no quota, as Ceph means it
    max_objects: int = 0


@dataclass(frozen=True)
class PoolSpec:
    name: str
    pg_num: int = 32
    autoscale: bool = False
    target_size_ratio: float | None = None
    size: int | None = None  # None: the cluster's default
    min_size: int | None = None
    crush_rule: str | None = None
    quota: Quota = Quota()
    init: bool = True  # false: leave the rbd application and pool init alone (adopted pools)
    cluster: str | None = None  # the clusters: entry holding it; None in a one-cluster spec
    # `rbd trash purge schedule` interval ("1d"); "off": none; None: the default
    # (plan/trash.py: Cinder's pools cephstack manages get one)
    trash_purge: str | None = None


# CRUSH's default bucket types (`osd crush dump` types): a rule's failure domain is one.
CRUSH_TYPES = ("osd", "host", "chassis", "rack", "row", "pdu", "pod", "room", "datacenter",
               "zone", "region", "root")


@dataclass(frozen=True)
class CrushRuleSpec:
    """A replicated CRUSH rule (`osd crush rule create-replicated`): copies go to distinct
    `failure_domain` buckets under `root`, on OSDs of `device_class` (any when None)."""

    name: str
    root: str = "default"
    device_class: str | None = None
    failure_domain: str = "host"

    @property
    def where(self) -> str:
        return f"root {self.root!r}" + (f", class {self.device_class}"
                                        if self.device_class else "")


@dataclass(frozen=True)
class FileAccess:
    """Owner, group and mode of a file on an OpenStack host."""

    owner: str = "root"
    group: str = "root"
    mode: int = 0o640


@dataclass(frozen=True)
class CinderBackendPin:
    """An existing cinder.conf backend adopted for a pool: its volumes and volume types
    keep working because the section and volume_backend_name stay."""

    section: str
    backend_name: str


@dataclass(frozen=True)
class ServiceSpec:
    kind: str  # one of SERVICE_KINDS
    user: str
    pools: tuple[str, ...]
    direct_snapshots: bool = False  # nova only
    chunk_size_mib: int | None = None  # glance and cinder-volume; None: the service default
    unix_user: str = ""  # who runs the service on its host; "" until the loader fills it
    keyring: FileAccess = FileAccess()  # the service's keyring on its host
    secret_uuid: str | None = None  # cinder-volume, nova: a libvirt secret computes have
    backends: dict[str, CinderBackendPin] = field(default_factory=dict)  # cinder: pool -> pin
    default_store: bool = False  # glance: make RBD the default store even if another one is
    # cinder-backup, nova: replace a non-Ceph backup_driver / images_type a host's file has
    # (merging refuses it otherwise: old backups or local guest disks would be lost).
    replace_existing: bool = False
    trash: CinderTrash | None = None  # cinder-volume: Cinder's own deferred deletion


@dataclass(frozen=True)
class CinderTrash:
    """Cinder's deferred deletion (cinder.conf backend options enable_deferred_deletion,
    deferred_deletion_delay, deferred_deletion_purge_interval): every deleted volume goes to
    the RBD trash and Cinder's periodic task purges what is due."""

    deferred_deletion: bool = True
    delay: int = 0  # seconds before a deleted volume may be purged
    purge_interval: int = 60  # seconds between Cinder's purges


@dataclass(frozen=True)
class ClientSpec:
    name: str
    caps: dict[str, str]


@lru_cache(maxsize=16)
def _normalised(directory: str) -> str:
    return str(Path(directory))


@dataclass(frozen=True)
class KeyringSettings:
    directory: str = "/var/openstack/ceph"
    owner: str | None = None  # None: leave as created (the running user)
    group: str | None = None
    mode: int = 0o600
    manage: bool = True  # false: cephstack writes no keyring files (an imported spec)
    cluster_name: str = "ceph"  # keyring files are <cluster>.<entity>.keyring

    def path_for(self, entity: str) -> str:
        # str(Path(directory) / name), without a Path per user (1,000 users, every plan)
        base = _normalised(self.directory)
        name = f"{self.cluster_name}.{entity}.keyring"
        return name if base == "." else os.path.join(base, name)


@dataclass(frozen=True)
class RenderSettings:
    directory: str
    format: str = "plain"  # plain | kolla
    ceph_dir_mode: int = 0o755  # /etc/ceph on the hosts: services must traverse it
    qemu_owner: str = "libvirt-qemu"  # QEMU's user and group on compute hosts (Debian)
    qemu_group: str = "kvm"


@dataclass(frozen=True)
class Spec:
    path: str
    cluster: ClusterSettings = ClusterSettings()
    pools: dict[str, PoolSpec] = field(default_factory=dict)
    services: dict[str, ServiceSpec] = field(default_factory=dict)
    clients: dict[str, ClientSpec] = field(default_factory=dict)
    keyrings: KeyringSettings = KeyringSettings()
    render: RenderSettings | None = None  # where `cephstack render` writes; plan checks drift
    crush_rules: dict[str, CrushRuleSpec] = field(default_factory=dict)  # created when missing
    # Several clusters (spec/fleet.py splits such a spec into one Spec per cluster); empty:
    # the one-cluster form, `cluster` above.
    clusters: dict[str, ClusterSettings] = field(default_factory=dict)
    mirroring: MirroringSpec | None = None  # RBD mirroring between two of the clusters
    cluster_name: str = "ceph"  # this spec's cluster: /etc/ceph/<cluster_name>.conf
    id: str | None = None  # `id:`: whose records of what cephstack created (records_owner)

    @property
    def records_owner(self) -> str:
        """Whose records of what cephstack created these are (cephstack/ceph/records.py),
        so two specs on one cluster never prune each other: the spec's `id:` (init writes
        one), else a name derived from its keyring directory (two specs on one cluster
        need directories of their own anyway)."""
        if self.id:
            return self.id
        where = _normalised(self.keyrings.directory)
        return "dir-" + hashlib.sha256(where.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class MirroringSpec:
    """Snapshot-based RBD mirroring of `pools` from `primary` to `secondary` (Cinder
    replication): the pools keep their names on the secondary."""

    primary: str
    secondary: str
    pools: tuple[str, ...]
    schedule: str = "5m"  # `rbd mirror snapshot schedule add` interval
    user: str = "rbd-mirror"  # the daemons' users: client.<user>.<cluster> on each side


def parse_size(text: str | int) -> int:
    """'10G', '512MiB', 1024 -> bytes (binary units, as Ceph's quotas)."""
    if isinstance(text, int):
        return text
    m = _SIZE.fullmatch(str(text).strip())
    if not m:
        raise ValueError(f"not a size: {show(text)} (use bytes or a number with K, M, G, T, P)")
    unit = (m.group(2) or "B")[0].upper()
    return int(m.group(1)) * 1024 ** "BKMGTP".index(unit)
