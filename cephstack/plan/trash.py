"""Trash that empties: which pools get the manager's `rbd trash purge schedule` (pure).

Cinder moves a volume it cannot remove (its snapshots still have clones: librbd says
ENOTEMPTY) to the RBD trash with `trash_move` and never looks at it again unless
enable_deferred_deletion is set; the space stays taken. Either mechanism empties it:

- the cluster's schedule (default): the manager's rbd_support module runs `rbd trash
  purge` on the pool every interval. It removes only entries whose deferment has passed,
  and librbd refuses to remove an image whose snapshots still have clones, so a volume
  whose clones live is kept and purged on the first run after its last clone is gone. It
  works without touching cinder.conf, while cinder-volume is down, and for every Cinder
  release; hence the default on the Cinder pools of the spec (init: true). `cephstack
  import` writes an existing pool's schedule as it is (`trash_purge: off` where there is
  none), so an imported cluster plans no change; audit warns when nothing purges it.
- Cinder's deferred deletion (services.cinder-volume.trash): every deleted volume goes to
  the trash, Cinder's periodic task purges what is due. The spec then asks no schedule.

`pools: X: {trash_purge: off}` removes the pool's schedules; `trash_purge: 6h` sets one.
"""

from __future__ import annotations

from dataclasses import dataclass

from cephstack.plan.actions import Action, Change
from cephstack.plan.mirroring import normal_interval
from cephstack.spec.extras import TRASH_OFF
from cephstack.spec.load import Spec

DEFAULT_INTERVAL = "1h"  # one omap listing of the pool's trash an hour: cheap, and prompt
FACTS = "trash_purge"  # ClusterState.extras key: pool -> its schedules' intervals


def cinder_purges(spec: Spec) -> bool:
    """Cinder's own deferred deletion empties its pools' trash."""
    s = spec.services.get("cinder-volume")
    return bool(s and s.trash and s.trash.deferred_deletion)


def wanted(spec: Spec) -> dict[str, str | None]:
    """Pool -> the schedule interval cephstack converges it to (None: no schedule); pools
    not listed are left alone."""
    cinder = spec.services.get("cinder-volume")
    out: dict[str, str | None] = {}
    for name, pool in spec.pools.items():
        if pool.trash_purge == TRASH_OFF:
            out[name] = None
        elif pool.trash_purge:
            out[name] = normal_interval(pool.trash_purge)  # as the manager lists it
        elif cinder and name in cinder.pools and pool.init and not cinder_purges(spec):
            out[name] = DEFAULT_INTERVAL
    return out


@dataclass(frozen=True)
class SetTrashPurge(Action):
    """The pool's `rbd trash purge schedule` (the manager's rbd_support module) from
    `before` (its intervals now) to `after` (None: none)."""

    pool: str
    before: tuple[str, ...]
    after: str | None
    kind = "set_trash_purge_schedule"

    @property
    def address(self) -> str:
        return f"trash_purge.{self.pool}"

    def changes(self) -> tuple[Change, ...]:
        return (Change("interval", ", ".join(self.before) or None, self.after),)


def plan_trash(spec: Spec, have: dict[str, tuple[str, ...]] | None) -> list[SetTrashPurge]:
    """The schedule changes; `have`: pool -> intervals set on the pool (a pool not yet
    created has none); None: not read (nothing planned)."""
    if have is None:
        return []
    out = []
    for pool, interval in wanted(spec).items():
        now = tuple(have.get(pool, ()))
        if now != ((interval,) if interval else ()):
            out.append(SetTrashPurge(pool, now, interval))
    return out
