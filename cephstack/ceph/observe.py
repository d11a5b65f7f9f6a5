"""observe(): read the cluster once into ClusterState (facts only, no changes).

A fixed set of read-only mon commands, sent concurrently, whatever the number of pools
and users: pools with their settings, crush rules, auth entities, the cluster's status
(health, OSD and PG counts), the OSD tree and the config database; then one `config diff`
per monitor in quorum: the running settings (running.py: the limits and pool defaults
plans depend on, wherever they are set).
Only when some PGs are not active, one more (`pg dump pgs_brief`) says which pools they
belong to. Then one read of one object (rbd_info) per pool whose `rbd pool init` is asked
about, all at once. Keyring files named by the spec are read from disk.
"""

from __future__ import annotations

import errno as errnos
from collections.abc import Iterable
from dataclasses import replace

from cephstack.ceph import running
from cephstack.ceph.adapter import POOL_VALIDATED, RBD_INFO, CephConnection
from cephstack.errors import CephCommandError, CephstackError, PlanRefused
from cephstack.keyfiles import Secret, account_facts, read_keyring_files
from cephstack.plan.crush import rule_reach, tree_nodes
from cephstack.plan.keytypes import AuthFacts, UnknownRelease, auth_facts
from cephstack.plan.state import (
    POOL_INIT_MISSING,
    POOL_INIT_STARTED,
    POOL_INIT_UNKNOWN,
    ClientState,
    ClusterState,
    CrushRule,
    Health,
    PoolState,
)
from cephstack.plan.state import POOL_VALIDATED as VALIDATED


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
            pool_id=int(p.get("pool_id", -1)), create_time=str(p.get("create_time", "")),
        )
    return pools


def _rules(dump: list[dict], tree: dict) -> dict[str, CrushRule]:
    """Each rule's reach (crush.rule_reach) from its take steps (a `~class` shadow name
    gives the device class) and the type of its last choose step (the failure domain)."""
    nodes = tree_nodes(tree)
    out = {}
    for r in dump:
        steps = r.get("steps", [])
        takes = []
        for s in steps:
            if s.get("op") == "take":
                root, _, device_class = str(s.get("item_name", s.get("item"))).partition("~")
                takes.append((root, device_class or None))
        chooses = [s for s in steps if str(s.get("op", "")).startswith("choose")]
        domain = str(chooses[-1].get("type", "osd")) if chooses else "osd"
        out[r["rule_name"]] = rule_reach(r["rule_name"], int(r["rule_id"]), takes, domain,
                                         nodes, replicated=r.get("type", 1) == 1)
    return out


def _default_rule(dump: list[dict], wanted: int) -> str | None:
    """The rule `osd pool create` gives a replicated pool without one: the configured id
    (osd_pool_default_crush_rule), else the replicated rule with the lowest id (as the
    monitor picks it)."""
    replicated = sorted((int(r["rule_id"]), r["rule_name"]) for r in dump
                        if r.get("type", 1) == 1)
    if wanted >= 0:
        return next((name for rid, name in replicated if rid == wanted), None)
    return replicated[0][1] if replicated else None


def _health(status: dict) -> Health:
    osdmap = status.get("osdmap", {})
    osdmap = osdmap.get("osdmap", osdmap)  # nested in releases before Pacific
    pgmap = status.get("pgmap")
    states = {s["state_name"]: int(s["count"]) for s in (pgmap or {}).get("pgs_by_state", [])}
    return Health(
        status=status.get("health", {}).get("status", ""),
        osds=int(osdmap.get("num_osds", 0)), osds_up=int(osdmap.get("num_up_osds", 0)),
        osds_in=int(osdmap.get("num_in_osds", 0)),
        pgs=int((pgmap or {}).get("num_pgs", sum(states.values()))), pg_states=states,
        # Without an active manager the monitor's PG summary is stale.
        pgs_known=pgmap is not None and bool(status.get("mgrmap", {}).get("available", True)),
        checks=tuple(sorted(map(str, status.get("health", {}).get("checks", {})))))


def _pool_pg_states(conn: CephConnection, detail: list[dict]) -> dict[str, dict[str, int]] | None:
    """PG states per pool, from one `pg dump pgs_brief` (about 100 bytes per PG), the
    manager's current view; a PG it has not reported yet (a new pool's) is "unknown".
    None when the manager cannot answer."""
    try:
        brief = conn.mon("pg dump", dumpcontents=["pgs_brief"])
    except CephstackError:
        return None
    stats = brief.get("pg_stats", []) if isinstance(brief, dict) else brief or []
    names = {str(p["pool_id"]): p["pool_name"] for p in detail if "pool_id" in p}
    out: dict[str, dict[str, int]] = {p["pool_name"]: {} for p in detail}
    for pg in stats:
        pool = names.get(str(pg.get("pgid", "")).split(".")[0])
        if pool is not None:
            states = out[pool]
            states[pg["state"]] = states.get(pg["state"], 0) + 1
    for p in detail:
        missing = int(p.get("pg_num", 0)) - sum(out[p["pool_name"]].values())
        if missing > 0:
            out[p["pool_name"]]["unknown"] = out[p["pool_name"]].get("unknown", 0) + missing
    return out


