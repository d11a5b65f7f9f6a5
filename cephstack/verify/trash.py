"""The trash drill: a volume deleted while a clone depends on it goes to the RBD trash and
is purged by the configured mechanism once the clone is gone (plan/trash.py).

As Cinder's RBD driver: the volume's snapshot has a clone (clone v2, as librbd makes it on
a Mimic+ cluster, so the deleted snapshot moves to the trash namespace); delete_volume's
`remove` fails (ImageHasSnapshots / ImageBusy) and the volume is moved with `trash_move`.
Then: a purge while the clone lives keeps it (safe for clones), the clone is removed (its
trashed parent snapshot goes with it), and the volume leaves the trash:
- "schedule": the manager's rbd_support purges it on the pool's schedule; the wait is
  bounded (a 1m schedule fires within about two minutes: the module re-reads schedules
  every 60 s);
- "cinder": Cinder's periodic task (deferred deletion) removes each due entry; the drill
  runs that task's calls once, as Cinder's user.
Every image step runs as Cinder's user; the names carry verify's run marker.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from contextlib import suppress

from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephCommandError
from cephstack.verify.drill import DrillFailed, DrillStep
from cephstack.verify.model import RunNames

MiB = 1024 * 1024
SCHEDULE, CINDER = "schedule", "cinder"
CLONE_V2 = (("rbd_default_clone_format", "2"),)  # ClusterAccess.options of Cinder's user


class _TrashDrill:
    def __init__(self, cinder: CephConnection, pool: str, mechanism: str, timeout: float,
                 poll: float) -> None:
        self.c, self.pool, self.mechanism = cinder, pool, mechanism
        self.timeout, self.poll = timeout, poll
        uuid = RunNames().uuid()
        self.volume, self.clone = f"volume-{uuid}", f"volume-{uuid}-clone"
        self.snap = f"snapshot-{uuid}"
        self.steps: list[DrillStep] = []

    def step(self, name: str, run: Callable[[], str]) -> None:
        started = time.monotonic()
        try:
            detail = run()
        except Exception as e:
            self.steps.append(DrillStep(name, False, time.monotonic() - started,
                                        getattr(e, "message", str(e))))
            raise
        self.steps.append(DrillStep(name, True, time.monotonic() - started, detail))

    def in_trash(self) -> dict | None:
        return next((t for t in self.c.rbd("trash_list", self.pool)
                     if t["name"] == self.volume), None)

    def make(self) -> str:
        layering = self.c.features("layering")
        self.c.rbd("create", self.pool, self.volume, 4 * MiB, features=layering)
        with self.c.image(self.pool, self.volume) as img:
            img.write(b"cephstack trash drill", 0)
            img.create_snap(self.snap)
        self.c.clone(self.pool, self.volume, self.snap, self.pool, self.clone, layering)
        with self.c.image(self.pool, self.volume) as img:
            img.remove_snap(self.snap)  # a clone v2 parent: into the trash namespace
        return f"{self.pool}/{self.clone} clones {self.volume}; its snapshot deleted"

    def delete(self) -> str:
        try:  # cinder.volume.drivers.rbd delete_volume: _try_remove_volume
            self.c.rbd("remove", self.pool, self.volume)
        except CephCommandError as e:
            if e.errno not in (39, 16):  # ENOTEMPTY (ImageHasSnapshots), EBUSY (ImageBusy)
                raise
            self.c.rbd("trash_move", self.pool, self.volume, 0)
        else:
            raise DrillFailed(f"{self.volume} was removed although its clone depends on it")
        entry = self.in_trash()
        if entry is None:
            raise DrillFailed(f"{self.volume} is not in the trash of {self.pool}")
        return f"in the trash as {entry['id']} (source {entry.get('source', '?')})"

    def purge_now(self) -> None:
        if self.mechanism == CINDER:  # Cinder's periodic _trash_purge, its calls
            now = datetime.datetime.now()
            for t in self.c.rbd("trash_list", self.pool):
                if t["name"] == self.volume and t["deferment_end_time"] <= now:
                    with suppress(CephCommandError):  # kept while a clone lives
                        self.c.rbd("trash_remove", self.pool, t["id"])
        else:  # what the manager runs on schedule: rbd_support's trash_purge
            with suppress(CephCommandError):  # ENOTEMPTY: an entry still has clones
                self.c.rbd("trash_purge", self.pool, datetime.datetime.now())

    def kept(self) -> str:
        self.purge_now()
        if self.in_trash() is None:
            raise DrillFailed(f"the purge removed {self.volume} while {self.clone} needs it")
        with self.c.image(self.pool, self.clone, read_only=True) as img:
            if img.read(0, 21) != b"cephstack trash drill":
                raise DrillFailed(f"{self.clone} no longer reads its parent's data")
        return "a purge keeps it while its clone lives; the clone reads its data"

    def unclone(self) -> str:
        self.c.rbd("remove", self.pool, self.clone)
        return f"{self.clone} removed"

    def purged(self) -> str:
        started = time.monotonic()
        if self.mechanism == CINDER:
            self.purge_now()
        while self.in_trash() is not None:
            if time.monotonic() - started > self.timeout:
                raise DrillFailed(f"{self.volume} still in the trash of {self.pool} after "
                                  f"{self.timeout:.0f} s: is the pool's purge schedule set "
                                  "(rbd trash purge schedule ls) and the manager active?")
            time.sleep(self.poll)
        how = "the manager's purge schedule" if self.mechanism == SCHEDULE \
            else "Cinder's deferred deletion purge"
        return f"purged by {how} after {time.monotonic() - started:.0f} s"

    def cleanup(self) -> None:
        with suppress(CephCommandError):
            self.c.rbd("remove", self.pool, self.clone)
        if (entry := self.in_trash()) is not None:
            with suppress(CephCommandError):
                self.c.rbd("trash_remove", self.pool, entry["id"], True)
        with suppress(CephCommandError):
            self.c.rbd("remove", self.pool, self.volume)


def trash_drill(cinder: CephConnection, pool: str, mechanism: str = SCHEDULE,
                timeout: float = 180.0, poll: float = 2.0) -> list[DrillStep]:
    """Run the drill on `pool` as Cinder's user (`cinder`: connected with CLONE_V2);
    return its steps. Raises DrillFailed (with the steps so far in .steps) on a failure."""
    drill = _TrashDrill(cinder, pool, mechanism, timeout, poll)
    try:
        for name, run in (("volume with a clone", drill.make),
                          ("delete as Cinder does", drill.delete),
                          ("purge keeps a parent", drill.kept),
                          ("remove the clone", drill.unclone),
                          ("purged", drill.purged)):
            drill.step(name, run)
    except DrillFailed as e:
        e.steps = drill.steps  # type: ignore[attr-defined]
        raise
    finally:
        drill.cleanup()
    return drill.steps
