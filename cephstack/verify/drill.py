"""The failover drill: proves that a mirrored Cinder volume survives the loss of its
cluster, the way Cinder's RBD driver fails over (`failover_host`: demote on the primary,
promote on the secondary, forced when the primary cannot be reached), and fails back.

Every step on a volume runs as the Cinder user of the cluster it touches (the user the
volume service has there); waits for replication use the admin connections and are
bounded by `timeout`. Mirror snapshots are taken explicitly, as the drill's clock: a
snapshot schedule fires at the earliest a minute later, and the manager notices a new
image only at its next refresh (every 60 s).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from cephstack.ceph import mirror
from cephstack.ceph.adapter import CephConnection, ClusterAccess
from cephstack.errors import CephCommandError, CephstackError
from cephstack.verify.model import RunNames

MiB = 1024 * 1024
# Cinder's default features for a new volume (rbd_default_features = 61 on Pacific).
VOLUME_FEATURES = ("layering", "exclusive_lock", "object_map", "fast_diff", "deep_flatten")


@dataclass(frozen=True)
class DrillSite:
    site: str  # the cluster's mirroring site name
    admin: CephConnection
    cinder: ClusterAccess  # Cinder's user on this cluster


@dataclass(frozen=True)
class Outage:
    """How to make the primary unreachable and bring it back (a sandbox stops and starts
    its monitor, manager and rbd-mirror): the drill then takes the forced path."""

    cut: Callable[[], None]
    restore: Callable[[], None]


@dataclass(frozen=True)
class DrillStep:
    name: str
    ok: bool
    seconds: float
    detail: str


class DrillFailed(CephstackError):
    """A drill step's check did not hold."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise DrillFailed(message)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _read_all(img: Any, size: int) -> bytes:
    return b"".join(img.read(off, min(4 * MiB, size - off)) for off in range(0, size, 4 * MiB))