def _pool_init(read: bytes | CephCommandError) -> str:
    """librbd's validation marker, from one read of rbd_info (a read that cannot be served
    fails with the connection's OSD op timeout instead of waiting)."""
    if isinstance(read, CephCommandError):
        return POOL_INIT_MISSING if read.errno == errnos.ENOENT else POOL_INIT_UNKNOWN
    return VALIDATED if read == POOL_VALIDATED else POOL_INIT_STARTED


def _pool_inits(conn: CephConnection, pools: list[PoolState], health: Health
                ) -> dict[str, PoolState]:
    """Read rbd_info of every pool at once; a pool whose PGs are not all active (or not
    known to be) is not read: it is reported unknown rather than waited for."""
    readable = [p for p in pools if health.inactive_pgs(p.name) == 0]
    found = conn.read_objects([(p.name, RBD_INFO, 64) for p in readable])
    out = {p.name: replace(p, pool_init=POOL_INIT_UNKNOWN) for p in pools}
    out.update({p.name: replace(p, pool_init=_pool_init(read))
                for p, read in zip(readable, found, strict=True)})
    return out


def observe(conn: CephConnection, keyring_paths: dict[str, str] | None = None,
            monmap: bool = False,
            keyring_owner: tuple[str | None, str | None] = (None, None),
            validate: Iterable[str] = ()) -> ClusterState:
    """Read the cluster's state. `keyring_paths`: entity -> keyring file to inspect;
    `monmap`: also read the monitor map (for rendering client configuration);
    `keyring_owner`: the (user, group) keyring files get, looked up on this host;
    `validate`: pools whose `rbd pool init` to check (read only if the rbd application is
    enabled: without it the pool is not initialised anyway)."""
    reads = [
        lambda: conn.mon("osd pool ls", detail="detail"),
        lambda: conn.mon("osd crush rule dump"),
        lambda: conn.mon("auth ls"),
        lambda: conn.mon("status"),
        lambda: conn.mon("config dump"),
        lambda: conn.mon("osd tree"),
    ]
    reads.append(lambda: conn.mon("mon dump"))  # also says the release and its key types
    detail, rules, auth, status, config, tree, *mons = conn.concurrently(reads)
    detail, rules, config = detail or [], rules or [], config or []
    in_quorum = running.monitors_of(status)
    settings = running.settings_of(running.read_diffs(conn, in_quorum), config)
    health = _health(status or {})
    # The monitor's PG summary lags the manager by seconds: a new pool's PGs may be missing
    # from it. Ask the manager per pool only then, or when some PGs are not active.
    summary_short = health.pgs != sum(int(p.get("pg_num", 0)) for p in detail)
    if health.pgs_known and (summary_short or not health.all_active):
        by_pool = _pool_pg_states(conn, detail)
        health = replace(health, pool_pg_states=by_pool, pgs_known=by_pool is not None)
    rule_names = {r["rule_id"]: r["rule_name"] for r in rules}
    pools = _pools(detail, rule_names)
    pools.update(_pool_inits(conn, [pools[n] for n in dict.fromkeys(validate)
                                    if n in pools and "rbd" in pools[n].applications], health))
    clients = {
        e["entity"]: ClientState(e["entity"], dict(e.get("caps", {})), Secret(e.get("key", "")))
        for e in (auth or {}).get("auth_dump", [])
        if e["entity"].startswith("client.")
    }
    files = read_keyring_files(keyring_paths or {})
    return ClusterState(
        fsid=conn.fsid(),
        pools=pools,
        clients=clients,
        keyring_files=files,
        osds_in=health.osds_in,
        max_pg_per_osd=running.as_int(settings, "mon_max_pg_per_osd"),
        default_pool_size=running.as_int(settings, "osd_pool_default_size"),
        monmap=mons[0] if monmap and mons else {},
        accounts=account_facts(*keyring_owner),
        max_pool_pg_num=running.as_int(settings, "mon_max_pool_pg_num"),
        rules=_rules(rules, tree or {}),
        default_crush_rule=_default_rule(
            rules, running.as_int(settings, "osd_pool_default_crush_rule")),
        health=health,
        crush_nodes=tree_nodes(tree or {}),
        settings=settings,
        auth=_auth(mons[0] if mons else None, status),
    )


def _auth(monmap: dict | None, status: dict | None) -> AuthFacts:
    """The release and its key types; a release cephstack does not know is refused."""
    if not monmap:
        return AuthFacts()
    try:
        return auth_facts(monmap, (status or {}).get("health", {}).get("checks", {}))
    except UnknownRelease as e:
        raise PlanRefused(f"{e}: refusing to read the cluster rather than guess",
                          hint="upgrade cephstack (docs/releases.md lists the releases it "
                          "knows)") from None


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
