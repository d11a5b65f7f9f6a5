"""A fleet's plans shown together: each cluster's actions under its name ("edge1/pool.images"),
its refusals and notes prefixed by it."""

from __future__ import annotations

from dataclasses import dataclass, replace

from cephstack.plan.actions import Action, Change, Plan


@dataclass(frozen=True)
class InCluster(Action):
    """An action of one cluster's plan, its address prefixed with the cluster's name."""

    cluster: str
    action: Action

    @property
    def address(self) -> str:
        return f"{self.cluster}/{self.action.address}"

    @property
    def symbol(self) -> str:  # type: ignore[override]
        return self.action.symbol

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.action.kind

    @property
    def disruptive(self) -> bool:
        return self.action.disruptive

    def changes(self) -> tuple[Change, ...]:
        return self.action.changes()


def prefixed(cluster: str, plan: Plan) -> Plan:
    return replace(plan, actions=tuple(InCluster(cluster, a) for a in plan.actions),
                   unmanaged_pools=tuple(f"{cluster}/{p}" for p in plan.unmanaged_pools),
                   unmanaged_clients=tuple(f"{cluster}/{c}" for c in plan.unmanaged_clients),
                   refusals=tuple(f"{cluster}: {r}" for r in plan.refusals),
                   notes=tuple(f"{cluster}: {n}" for n in plan.notes))
