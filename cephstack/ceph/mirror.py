"""RBD mirroring between two clusters (snapshot-based, pool mode `image`), through librbd's
mirroring calls and the manager's rbd_support module (snapshot schedules).

`ensure_mirroring` converges: site names, pool mode `image` on both sides, peers
bootstrapped both ways (rx-tx, so failback works) and the primary's snapshot schedule.
`mirroring_changes` says what it would change, reading only. The bootstrap token holds a
key: it lives in a local variable between the two calls and is never shown.
"""

from __future__ import annotations

import errno as errnos
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cephstack.ceph.adapter import CephConnection, _rbd
from cephstack.ceph.failures import typed_error
from cephstack.ceph.mirrorpeers import stale_reason
from cephstack.errors import EXIT_TIMEOUT, CephCommandError, CephstackError, OpTimedOut, SpecError

PEER_CLIENT = "client.rbd-mirror-peer"  # the user `peer bootstrap create` makes
MODE_NAMES = {0: "disabled", 1: "image", 2: "pool"}
_STATUS_NAMES = {0: "unknown", 1: "error", 2: "syncing", 3: "starting_replay", 4: "replaying",
                 5: "stopping_replay", 6: "stopped"}
_INTERVAL = re.compile(r"([1-9][0-9]*)([dhm])")
_MINUTES = {"d": 24 * 60, "h": 60, "m": 1}
_MGR_HINT = ("is a ceph-mgr active (`ceph mgr stat`)? Its rbd_support module answers "
             "snapshot schedule commands; if it is only slow, raise --op-timeout")


class ReplicationTimedOut(CephstackError):
    """A mirrored image did not reach the secondary within the allowed time."""

    exit_code = EXIT_TIMEOUT
    kind = "timeout"


class MirrorError(CephstackError):
    """Mirroring cannot be set up as asked (a missing pool, an image not mirrored...)."""


@dataclass(frozen=True)
class MirrorChange:
    address: str  # "mirror volume@site-a: mode image"; the caller adds the cluster
    detail: str


def mirror_user_caps() -> dict[str, str]:
    """The caps of an rbd-mirror daemon's own user (client.rbd-mirror.<site>)."""
    return {"mon": "profile rbd-mirror", "osd": "profile rbd"}


def normal_interval(schedule: str) -> str:
    """A schedule interval as the manager writes it back: "60m" -> "1h", "1440m" -> "1d".
    Only minutes, hours and days (`1m` at the least) are valid, as in `rbd`."""
    found = _INTERVAL.fullmatch(schedule.strip())
    if not found:
        raise SpecError([f"mirror schedule {schedule!r}: an interval like 5m, 1h or 1d "
                         "(a positive whole number of minutes, hours or days)"])
    minutes = int(found.group(1)) * _MINUTES[found.group(2)]
    for unit in ("d", "h"):
        if minutes % _MINUTES[unit] == 0:
            return f"{minutes // _MINUTES[unit]}{unit}"
    return f"{minutes}m"


# -- calls the adapter has no helper for ----------------------------------------------------

def _rados(conn: CephConnection) -> Any:
    # Site names and manager commands take the cluster handle itself, which adapter.py
    # (over its size budget) does not expose; its error translation is reused.
    return conn._cluster


def _site_call(conn: CephConnection, method: str, *args: Any) -> Any:
    with conn._translated(f"rbd {method}", None):
        return getattr(_rbd().RBD(), method)(_rados(conn), *args)


def mgr_command(conn: CephConnection, prefix: str, **args: Any) -> Any:
    """One manager command, JSON in and out, answered within the operation timeout
    (librados applies rados_mon_op_timeout to it; waited for here as well, in case)."""
    cmd = json.dumps({"prefix": prefix, "format": "json", **args})
    answer: list[Any] = []
    done = threading.Event()

    def send() -> None:
        try:
            answer.append(_rados(conn).mgr_command(cmd, b""))
        except Exception as e:  # noqa: BLE001 - handed to the caller's thread
            answer.append(e)
        finally:
            done.set()

    conn.checkpoint()
    threading.Thread(target=send, name="cephstack-mgr", daemon=True).start()
    if not done.wait(conn.access.op_timeout + 1):
        answer.append((-errnos.ETIMEDOUT, b"", "no answer"))
    if isinstance(answer[0], Exception):
        ret, out, text = getattr(answer[0], "errno", None) or errnos.EIO, b"", str(answer[0])
    else:
        ret, out, text = answer[0]
    ret = abs(ret)  # the binding gives a timeout as +110, other errors as negative numbers
    if ret == errnos.ETIMEDOUT:
        raise OpTimedOut(prefix, errnos.ETIMEDOUT, text.strip() or "no answer", "the manager",
                         conn.access.op_timeout, _MGR_HINT)
    if ret != 0:
        raise typed_error(prefix, ret, text.strip(), conn.access.client, "the manager")
    return json.loads(out) if out.strip() else None


