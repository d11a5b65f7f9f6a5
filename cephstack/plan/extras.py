"""The plan's cluster-wide extras (issue 20): trash purge schedules (plan/trash.py) and
the msgr2 modes the cluster requires (plan/secure.py), from the facts ceph/extras.py read
into ClusterState.extras (a key absent: not read, nothing planned for it)."""

from __future__ import annotations

from cephstack.plan.actions import Action
from cephstack.plan.secure import plan_secure
from cephstack.plan.state import ClusterState
from cephstack.plan.trash import plan_trash
from cephstack.spec.load import Spec

NOT_READ = "not_read"  # ClusterState.extras key: what could not be read, and why


def extra_actions(spec: Spec, state: ClusterState) -> tuple[list[Action], list[str]]:
    facts = state.extras
    actions: list[Action] = [*plan_trash(spec, facts.get("trash_purge")),
                             *plan_secure(spec, facts.get("config"))]
    return actions, [f"not read: {why}" for why in facts.get(NOT_READ, ())]
