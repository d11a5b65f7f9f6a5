"""Encrypted traffic on request: the monitors' msgr2 settings a secure spec requires (pure).

`cluster: {ms_mode: secure}` makes every rendered ceph.conf ask for secure mode
(render/cephconf.py); `require_secure: true` also makes the cluster refuse anything else:
the daemons' service and cluster modes set to `secure` in the monitors' configuration
database (`config set global`). A client that allows secure (Ceph's default client mode is
"crc secure") then negotiates secure; one that allows only crc is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from cephstack.plan.actions import Action, Change
from cephstack.spec.load import Spec

FACTS = "config"  # ClusterState.extras key: {name: value} of the `global` config database
# The server side of every connection: to the monitors, to the other daemons, and the
# daemons' own connections to each other and to the monitors.
REQUIRED = ("ms_mon_service_mode", "ms_service_mode", "ms_mon_cluster_mode",
            "ms_cluster_mode")
SECURE = "secure"


def wanted(spec: Spec) -> dict[str, str]:
    return dict.fromkeys(REQUIRED, SECURE) if spec.cluster.require_secure else {}


@dataclass(frozen=True)
class SetClusterConfig(Action):
    """`config set global NAME VALUE` on the monitors."""

    name: str
    before: str | None
    after: str
    kind = "set_cluster_config"

    @property
    def address(self) -> str:
        return f"config.global.{self.name}"

    def changes(self) -> tuple[Change, ...]:
        # Clients allowing only crc (and old ones) are refused from then on: asked for.
        return (Change(self.name, self.before, self.after, disruptive=True,
                       why="clients that allow only crc are refused from then on"),)


def plan_secure(spec: Spec, have: dict[str, str] | None) -> list[SetClusterConfig]:
    """`have`: the config database's global values by name; None: not read."""
    if have is None:
        return []
    return [SetClusterConfig(name, have.get(name), value)
            for name, value in wanted(spec).items() if have.get(name) != value]