def schedules(conn: CephConnection, pool: str) -> list[str]:
    """The snapshot schedule intervals set on the pool itself (not on its images)."""
    listed = mgr_command(conn, "rbd mirror snapshot schedule list", level_spec=f"{pool}/")
    return [item["interval"] for entry in (listed or {}).values()
            if entry.get("name") == f"{pool}/" for item in entry.get("schedule", [])]


# -- pools: observe and converge ------------------------------------------------------------

def peer_list(conn: CephConnection, pool: str) -> list[dict[str, Any]]:
    """The pool's mirror peers: uuid, site_name, direction, client_name, ..."""
    with conn.ioctx(pool) as ioctx, conn._translated(f"rbd mirror pool info {pool}", pool):
        return list(_rbd().RBD().mirror_peer_list(ioctx.target))


@dataclass(frozen=True)
class _Side:
    conn: CephConnection
    site: str


def _pool_changes(side: _Side, other: _Side, pool: str,
                  reads: dict[tuple, Any]) -> list[MirrorChange]:
    rbd = _rbd()
    mode = side.conn.rbd("mirror_mode_get", pool)
    changes = []
    if mode != rbd.RBD_MIRROR_MODE_IMAGE:
        changes.append(MirrorChange(f"mirror {pool}@{side.site}: mode image",
                                    f"mirror mode {MODE_NAMES.get(mode, mode)} -> image"))
    peers = [p for p in peer_list(side.conn, pool) if p["site_name"] == other.site]
    both_ways = [p for p in peers if p["direction"] == rbd.RBD_MIRROR_PEER_DIRECTION_RX_TX]
    if not both_ways:
        changes.append(MirrorChange(f"mirror {pool}@{side.site}: peer {other.site}",
                                    f"peer {other.site} rx-tx"
                                    + (" (replaces a one-way peer)" if peers else "")))
    elif stale := stale_reason(side.conn, other.conn, other.site, pool, both_ways[0], reads):
        changes.append(MirrorChange(f"mirror {pool}@{side.site}: peer {other.site}",
                                    f"peer {other.site} bootstrapped again: {stale}"))
    return changes


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


def mirroring_changes(primary: CephConnection, secondary: CephConnection,
                      pools: Sequence[str], *, primary_site: str, secondary_site: str,
                      schedule: str | None) -> list[MirrorChange]:
    """Read-only: what ensure_mirroring would change (empty when converged)."""
    wanted = normal_interval(schedule) if schedule else None
    a, b = _Side(primary, primary_site), _Side(secondary, secondary_site)
    if primary_site == secondary_site:
        raise SpecError([f"mirror: both sites are named {primary_site!r}; each cluster needs "
                         "a site name of its own"])
    _check_pools((a, b), pools)
    changes = []
    reads: dict[tuple, Any] = {}  # each site's monitors and peer user's key, read once
    for side in (a, b):
        current = _site_call(side.conn, "mirror_site_name_get")
        if current != side.site:
            changes.append(MirrorChange(f"mirror site@{side.site}",
                                        f"site name {current!r} -> {side.site!r}"))
    for pool in pools:
        changes += _pool_changes(a, b, pool, reads) + _pool_changes(b, a, pool, reads)
        if wanted and wanted not in schedules(primary, pool):
            changes.append(MirrorChange(f"mirror {pool}@{primary_site}: schedule {wanted}",
                                        f"mirror snapshots every {wanted}"))
    return changes


