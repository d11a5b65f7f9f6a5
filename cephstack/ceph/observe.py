"""observe(): read the cluster once into ClusterState (facts only, no changes).

A fixed set of read-only mon commands, sent concurrently, whatever the number of pools
and users: pools with their settings, crush rules, auth entities, OSD counts and the
PG-per-OSD limit. Keyring files named by the spec are read from disk.
"""

from __future__ import annotations

from cephstack.ceph.adapter import CephConnection
from cephstack.keyfiles import Secret, read_keyring_file
from cephstack.state import (
    DEFAULT_MAX_PG_PER_OSD,
    DEFAULT_POOL_SIZE,
    ClientState,
    ClusterState,
    PoolState,
)


def _pools(detail: list[dict], rules: dict[int, str]) -> dict[str, PoolState]:
    pools = {}
    for p in detail:
        pools[p["pool_name"]] = PoolState(
            name=p["pool_name"],
            # pg_num_target: where a pending pg_num change is heading.
            pg_num=p.get("pg_num_target", p["pg_num"]),
            size=p["size"],
            min_size=p["min_size"],
            crush_rule=rules.get(p["crush_rule"], str(p["crush_rule"])),
            autoscale_mode=p.get("pg_autoscale_mode", "off"),
            target_size_ratio=float(p.get("options", {}).get("target_size_ratio", 0.0)),
            applications=tuple(sorted(p.get("application_metadata", {}))),
            quota_max_bytes=p.get("quota_max_bytes", 0),
            quota_max_objects=p.get("quota_max_objects", 0),
        )
    return pools


def _mon_setting(config: list[dict], name: str, default: int) -> int:
    """A monitor setting from the config database (global or mon section), else the default.

    Settings only in the monitors' ceph.conf are invisible to clients; the planner then
    assumes Ceph's defaults."""
    for section in ("mon", "global"):
        for entry in config:
            if entry.get("name") == name and entry.get("section") == section:
                try:
                    return int(entry["value"])
                except (KeyError, ValueError):
                    break
    return default


def observe(conn: CephConnection, keyring_paths: dict[str, str] | None = None,
            monmap: bool = False) -> ClusterState:
    """Read the cluster's state. `keyring_paths`: entity -> keyring file to inspect;
    `monmap`: also read the monitor map (for rendering client configuration)."""
    reads = [
        lambda: conn.mon("osd pool ls", detail="detail"),
        lambda: conn.mon("osd crush rule dump"),
        lambda: conn.mon("auth ls"),
        lambda: conn.mon("osd stat"),
        lambda: conn.mon("config dump"),
    ]
    if monmap:
        reads.append(lambda: conn.mon("mon dump"))
    detail, rules, auth, osd_stat, config, *mons = conn.concurrently(reads)
    rule_names = {r["rule_id"]: r["rule_name"] for r in rules or []}
    clients = {
        e["entity"]: ClientState(e["entity"], dict(e.get("caps", {})), Secret(e.get("key", "")))
        for e in (auth or {}).get("auth_dump", [])
        if e["entity"].startswith("client.")
    }
    files = {entity: read_keyring_file(path, entity)
             for entity, path in (keyring_paths or {}).items()}
    return ClusterState(
        fsid=conn.fsid(),
        pools=_pools(detail or [], rule_names),
        clients=clients,
        keyring_files=files,
        osds_in=int((osd_stat or {}).get("num_in_osds", 0)),
        max_pg_per_osd=_mon_setting(config or [], "mon_max_pg_per_osd", DEFAULT_MAX_PG_PER_OSD),
        default_pool_size=_mon_setting(config or [], "osd_pool_default_size", DEFAULT_POOL_SIZE),
        monmap=mons[0] if mons else {},
    )


def volume_snapshots(conn: CephConnection, pools: list[str]) -> dict[str, list[str]]:
    """Snapshots of Cinder volumes ("pool/volume-<id>" -> names): one read per volume, so
    only the audit asks for it."""
    out: dict[str, list[str]] = {}
    for pool in pools:
        for name in conn.rbd("list", pool):
            if name.startswith("volume-"):
                with conn.image(pool, name, read_only=True) as image:
                    out[f"{pool}/{name}"] = [s["name"] for s in image.list_snaps()]
    return out
