"""The failover drill of a volume replicated the way Cinder replicates it: journal-based.

Cinder's RBD driver (`_enable_replication`) turns on exclusive-lock and journaling on the
volume and calls `mirror_image_enable()` with no mode: journal mode. rbd-mirror on the
secondary then replays the volume's journal entry by entry; no mirror snapshot, no
snapshot schedule is involved (those serve snapshot-mode images: Nova's and Glance's, if
mirrored). So this drill (verify/drill.py's steps otherwise) waits for the secondary's
replay to reach the primary's journal position and measures that lag: the time from a
write on the primary until the secondary's replayer reports no entry behind and the data
reads back byte-equal there. Failover is Cinder's (`failover_host`): demote, then promote
(retried until the demotion has been replayed), or a forced promote with the primary cut
off; failback the same way the other direction.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import suppress

from cephstack.ceph import mirror
from cephstack.day2.mirrorstatus import entries_behind
from cephstack.errors import CephCommandError
from cephstack.verify.drill import (
    VOLUME_FEATURES,
    DrillFailed,
    DrillSite,
    DrillStep,
    MiB,
    Outage,
    _check,
    _digest,
    _Drill,
    _read_all,
)

JOURNAL_MODE = 0  # RBD_MIRROR_IMAGE_MODE_JOURNAL: mirror_image_enable()'s default


class _JournalDrill(_Drill):
    lags: list[float]

    def create(self) -> str:
        pattern = os.urandom(MiB)
        with self.cinder(self.a) as conn:  # cinder's create_volume: its default features
            conn.rbd("create", self.pool, self.volume, self.size, old_format=False,
                     features=conn.features(*VOLUME_FEATURES))
            with conn.image(self.pool, self.volume) as img:
                img.write(pattern, 0)
                self.expected = _read_all(img, self.size)
        return f"{self.pool}/{self.volume}: {self.size // MiB} MiB, {_digest(self.expected)}"

    def enable(self) -> str:
        """cinder.volume.drivers.rbd._enable_replication, call for call."""
        with self.cinder(self.a) as conn, conn.image(self.pool, self.volume) as img:
            features = img.features()
            for name in ("exclusive_lock", "journaling"):
                bit = conn.features(name)
                if not features & bit:
                    img.update_features(bit, True)
            img.mirror_image_enable()
            mode = img.mirror_image_get_mode()
        _check(mode == JOURNAL_MODE, f"{self.volume} is mirrored in mode {mode}, not journal")
        return "exclusive-lock and journaling on, mirror_image_enable(): journal mode"

    def caught_up(self, source: DrillSite, target: DrillSite) -> Callable[[], str]:
        """Wait until `target` replays `source`'s journal with nothing behind and reads
        byte-equal; the seconds it took are the replay lag."""
        def run() -> str:
            start = time.monotonic()
            seen = "no replay yet"
            while True:
                with suppress(CephCommandError):
                    status = mirror.image_status(target.admin, self.pool, self.volume)
                    behind = entries_behind(status["description"])
                    seen = f"{status['state']}, {status['description'][:120]!r}"
                    if behind == 0 and not status["primary"] and self._equal(target):
                        break
                if time.monotonic() - start > self.timeout:
                    raise mirror.ReplicationTimedOut(
                        f"{self.pool}/{self.volume}: {target.site} did not replay "
                        f"{source.site}'s journal within {self.timeout:g} s ({seen})",
                        hint="is rbd-mirror running on the receiving cluster, with its "
                             "caps (profile rbd-mirror) and the peer's?")
                time.sleep(0.2)
            lag = time.monotonic() - start
            self.lags.append(lag)
            return f"{target.site} replayed {source.site}'s journal, 0 entries behind, " \
                   f"byte-equal: replay lag {lag:.1f} s"
        return run

    def _equal(self, side: DrillSite) -> bool:
        with suppress(CephCommandError), self.cinder(side) as conn, \
                conn.image(self.pool, self.volume, read_only=True) as img:
            return _read_all(img, self.size) == self.expected
        return False

    def run(self, outage: Outage | None) -> None:
        a, b = self.a, self.b
        self.step(f"create and write the volume on {a.site}", self.create)
        self.step("enable replication as Cinder does", self.enable)
        self.step(f"replayed on {b.site}", self.caught_up(a, b))
        self.step(f"write on {a.site}", lambda: self.write_on(a))
        self.step(f"replay lag to {b.site}", self.caught_up(a, b))
        self.fail_over(outage, lambda: None)  # a journal: no demotion snapshot to wait for
        self.step(f"replayed on {a.site}", self.caught_up(b, a))
        self.step(f"fail back: demote on {b.site}", self.as_cinder(b, "demoted", mirror.demote))
        self.step(f"promote on {a.site}", self.as_cinder(a, "promoted", mirror.promote))
        self.step(f"{a.site} serves the volume read-write again", lambda: self.write_on(a))
        self.step(f"replayed on {b.site} again", self.caught_up(a, b))


def journal_drill(primary: DrillSite, secondary: DrillSite, pool: str, *,
                  timeout: float = 60.0, size: int = 4 * MiB, outage: Outage | None = None,
                  progress: Callable[[str], None] = lambda line: None
                  ) -> tuple[list[DrillStep], list[float]]:
    """Run the drill on `pool` (mirrored both ways, mode image); returns every step run
    (the last the cleanup) and the replay lags measured, in seconds. It stops at the first
    failed step, then cleans up: all steps ok means the drill passed."""
    drill = _JournalDrill(primary, secondary, pool, timeout, size, progress)
    drill.lags = []
    with suppress(DrillFailed):
        drill.run(outage)
    with suppress(DrillFailed):
        if drill.outage is not None:
            drill.step(f"{primary.site} back", drill.restore)
        drill.step("clean up", drill.cleanup)
    return drill.steps, drill.lags
