"""RBD mirroring between two clusters, planned like the rest: the facts observed on both
sides (cephstack.ceph.mirror reads them), typed actions, and the pure planner that turns
the one into the other. Apply carries the actions out (cephstack.ceph.mirror.carry_out).

Converged means: both site names set, pool mode `image` on both sides, a peer of the other
site both ways (rx-tx, so failback works) that still reaches that site, and the snapshot
schedule on the primary's pools.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cephstack.errors import SpecError
from cephstack.plan.actions import Action

MODE_IMAGE = "image"
_INTERVAL = re.compile(r"([1-9][0-9]*)([dhm])")
_MINUTES = {"d": 24 * 60, "h": 60, "m": 1}


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


# -- facts ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PeerFacts:
    """A pool's peers of the other site, on one side."""

    both_ways: bool  # an rx-tx peer of the other site
    one_way: bool  # ... or only a one-way one (replaced when bootstrapping)
    stale: str | None = None  # why the rx-tx peer no longer reaches its site


@dataclass(frozen=True)
class SideFacts:
    site: str  # the site name the spec gives this side
    site_name: str  # the site name the cluster has now (its fsid until one is set)
    modes: Mapping[str, str]  # pool -> its mirror mode (disabled, image, pool)
    peers: Mapping[str, PeerFacts]  # pool -> its peers of the other site


@dataclass(frozen=True)
class MirroringFacts:
    primary: SideFacts
    secondary: SideFacts
    schedules: Mapping[str, tuple[str, ...]]  # the primary's pool -> its schedule intervals


# -- actions ----------------------------------------------------------------------------

@dataclass(frozen=True)
class MirrorAction(Action):
    """A mirroring change: shown as `~ address: detail`."""

    kind = "mirroring"

    @property
    def detail(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class SetSiteName(MirrorAction):
    site: str
    current: str

    @property
    def address(self) -> str:
        return f"mirror site@{self.site}"

    @property
    def detail(self) -> str:
        return f"site name {self.current!r} -> {self.site!r}"


@dataclass(frozen=True)
class EnableImageMode(MirrorAction):
    pool: str
    site: str
    current: str

    @property
    def address(self) -> str:
        return f"mirror {self.pool}@{self.site}: mode image"

    @property
    def detail(self) -> str:
        return f"mirror mode {self.current} -> image"


@dataclass(frozen=True)
class BootstrapPeer(MirrorAction):
    """Peers both ways in one go (an rx-tx import on the other side also registers this
    side there): a missing or one-way peer, or one that no longer reaches its site."""

    pool: str
    site: str
    other: str
    replaces_one_way: bool = False
    stale: str | None = None

    @property
    def address(self) -> str:
        return f"mirror {self.pool}@{self.site}: peer {self.other}"

    @property
    def detail(self) -> str:
        if self.stale:
            return f"peer {self.other} bootstrapped again: {self.stale}"
        return f"peer {self.other} rx-tx" + (" (replaces a one-way peer)"
                                              if self.replaces_one_way else "")


@dataclass(frozen=True)
class AddSchedule(MirrorAction):
    pool: str
    site: str
    interval: str

    @property
    def address(self) -> str:
        return f"mirror {self.pool}@{self.site}: schedule {self.interval}"

    @property
    def detail(self) -> str:
        return f"mirror snapshots every {self.interval}"


# -- the planner ------------------------------------------------------------------------

def _pool_actions(side: SideFacts, other: SideFacts, pool: str) -> list[MirrorAction]:
    out: list[MirrorAction] = []
    if side.modes[pool] != MODE_IMAGE:
        out.append(EnableImageMode(pool, side.site, side.modes[pool]))
    peers = side.peers[pool]
    if not peers.both_ways:
        out.append(BootstrapPeer(pool, side.site, other.site, replaces_one_way=peers.one_way))
    elif peers.stale:
        out.append(BootstrapPeer(pool, side.site, other.site, stale=peers.stale))
    return out


def plan_mirroring(facts: MirroringFacts, pools: Sequence[str],
                   schedule: str | None) -> tuple[MirrorAction, ...]:
    """What converging mirroring takes, in the order apply does it: site names first (a
    peer records the other side's site name when it is bootstrapped), then each pool."""
    a, b = facts.primary, facts.secondary
    wanted = normal_interval(schedule) if schedule else None
    out: list[MirrorAction] = [SetSiteName(s.site, s.site_name) for s in (a, b)
                               if s.site_name != s.site]
    for pool in pools:
        out += _pool_actions(a, b, pool) + _pool_actions(b, a, pool)
        if wanted and wanted not in facts.schedules.get(pool, ()):
            out.append(AddSchedule(pool, a.site, wanted))
    return tuple(out)
