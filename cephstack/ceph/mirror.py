"""RBD mirroring between two clusters (snapshot-based, pool mode `image`), through librbd's
mirroring calls and the manager's rbd_support module (snapshot schedules).

`ensure_mirroring` converges: site names, pool mode `image` on both sides, peers
bootstrapped both ways (rx-tx, so failback works) and the primary's snapshot schedule.
`mirroring_changes` says what it would change, reading only. The bootstrap token holds a
key: it lives in a local variable between the two calls and is never shown.
"""

from __future__ import annotations

import errno as errnos
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cephstack.ceph.adapter import CephConnection
from cephstack.ceph.mirrorpeers import stale_reason
from cephstack.errors import (
    CephCommandError,
    MirrorError,
    ReplicationTimedOut,
    SpecError,
)
from cephstack.plan.mirroring import (
    AddSchedule,
    BootstrapPeer,
    EnableImageMode,
    MirrorAction,
    MirroringFacts,
    PeerFacts,
    SetSiteName,
    SideFacts,
    normal_interval,
    plan_mirroring,
)
from cephstack.spec.catalog import MIRROR_USER_CAPS

PEER_CLIENT = "client.rbd-mirror-peer"  # the user `peer bootstrap create` makes
MODE_NAMES = {0: "disabled", 1: "image", 2: "pool"}
# librbd's enum values (its ABI: rbd.pyx defines them from librbd.h)
_MODE_IMAGE = 1  # RBD_MIRROR_MODE_IMAGE
_RX_TX = 2  # RBD_MIRROR_PEER_DIRECTION_RX_TX
_IMAGE_ENABLED = 1  # RBD_MIRROR_IMAGE_ENABLED
_IMAGE_MODES = {"journal": 0, "snapshot": 1}  # RBD_MIRROR_IMAGE_MODE_*
_SNAP_NAMESPACE_MIRROR = 3  # RBD_SNAP_NAMESPACE_TYPE_MIRROR
_STATUS_NAMES = {0: "unknown", 1: "error", 2: "syncing", 3: "starting_replay", 4: "replaying",
                 5: "stopping_replay", 6: "stopped"}
_MGR_HINT = ("is a ceph-mgr active (`ceph mgr stat`)? Its rbd_support module answers "
             "snapshot schedule commands; if it is only slow, raise --op-timeout")


def mirror_user_caps() -> dict[str, str]:
    """The caps of an rbd-mirror daemon's own user (client.rbd-mirror.<site>)."""
    return dict(MIRROR_USER_CAPS)


def mgr_command(conn: CephConnection, prefix: str, **args: Any) -> Any:
    """One manager command (the rbd_support module's), JSON in and out, bounded."""
    return conn.mgr(prefix, hint=_MGR_HINT, **args)


def schedules(conn: CephConnection, pool: str) -> list[str]:
    """The snapshot schedule intervals set on the pool itself (not on its images)."""
    listed = mgr_command(conn, "rbd mirror snapshot schedule list", level_spec=f"{pool}/")
    return [item["interval"] for entry in (listed or {}).values()
            if entry.get("name") == f"{pool}/" for item in entry.get("schedule", [])]


# -- pools: observe, plan (cephstack.plan.mirroring), carry out -----------------------------

def peer_list(conn: CephConnection, pool: str) -> list[dict[str, Any]]:
    """The pool's mirror peers: uuid, site_name, direction, client_name, ..."""
    return list(conn.rbd("mirror_peer_list", pool))


@dataclass(frozen=True)
class _Side:
    conn: CephConnection
    site: str


def _peer_facts(side: _Side, other: _Side, pool: str, reads: dict[tuple, Any]) -> PeerFacts:
    peers = [p for p in peer_list(side.conn, pool) if p["site_name"] == other.site]
    both_ways = [p for p in peers if p["direction"] == _RX_TX]
    stale = stale_reason(side.conn, other.conn, other.site, pool, both_ways[0],
                         reads) if both_ways else None
    return PeerFacts(bool(both_ways), bool(peers) and not both_ways, stale)


def _side_facts(side: _Side, other: _Side, pools: Sequence[str],
                reads: dict[tuple, Any]) -> SideFacts:
    modes = {p: side.conn.rbd("mirror_mode_get", p) for p in pools}
    return SideFacts(side.site, side.conn.rbd_cluster("mirror_site_name_get"),
                     {p: MODE_NAMES.get(m, str(m)) for p, m in modes.items()},
                     {p: _peer_facts(side, other, p, reads) for p in pools})


def _check_pools(sides: Sequence[_Side], pools: Sequence[str]) -> None:
    """Every pool on both sides, before any change: Cinder needs the same pool names."""
    missing = []
    for side in sides:
        existing = set(side.conn.mon("osd pool ls") or [])
        missing += [f"'{p}' on {side.site}" for p in pools if p not in existing]
    if missing:
        raise MirrorError(f"cannot mirror: no pool {', '.join(missing)}",
                          hint="a mirrored pool must exist, with the same name, on both "
                               "clusters (Cinder's replication needs equal pool names)")


