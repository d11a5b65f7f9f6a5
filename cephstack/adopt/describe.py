"""Import a hand-made cluster into a spec: as it is (plan then says "No changes"), or with
--fix, with the least-privilege caps the audit asks for. Pure: observed facts -> YAML text.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from cephstack.adopt.audit import Role, rbd_users, recognise
from cephstack.plan.state import ClusterState
from cephstack.spec.caps import Caps
from cephstack.spec.catalog import desired_clients
from cephstack.spec.load import (
    SERVICE_KINDS,
    ClusterSettings,
    KeyringSettings,
    PoolSpec,
    ServiceSpec,
    Spec,
)


def _q(value: object) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML scalar


def _flow(value: object) -> str:
    """A value as YAML flow text: mappings as {k: v}, strings quoted."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_q(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    return _q(value)


def _services_for(roles: list[Role], images: str | None) -> dict[str, ServiceSpec]:
    """One service per kind: the first recognised user of each that writes a pool."""
    out: dict[str, ServiceSpec] = {}
    for role in roles:
        if role.service in out or not role.pools:
            continue
        pools = role.pools if role.service == "cinder-volume" else role.pools[:1]
        if role.service == "glance" and images and images in role.pools:
            pools = (images,)
        out[role.service] = ServiceSpec(role.service, role.entity.removeprefix("client."),
                                        pools)
    return out


def import_spec(state: ClusterState, cluster: ClusterSettings, keyring_dir: str | None,
                fix: bool, adopt: Callable[[dict[str, str]], dict[str, dict]] | None = None
                ) -> str:
    """A spec describing the cluster's RBD pools and OpenStack users. `adopt`: service kind
    -> user gives extra spec fields per service (pins read from existing service files)."""
    roles, images = recognise(state, None)
    # A spec never manages the user cephstack connects as (the loader refuses it).
    roles = [r for r in roles if r.entity != cluster.client]
    users = {e: c for e, c in rbd_users(state).items() if e != cluster.client}
    services = _services_for(roles, images)
    pool_names = sorted({p for s in services.values() for p in s.pools} | (
        {images} if images else set()) | {n for n, p in state.pools.items()
                                           if "rbd" in p.applications})
    pool_names = [p for p in pool_names if p in state.pools]
    # A service is kept as a service only if compiling it gives the caps it has now
    # (or with --fix, where the compiled caps are the point).
    probe = Spec("<import>", cluster, {p: PoolSpec(p) for p in pool_names}, services, {},
                 KeyringSettings())
    compiled = desired_clients(probe)
    if not fix:
        services = {k: s for k, s in services.items()
                    if Caps.parse(state.clients[f"client.{s.user}"].caps)
                    == compiled[f"client.{s.user}"].caps}
    service_users = {f"client.{s.user}" for s in services.values()}
    role_of = {r.entity: r.service for r in roles}

    pins = adopt({k: s.user for k, s in services.items()}) if adopt else {}
    lines = ["# Written by cephstack import" + (" --fix: least-privilege caps for the "
             "recognised services." if fix else ": the cluster as it is."),
             "# `cephstack plan -f THIS` shows what apply would change.", "",
             "cluster:", f"  conf: {_q(cluster.conf)}"]
    if cluster.keyring:
        lines.append(f"  keyring: {_q(cluster.keyring)}")
    lines += [f"  client: {_q(cluster.client)}", "", "pools:"]
    for name in pool_names:
        p = state.pools[name]
        fields = ["autoscale: true"] if p.autoscale_mode == "on" else [f"pg_num: {p.pg_num}"]
        if p.autoscale_mode == "on" and p.target_size_ratio:
            fields.append(f"target_size_ratio: {p.target_size_ratio}")
        if p.quota_max_bytes or p.quota_max_objects:
            fields.append(f"quota: {{max_bytes: {p.quota_max_bytes}, "
                          f"max_objects: {p.quota_max_objects}}}")
        note = ""
        if "rbd" not in p.applications and not fix:
            fields.append("init: false")
            note = "  # no rbd application yet: drop 'init: false' to run rbd pool init"
        lines.append(f"  {_q(name)}: {{{', '.join(fields)}}}{note}")
    lines += ["", "services:" + ("" if services else " {}")]
    for kind in SERVICE_KINDS:
        if kind in services:
            s = services[kind]
            pools = f"pools: [{', '.join(_q(p) for p in s.pools)}]" if kind == \
                "cinder-volume" else f"pool: {_q(s.pools[0])}"
            extra = "".join(f", {key}: {_flow(value)}" for key, value in
                            pins.get(kind, {}).items())
            lines.append(f"  {kind}: {{user: {_q(s.user)}, {pools}{extra}}}")
    clients = sorted(e for e in users if e not in service_users)
    lines += ["", "clients:" + ("" if clients else " {}")]
    for entity in clients:
        role = role_of.get(entity)
        if role:
            lines.append(f"  # looks like {role}; its caps differ from the least-privilege "
                         "ones: see cephstack audit, cephstack import --fix")
        caps = ", ".join(f"{d}: {_q(c)}" for d, c in sorted(state.clients[entity].caps.items()))
        lines.append(f"  {_q(entity.removeprefix('client.'))}: {{caps: {{{caps}}}}}")
    lines += ["", "keyrings:"]
    lines += [f"  directory: {_q(keyring_dir)}"] if keyring_dir else [
        "  manage: false  # pass --keyring-dir to manage the keyring files too"]
    return "\n".join(lines) + "\n"