class _Drill:
    def __init__(self, primary: DrillSite, secondary: DrillSite, pool: str, timeout: float,
                 size: int, progress: Callable[[str], None]) -> None:
        self.a, self.b, self.pool = primary, secondary, pool
        self.timeout, self.size, self.progress = timeout, size, progress
        self.volume = f"volume-{RunNames().uuid()}"  # carries verify's run marker
        self.expected = b""
        self.steps: list[DrillStep] = []
        self.outage: Outage | None = None  # set while the primary is cut off

    def step(self, name: str, run: Callable[[], str]) -> None:
        """Run one step, record it; a failed step stops the drill (DrillFailed)."""
        start = time.monotonic()
        try:
            detail, ok = run(), True
        except CephstackError as e:
            detail, ok = str(e).splitlines()[0], False
        seconds = time.monotonic() - start
        self.steps.append(DrillStep(name, ok, round(seconds, 3), detail))
        self.progress(f"{'ok' if ok else 'FAILED'}  {name} ({seconds:.1f} s): {detail}")
        if not ok:
            raise DrillFailed(f"{name}: {detail}")

    def cinder(self, side: DrillSite) -> CephConnection:
        return CephConnection(side.cinder)

    # -- the volume --------------------------------------------------------------------

    def create(self) -> str:
        pattern = os.urandom(MiB)
        with self.cinder(self.a) as conn:
            conn.rbd("create", self.pool, self.volume, self.size, old_format=False,
                     features=conn.features(*VOLUME_FEATURES))
            with conn.image(self.pool, self.volume) as img:
                img.write(pattern, 0)
                img.write(pattern, self.size - MiB)
                self.expected = _read_all(img, self.size)
        return f"{self.pool}/{self.volume}: {self.size // MiB} MiB, {_digest(self.expected)}"

    def write_on(self, side: DrillSite) -> str:
        """Read-write as that side's Cinder user: the whole volume reads as expected, a
        new write reads back (the exclusive lock is taken: the image is primary here)."""
        with self.cinder(side) as conn, conn.image(self.pool, self.volume) as img:
            _check(_read_all(img, self.size) == self.expected,
                   f"{self.volume} on {side.site} differs from what was written")
            data = os.urandom(MiB)
            img.write(data, MiB)
            _check(img.read(MiB, MiB) == data, f"a write on {side.site} did not read back")
            self.expected = _read_all(img, self.size)
        return f"read {_digest(self.expected)} as {side.cinder.client}, wrote 1 MiB"

    def equal_on(self, side: DrillSite) -> str:
        with self.cinder(side) as conn, conn.image(self.pool, self.volume,
                                                   read_only=True) as img:
            data = _read_all(img, self.size)
        _check(data == self.expected, f"{self.volume} on {side.site} is not byte-equal: "
               f"{_digest(data)}, expected {_digest(self.expected)}")
        return f"byte-equal on {side.site} ({_digest(data)}, read as {side.cinder.client})"

    def as_cinder(self, side: DrillSite, what: str, call: Callable[..., Any],
                  **kwargs: Any) -> Callable[[], str]:
        def run() -> str:
            with self.cinder(side) as conn:
                result = call(conn, self.pool, self.volume, **kwargs)
            return f"{what} on {side.site}" + (f": snapshot {result}" if result else "")
        return run

    def replicated(self, source: DrillSite, target: DrillSite) -> Callable[[], str]:
        def run() -> str:
            waited = mirror.wait_replicated(source.admin, target.admin, self.pool,
                                            self.volume, self.timeout)
            return f"{target.site} holds {source.site}'s latest mirror snapshot after " \
                   f"{waited:.1f} s"
        return run

    # -- the drill ---------------------------------------------------------------------

    def run(self, outage: Outage | None) -> None:
        a, b = self.a, self.b
        self.step(f"create and write the volume on {a.site}", self.create)
        self.step("enable snapshot mirroring",
                  self.as_cinder(a, "mirroring enabled (snapshot)", mirror.enable_image))
        self.step("take a mirror snapshot",
                  self.as_cinder(a, "mirror snapshot", mirror.create_snapshot))
        self.step(f"replicated to {b.site}", self.replicated(a, b))
        self.step(f"byte-equal on {b.site}", lambda: self.equal_on(b))
        self.fail_over(outage, lambda: self.step(f"demotion replicated to {b.site}",
                                                 self.replicated(a, b)))
        # Before failing back, the old primary must be replaying the new one: demoted
        # before it has, the new primary's demotion would never be picked up there.
        self.step(f"mirror snapshot on {b.site}",
                  self.as_cinder(b, "mirror snapshot", mirror.create_snapshot))
        self.step(f"{'resynced' if outage else 'replicated'} to {a.site}", self.replicated(b, a))
        self.step(f"fail back: demote on {b.site}", self.as_cinder(b, "demoted", mirror.demote))
        self.step(f"demotion replicated to {a.site}", self.replicated(b, a))
        self.step(f"promote on {a.site}", self.as_cinder(a, "promoted", mirror.promote))
        self.step(f"{a.site} serves the volume read-write again", lambda: self.write_on(a))
        # Mirroring runs a -> b again (and so b's copy goes with the volume on removal).
        self.step(f"mirror snapshot on {a.site}",
                  self.as_cinder(a, "mirror snapshot", mirror.create_snapshot))
        self.step(f"replicated to {b.site} again", self.replicated(a, b))
        self.step(f"byte-equal on {b.site} again", lambda: self.equal_on(b))

    def fail_over(self, outage: Outage | None, after_demote: Callable[[], None]) -> None:
        """Orderly (demote, `after_demote`, promote) or forced (the primary cut off: a
        forced promote), then a write on the new primary; after a forced one, the old
        primary back, demoted (split brain) and flagged for resync."""
        a, b = self.a, self.b
        if outage is None:
            self.step(f"demote on {a.site}", self.as_cinder(a, "demoted", mirror.demote))
            after_demote()
            self.step(f"promote on {b.site}", self.as_cinder(b, "promoted", mirror.promote))
        else:
            self.step(f"{a.site} unreachable", lambda: self.cut(outage))
            self.step(f"forced promote on {b.site}",
                      self.as_cinder(b, "promoted (forced)", mirror.promote, force=True))
        self.step(f"{b.site} serves the volume read-write", lambda: self.write_on(b))
        if outage is not None:
            self.step(f"{a.site} back", self.restore)
            self.step(f"demote on {a.site} (split brain)",
                      self.as_cinder(a, "demoted", mirror.demote))
            self.step(f"resync on {a.site}", self.as_cinder(a, "resync flagged", mirror.resync))

    def cut(self, outage: Outage) -> str:
        self.outage = outage
        outage.cut()
        return f"{self.a.site}'s daemons stopped"

    def restore(self) -> str:
        if self.outage is not None:
            self.outage.restore()
            self.outage = None
        return f"{self.a.site}'s daemons started"

    def cleanup(self) -> str:
        """Remove the volume where it is primary: the other cluster's rbd-mirror removes its
        non-primary copy (waited for). A copy left with no primary anywhere (a drill that
        stopped half-way) is promoted by force after half the wait, then removed."""
        start = time.monotonic()
        forced = []
        for side in (self.a, self.b):
            while self.volume in side.admin.rbd("list", self.pool):
                late = time.monotonic() - start > self.timeout / 2
                primary = True  # also when not mirrored (yet): removable
                with suppress(CephCommandError):
                    status = mirror.image_status(side.admin, self.pool, self.volume)
                    primary = status["primary"] or not status["enabled"]
                with suppress(CephCommandError):
                    if not primary and late:
                        mirror.promote(side.admin, self.pool, self.volume, force=True)
                        forced.append(side.site)
                        primary = True
                    if primary:
                        side.admin.rbd("remove", self.pool, self.volume)
                        continue
                if time.monotonic() - start > self.timeout:
                    raise DrillFailed(f"{self.pool}/{self.volume} still exists on {side.site} "
                                      f"after {self.timeout:g} s",
                                      hint=f"remove it by hand: rbd rm {self.pool}/"
                                           f"{self.volume} on both clusters")
                time.sleep(0.2)
        for side in (self.a, self.b):
            self._empty_trash(side, start)
        return f"{self.volume} removed on both sites" + (
            f" (forced promote on {', '.join(forced)} first)" if forced else "")

    def _empty_trash(self, side: DrillSite, start: float) -> None:
        """rbd-mirror removes a non-primary copy through the trash, where it may stay: the
        volume's trash entries are removed too (whoever removes an entry first, the other
        finds it gone), so the drill leaves nothing behind."""
        while ids := [t["id"] for t in side.admin.rbd("trash_list", self.pool)
                      if t["name"] == self.volume]:
            for image_id in ids:
                with suppress(CephCommandError):
                    side.admin.rbd("trash_remove", self.pool, image_id, force=True)
            if time.monotonic() - start > self.timeout:
                raise DrillFailed(f"{self.pool}/{self.volume} is still in the trash on "
                                  f"{side.site} after {self.timeout:g} s",
                                  hint=f"rbd trash rm on {side.site}: `cephstack verify "
                                       "--cleanup` removes it")
            time.sleep(0.2)


def failover_drill(primary: DrillSite, secondary: DrillSite, pool: str, *,
                   timeout: float = 60.0, size: int = 8 * MiB, outage: Outage | None = None,
                   progress: Callable[[str], None] = lambda line: None) -> list[DrillStep]:
    """Run the drill on `pool` (mirrored both ways: mirror.ensure_mirroring); returns
    every step run, in order, the last being the cleanup. It stops at the first failed
    step (then cleans up): all steps ok means the drill passed."""
    drill = _Drill(primary, secondary, pool, timeout, size, progress)
    with suppress(DrillFailed):
        drill.run(outage)
    with suppress(DrillFailed):
        if drill.outage is not None:  # stopped while the primary was cut off
            drill.step(f"{primary.site} back", drill.restore)
        drill.step("clean up", drill.cleanup)
    return drill.steps