def _bootstrap(a: _Side, b: _Side, pool: str) -> None:
    """Peers both ways in one go: an rx-tx import on b also registers b on a."""
    rbd = _rbd()
    for side, other in ((a, b), (b, a)):  # a one-way peer is replaced, not kept beside
        for peer in peer_list(side.conn, pool):
            if (peer["site_name"] == other.site
                    and peer["direction"] != rbd.RBD_MIRROR_PEER_DIRECTION_RX_TX):
                side.conn.rbd("mirror_peer_remove", pool, peer["uuid"])
    token = a.conn.rbd("mirror_peer_bootstrap_create", pool)
    try:
        b.conn.rbd("mirror_peer_bootstrap_import", pool,
                   rbd.RBD_MIRROR_PEER_DIRECTION_RX_TX, token)
    except CephCommandError as e:  # its text could quote the token: keep only the errno
        raise CephCommandError(f"rbd mirror pool peer bootstrap import {pool}@{b.site}",
                               e.errno, "import of the bootstrap token failed",
                               hint=f"can {b.site} reach the monitors of {a.site}?") from None
    finally:
        del token


def ensure_mirroring(primary: CephConnection, secondary: CephConnection,
                     pools: Sequence[str], *, primary_site: str, secondary_site: str,
                     schedule: str | None,
                     progress: Callable[[str], None] = lambda line: None) -> list[MirrorChange]:
    """Idempotent: site names, pool mirror mode `image` on both sides, peers bootstrapped
    both ways (rx-tx, so failback works), the snapshot schedule on the primary's pools;
    returns what it changed. No bootstrap token ever printed."""
    changes = mirroring_changes(primary, secondary, pools, primary_site=primary_site,
                                secondary_site=secondary_site, schedule=schedule)
    a, b = _Side(primary, primary_site), _Side(secondary, secondary_site)
    by_site = {primary_site: a, secondary_site: b}
    rbd = _rbd()
    # Site names first: a peer records the other side's site name when it is bootstrapped.
    for change in changes:
        if change.address.startswith("mirror site@"):
            side = by_site[change.address.removeprefix("mirror site@")]
            progress(f"{change.address}: {change.detail}")
            _site_call(side.conn, "mirror_site_name_set", side.site)
    for pool in pools:
        for side in (a, b):
            if side.conn.rbd("mirror_mode_get", pool) != rbd.RBD_MIRROR_MODE_IMAGE:
                progress(f"mirror {pool}@{side.site}: mode image")
                side.conn.rbd("mirror_mode_set", pool, rbd.RBD_MIRROR_MODE_IMAGE)
        if any(c.address.startswith(f"mirror {pool}@") and ": peer " in c.address
               for c in changes):
            progress(f"mirror {pool}: bootstrapping peers {primary_site} <-> {secondary_site}")
            _bootstrap(a, b, pool)
        if schedule and any(c.address == f"mirror {pool}@{primary_site}: schedule "
                            f"{normal_interval(schedule)}" for c in changes):
            progress(f"mirror {pool}@{primary_site}: snapshot schedule {schedule}")
            mgr_command(primary, "rbd mirror snapshot schedule add", level_spec=f"{pool}/",
                        interval=normal_interval(schedule))
    return changes


# -- images ---------------------------------------------------------------------------------

def enable_image(conn: CephConnection, pool: str, image: str, mode: str = "snapshot") -> None:
    """Mirror one image (idempotent); `mode` snapshot or journal."""
    rbd = _rbd()
    modes = {"snapshot": rbd.RBD_MIRROR_IMAGE_MODE_SNAPSHOT,
             "journal": rbd.RBD_MIRROR_IMAGE_MODE_JOURNAL}
    if mode not in modes:
        raise MirrorError(f"image mirroring mode {mode!r}: snapshot or journal")
    with conn.image(pool, image) as img:
        if img.mirror_image_get_info()["state"] == rbd.RBD_MIRROR_IMAGE_ENABLED:
            if img.mirror_image_get_mode() != modes[mode]:
                raise MirrorError(f"{pool}/{image} is already mirrored in the other mode",
                                  hint="disable its mirroring first to change the mode")
            return
        img.mirror_image_enable(modes[mode])


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
            "enabled": status["info"]["state"] == _rbd().RBD_MIRROR_IMAGE_ENABLED,
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
            if s.get("namespace") == _rbd().RBD_SNAP_NAMESPACE_TYPE_MIRROR]


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
