"""Reaching one cluster of the fleet: typed run settings (what the command line or a caller
asks for, never the argparse namespace), the connection, the run lock, observe and plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Settings:
    """How a command reaches its clusters; each None falls back to the spec's cluster:
    entry (conf, keyring, client, connect_timeout) or the adapter's default (op_timeout)."""

    conf: str | None = None
    keyring: str | None = None
    client: str | None = None
    connect_timeout: float | None = None
    op_timeout: float | None = None
    lock_wait: float = 0.0
    prune: bool = False

    @property
    def operation_timeout(self) -> float:
        from cephstack.ceph.adapter import DEFAULT_OP_TIMEOUT

        return self.op_timeout or DEFAULT_OP_TIMEOUT


def connect(settings: Settings, spec: Any) -> Any:
    """A connection (not yet opened) to the cluster of a one-cluster spec, or of one
    cluster's part of a fleet (cephstack.spec.fleet.split); None: the local defaults."""
    from cephstack.ceph.adapter import CephConnection, ClusterAccess
    from cephstack.spec.load import ClusterSettings

    c = spec.cluster if spec is not None else ClusterSettings()
    client = settings.client or c.client
    if not client.startswith("client."):
        client = f"client.{client}"
    return CephConnection(ClusterAccess(
        conf=settings.conf or c.conf, keyring=settings.keyring or c.keyring, client=client,
        connect_timeout=settings.connect_timeout or c.connect_timeout,
        op_timeout=settings.operation_timeout))


def hold_lock(settings: Settings, conn: Any, command: str, shared: bool = False,
              run: str | None = None, alongside: Any = None) -> Any:
    """The cluster's run lock (cephstack.ceph.runlock) for the rest of the command: apply
    holds it alone, verifies share it. On SIGINT/SIGTERM it is released on the way out."""
    from cephstack import interrupt
    from cephstack.ceph.runlock import EXCLUSIVE, SHARED, hold

    if command == "apply":
        interrupt.configure(hint="what was done stays; run apply again: it continues from "
                                 "where it stopped")
    return hold(conn, command, SHARED if shared else EXCLUSIVE, settings.lock_wait or 0.0,
                run=run, alongside=alongside)


def observe_for(conn: Any, spec: Any) -> Any:
    from dataclasses import replace

    from cephstack.ceph.extras import read_extras
    from cephstack.ceph.observe import observe
    from cephstack.spec.catalog import desired_clients

    paths = {e: spec.keyrings.path_for(e) for e in desired_clients(spec)}
    state = observe(conn, paths, monmap=spec.render is not None,
                    keyring_owner=(spec.keyrings.owner, spec.keyrings.group),
                    validate=[name for name, pool in spec.pools.items() if pool.init])
    extras = read_extras(conn, spec)  # trash purge schedules, msgr2 modes (plan/extras.py)
    return replace(state, extras=extras) if extras else state


def plan_for(spec: Any, state: Any) -> Any:
    from cephstack.plan.make import make_plan

    if spec.render is None:
        return make_plan(spec, state)
    from cephstack.session.drift import rendered_on_disk

    return make_plan(spec, state, rendered_on_disk(spec, state))