def observe_mirroring(primary: CephConnection, secondary: CephConnection,
                      pools: Sequence[str], *, primary_site: str,
                      secondary_site: str) -> MirroringFacts:
    """Read-only: both sides' site names, the pools' modes and peers (each rx-tx peer
    checked against the site it names), the primary's snapshot schedules."""
    a, b = _Side(primary, primary_site), _Side(secondary, secondary_site)
    if primary_site == secondary_site:
        raise SpecError([f"mirror: both sites are named {primary_site!r}; each cluster needs "
                         "a site name of its own"])
    _check_pools((a, b), pools)
    reads: dict[tuple, Any] = {}  # each site's monitors and peer user's key, read once
    return MirroringFacts(_side_facts(a, b, pools, reads), _side_facts(b, a, pools, reads),
                          {p: tuple(schedules(primary, p)) for p in pools})


def mirroring_changes(primary: CephConnection, secondary: CephConnection,
                      pools: Sequence[str], *, primary_site: str, secondary_site: str,
                      schedule: str | None) -> list[MirrorAction]:
    """Read-only: what ensure_mirroring would change (empty when converged)."""
    if schedule:
        normal_interval(schedule)  # a bad interval is refused before anything is read
    facts = observe_mirroring(primary, secondary, pools, primary_site=primary_site,
                              secondary_site=secondary_site)
    return list(plan_mirroring(facts, pools, schedule))


def _bootstrap(a: _Side, b: _Side, pool: str) -> None:
    """Peers both ways in one go: an rx-tx import on b also registers b on a."""
    for side, other in ((a, b), (b, a)):  # a one-way peer is replaced, not kept beside
        for peer in peer_list(side.conn, pool):
            if peer["site_name"] == other.site and peer["direction"] != _RX_TX:
                side.conn.rbd("mirror_peer_remove", pool, peer["uuid"])
    token = a.conn.rbd("mirror_peer_bootstrap_create", pool)
    try:
        b.conn.rbd("mirror_peer_bootstrap_import", pool, _RX_TX, token)
    except CephCommandError as e:  # its text could quote the token: keep only the errno
        raise CephCommandError(f"rbd mirror pool peer bootstrap import {pool}@{b.site}",
                               e.errno, "import of the bootstrap token failed",
                               hint=f"can {b.site} reach the monitors of {a.site}?") from None
    finally:
        del token


def carry_out(primary: CephConnection, secondary: CephConnection,
              actions: Sequence[MirrorAction], *, primary_site: str, secondary_site: str,
              progress: Callable[[str], None] = lambda line: None) -> None:
    """Apply plan_mirroring's actions: the site names first, then pool by pool its modes,
    one bootstrap of its peers both ways, its schedule. No bootstrap token ever shown."""
    a, b = _Side(primary, primary_site), _Side(secondary, secondary_site)
    by_site = {primary_site: a, secondary_site: b}
    for action in actions:
        if isinstance(action, SetSiteName):
            progress(f"{action.address}: {action.detail}")
            by_site[action.site].conn.rbd_cluster("mirror_site_name_set", action.site)
    per_pool = [x for x in actions if isinstance(x, (EnableImageMode, BootstrapPeer,
                                                        AddSchedule))]
    for pool in dict.fromkeys(x.pool for x in per_pool):
        here = [x for x in per_pool if x.pool == pool]
        for action in here:
            if isinstance(action, EnableImageMode):
                progress(action.address)
                by_site[action.site].conn.rbd("mirror_mode_set", pool, _MODE_IMAGE)
        if any(isinstance(x, BootstrapPeer) for x in here):
            progress(f"mirror {pool}: bootstrapping peers {primary_site} <-> {secondary_site}")
            _bootstrap(a, b, pool)
        for action in here:
            if isinstance(action, AddSchedule):
                progress(f"mirror {pool}@{action.site}: snapshot schedule {action.interval}")
                mgr_command(by_site[action.site].conn, "rbd mirror snapshot schedule add",
                            level_spec=f"{pool}/", interval=action.interval)


def ensure_mirroring(primary: CephConnection, secondary: CephConnection,
                     pools: Sequence[str], *, primary_site: str, secondary_site: str,
                     schedule: str | None,
                     progress: Callable[[str], None] = lambda line: None) -> list[MirrorAction]:
    """Idempotent: site names, pool mirror mode `image` on both sides, peers bootstrapped
    both ways (rx-tx, so failback works), the snapshot schedule on the primary's pools;
    returns what it changed. No bootstrap token ever printed."""
    actions = mirroring_changes(primary, secondary, pools, primary_site=primary_site,
                                secondary_site=secondary_site, schedule=schedule)
    carry_out(primary, secondary, actions, primary_site=primary_site,
              secondary_site=secondary_site, progress=progress)
    return actions


# -- images ---------------------------------------------------------------------------------

