"""Import a hand-made cluster into a spec: as it is (plan then says "No changes"), or with
--fix, with the least-privilege caps the audit asks for. Pure: observed facts -> YAML text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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


# Pools named for Nova's guest disks: a cinder user writing one of them (and no nova user)
# is the upstream guide's layout, where Nova runs as client.cinder.
NOVA_POOL_NAMES = frozenset({"vm", "vms", "nova", "compute", "instances", "ephemeral"})


@dataclass(frozen=True)
class Layout:
    """What the services' own files say about who uses which pool: nova.conf's [libvirt]
    rbd_user and images_rbd_pool, cinder.conf's RBD backends (user -> their pools)."""

    nova_user: str | None = None
    nova_pool: str | None = None
    cinder_pools: dict[str, tuple[str, ...]] = field(default_factory=dict)


def read_layout(cinder_conf: str | None, nova_conf: str | None) -> Layout:
    """The Layout of these files (paths; None: not given, or not there)."""
    from cephstack.render.existing import RBD_DRIVER
    from cephstack.render.merge import IniLines

    def ini(path: str | None) -> IniLines | None:
        return IniLines.parse(Path(path).read_text()) if path and Path(path).is_file() else None

    nova, cinder = ini(nova_conf), ini(cinder_conf)
    pools: dict[str, list[str]] = {}
    for name, _ in cinder.sections() if cinder else ():
        have = cinder.section_options(name)  # type: ignore[union-attr]
        if have.get("volume_driver") == RBD_DRIVER:
            pools.setdefault(have.get("rbd_user", "cinder"), []).append(
                have.get("rbd_pool", "rbd"))
    images_type = nova.value("libvirt", "images_type") if nova else None
    return Layout(nova.value("libvirt", "rbd_user") if nova else None,
                  nova.value("libvirt", "images_rbd_pool") if images_type == "rbd" and nova
                  else None, {u: tuple(p) for u, p in pools.items()})


def _nova_sharing(roles: list[Role], layout: Layout) -> list[Role]:
    """Nova running as a cinder-volume user (the upstream guide: one client.cinder): its
    pool leaves cinder-volume's (no Cinder backend on it) and becomes nova's, same user.
    Nova's pool is nova.conf's images_rbd_pool, else the one pool of that user that no
    cinder.conf backend names, else one named like Nova's (NOVA_POOL_NAMES)."""
    if any(r.service == "nova" and r.pools for r in roles) and not layout.nova_user:
        return roles
    out = []
    for role in roles:
        user = role.entity.removeprefix("client.")
        if role.service != "cinder-volume" or (layout.nova_user and user != layout.nova_user):
            out.append(role)
            continue
        backends = layout.cinder_pools.get(user, ())
        if layout.nova_pool:
            nova = [p for p in role.pools if p == layout.nova_pool]
        elif backends:
            nova = [p for p in role.pools if p not in backends][:1]
        else:
            nova = [p for p in role.pools if p in NOVA_POOL_NAMES][:1]
        if nova and (len(role.pools) > 1 or layout.nova_user):
            rest = tuple(p for p in role.pools if p not in nova)
            out += [Role("cinder-volume", role.entity, rest), Role("nova", role.entity,
                                                                  tuple(nova))]
        else:
            out.append(role)
    if any(r.service == "nova" and r.entity == f"client.{layout.nova_user}" for r in out):
        out = [r for r in out if r.service != "nova"
               or r.entity == f"client.{layout.nova_user}"]  # nova.conf names nova's user
    return out


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


def _trash_purge(state: ClusterState, services: dict, pool: str, fix: bool) -> str | None:
    """A Cinder pool's trash purge schedule as it is (plan/trash.py would otherwise give
    it the default): its interval, or `off`; with --fix, none written where it has none
    (the default fixes what audit says). None: not read, or not Cinder's."""
    have = state.extras.get("trash_purge")
    cinder = services.get("cinder-volume")
    if have is None or cinder is None or pool not in cinder.pools:
        return None
    if have.get(pool):
        return have[pool][0]
    return None if fix else "off"


def import_spec(state: ClusterState, cluster: ClusterSettings, keyring_dir: str | None,
                fix: bool, adopt: Callable[[dict[str, str]], dict[str, dict]] | None = None,
                layout: Layout = Layout()) -> str:
    """A spec describing the cluster's RBD pools and OpenStack users. `adopt`: service kind
    -> user gives extra spec fields per service (pins read from existing service files);
    `layout`: who uses which pool, as those files say."""
    roles, images = recognise(state, None)
    roles = _nova_sharing(roles, layout)
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
        elif (purge := _trash_purge(state, services, name, fix)) is not None:
            fields.append(f"trash_purge: {purge}")
            note = note or ("  # nothing purges its trash: see cephstack audit"
                            if purge == "off" else "")
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