def enable_image(conn: CephConnection, pool: str, image: str, mode: str = "snapshot") -> None:
    """Mirror one image (idempotent); `mode` snapshot or journal."""
    if mode not in _IMAGE_MODES:
        raise MirrorError(f"image mirroring mode {mode!r}: snapshot or journal")
    with conn.image(pool, image) as img:
        if img.mirror_image_get_info()["state"] == _IMAGE_ENABLED:
            if img.mirror_image_get_mode() != _IMAGE_MODES[mode]:
                raise MirrorError(f"{pool}/{image} is already mirrored in the other mode",
                                  hint="disable its mirroring first to change the mode")
            return
        img.mirror_image_enable(_IMAGE_MODES[mode])


def image_status(conn: CephConnection, pool: str, image: str) -> dict[str, Any]:
    """The image's mirroring as this cluster sees it: primary or not, its own daemon's
    state and description, the peers' (site, state, description, last update)."""
    with conn.image(pool, image, read_only=True) as img:
        status = img.mirror_image_get_status()

    def named(s: dict[str, Any]) -> dict[str, Any]:
        updated = s.get("last_update")
        return {"state": _STATUS_NAMES.get(s.get("state"), str(s.get("state"))),
                "description": s.get("description", ""), "up": bool(s.get("up")),
                "last_update": updated.isoformat() if updated and updated.year > 1970 else None}

    return {"primary": bool(status["info"]["primary"]),
            "enabled": status["info"]["state"] == _IMAGE_ENABLED,
            "global_id": status["info"]["global_id"], **named(status),
            "peers": [{"site": p.get("site_name", ""), **named(p)}
                      for p in status.get("remote_statuses", [])]}


def demote(conn: CephConnection, pool: str, image: str) -> None:
    with conn.image(pool, image) as img:
        img.mirror_image_demote()


def promote(conn: CephConnection, pool: str, image: str, force: bool = False,
            wait: float = 30.0) -> None:
    """Make the image primary here. Right after a demotion has arrived, the local
    rbd-mirror may still hold the image for a moment (EROFS/EBUSY): retried for `wait`
    seconds at most."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with conn.image(pool, image) as img:
                img.mirror_image_promote(force)
            return
        except CephCommandError as e:
            if e.errno not in (errnos.EROFS, errnos.EBUSY) or time.monotonic() > deadline:
                raise
        time.sleep(0.25)


def resync(conn: CephConnection, pool: str, image: str) -> None:
    """Flag a non-primary image for a full copy from the primary (after a split brain)."""
    with conn.image(pool, image) as img:
        img.mirror_image_resync()


def create_snapshot(conn: CephConnection, pool: str, image: str) -> int:
    """Take a mirror snapshot of a primary image now; returns its id."""
    with conn.image(pool, image) as img:
        return img.mirror_image_create_snapshot()


def _mirror_snaps(img: Any) -> list[dict[str, Any]]:
    return [s for s in img.list_snaps()
            if s.get("namespace") == _SNAP_NAMESPACE_MIRROR]


def _latest_primary_snap(conn: CephConnection, pool: str, image: str) -> tuple[str, int]:
    """(the pool's mirror uuid, the id of the image's newest mirror snapshot)."""
    uuid = conn.rbd("mirror_uuid_get", pool)
    with conn.image(pool, image, read_only=True) as img:
        snaps = _mirror_snaps(img)
    if not snaps:
        raise MirrorError(f"{pool}/{image} has no mirror snapshot",
                          hint="enable its mirroring (snapshot mode) first")
    return uuid, snaps[-1]["id"]


def _holds(conn: CephConnection, pool: str, image: str, uuid: str, snap_id: int) -> str | None:
    """None once the image holds the complete copy of that primary snapshot, else what
    it is still waiting for."""
    try:
        with conn.image(pool, image, read_only=True) as img:
            snaps = _mirror_snaps(img)
    except CephCommandError as e:
        if e.errno == errnos.ENOENT:
            return "the image does not exist there yet"
        raise
    for snap in snaps:
        mirror = snap.get("mirror", {})
        if mirror.get("primary_mirror_uuid") == uuid and mirror.get("primary_snap_id") == snap_id:
            return None if mirror.get("complete") else "that snapshot is still being copied"
    return "that snapshot has not arrived yet"


def wait_replicated(primary: CephConnection, secondary: CephConnection, pool: str, image: str,
                    timeout: float) -> float:
    """Bounded wait until the secondary's image holds the primary's latest mirror
    snapshot; returns seconds waited; raises a clear timeout error otherwise."""
    start = time.monotonic()
    uuid, snap_id = _latest_primary_snap(primary, pool, image)
    delay = 0.1
    while (waiting := _holds(secondary, pool, image, uuid, snap_id)) is not None:
        if time.monotonic() - start > timeout:
            try:
                state = image_status(secondary, pool, image)
                seen = f"; its mirroring: {state['state']}, {state['description']!r}"
            except CephCommandError:
                seen = ""
            raise ReplicationTimedOut(
                f"{pool}/{image}: mirror snapshot {snap_id} did not reach the other cluster "
                f"within {timeout:g} s ({waiting}{seen})",
                hint="is an rbd-mirror daemon running on the receiving cluster, and can it "
                     "reach the sending cluster's monitors and OSDs?")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
        primary.checkpoint()
    return time.monotonic() - start
