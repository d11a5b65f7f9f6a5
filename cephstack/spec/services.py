"""The services: and clients: sections of the spec, read into ServiceSpec and ClientSpec."""

from __future__ import annotations

from typing import Any

import yaml

from cephstack.spec.caps import DAEMON_TYPES, CapsSyntaxError, parse_cap
from cephstack.spec.extras import read_cinder_trash
from cephstack.spec.model import (
    _SAFE_MODES,
    _UUID,
    SERVICE_KINDS,
    SERVICE_UNIX_USERS,
    CinderBackendPin,
    ClientSpec,
    FileAccess,
    PoolSpec,
    ServiceSpec,
)
from cephstack.spec.read import Reader as _Reader
from cephstack.spec.read import dotted, read_mode, unix_name

_HOST_KEYS = ("unix_user", "keyring")
_SERVICE_KEYS = {
    "glance": ("user", "pool", "pools", "chunk_size_mib", "default_store", *_HOST_KEYS),
    "cinder-volume": ("user", "pool", "pools", "chunk_size_mib", "secret_uuid", "backends",
                      "trash", *_HOST_KEYS),
    "cinder-backup": ("user", "pool", "replace_existing", *_HOST_KEYS),
    "nova": ("user", "pool", "pools", "direct_snapshots", "secret_uuid", "replace_existing",
             *_HOST_KEYS),
}
# Services that use one pool per cluster: Glance's store, Nova's ephemeral disks of a zone.
_ONE_POOL_PER_CLUSTER = ("glance", "nova")


def _services(r: _Reader, node: yaml.Node, pools: dict[str, PoolSpec]) -> dict[str, ServiceSpec]:
    services = {}
    for kind, (_, value_node) in r.mapping(node, "services", SERVICE_KINDS).items():
        where = f"services.{kind}"
        m = r.mapping(value_node, where, _SERVICE_KEYS[kind])
        if "user" not in m:
            r.problem(value_node, where, "missing 'user' (the cephx user name, without client.)")
        user = r.user_id(m["user"][1], f"{where}.user") if "user" in m else None
        bound: list[tuple[str, yaml.Node]] = []
        if "pool" in m and "pools" in m:
            r.problem(m["pools"][0], where, "give 'pool' or 'pools', not both")
        elif "pool" in m:
            if (v := r.value(m["pool"][1], f"{where}.pool", (str,), "a pool name")) is not None:
                bound.append((v, m["pool"][1]))
        elif "pools" in m:
            seq = m["pools"][1]
            if not isinstance(seq, yaml.SequenceNode) or not seq.value:
                r.problem(seq, f"{where}.pools", "expected a non-empty list of pool names")
            else:
                for item in seq.value:
                    if (v := r.value(item, f"{where}.pools", (str,), "a pool name")) is not None:
                        bound.append((v, item))
        else:
            r.problem(value_node, where, "missing 'pool': the pool this service uses")
        for pool, pool_node in bound:
            if pool not in pools:
                r.problem(pool_node, f"{where}.pool", f"pool {pool!r} is not declared under "
                          f"pools (declared: {', '.join(sorted(pools)) or 'none'})")
        if len({p for p, _ in bound}) != len(bound):
            r.problem(value_node, f"{where}.pools", "a pool is listed twice")
        elif kind in _ONE_POOL_PER_CLUSTER:
            _one_pool_per_cluster(r, kind, where, bound, pools)
        extra: dict[str, Any] = {}
        if "direct_snapshots" in m:
            extra["direct_snapshots"] = r.value(m["direct_snapshots"][1],
                                                f"{where}.direct_snapshots", (bool,),
                                                "true or false")
        if "chunk_size_mib" in m:
            v = r.value(m["chunk_size_mib"][1], f"{where}.chunk_size_mib", (int,), "MiB")
            # RBD object sizes are powers of two from 4 KiB to 32 MiB.
            if v is not None and v not in (1, 2, 4, 8, 16, 32):
                r.problem(m["chunk_size_mib"][1], f"{where}.chunk_size_mib",
                          f"must be a power of two from 1 to 32 MiB, got {v}")
            elif v is not None:
                extra["chunk_size_mib"] = v
        extra.update(_service_host(r, m, kind, where, {p for p, _ in bound}))
        if "trash" in m:  # Cinder's deferred deletion (spec/extras.py)
            extra.update(read_cinder_trash(r, m["trash"][1], where))
        if user:
            services[kind] = ServiceSpec(kind, user, tuple(p for p, _ in bound),
                                         **{k: v for k, v in extra.items() if v is not None})
    return services


def _one_pool_per_cluster(r: _Reader, kind: str, where: str, bound: list[tuple[str, yaml.Node]],
                          pools: dict[str, PoolSpec]) -> None:
    """Glance has one RBD store per cluster and Nova one images_rbd_pool per zone (cluster):
    two of their pools on one cluster would leave one unused."""
    seen: dict[str | None, str] = {}
    for pool, pool_node in bound:
        if pool not in pools:
            continue
        cluster = pools[pool].cluster
        if cluster in seen:
            on = f"cluster {cluster!r}" if cluster else "the cluster"
            r.problem(pool_node, f"{where}.pools", f"{kind} uses one pool per cluster: "
                      f"{pool!r} and {seen[cluster]!r} are both on {on}")
        seen.setdefault(cluster, pool)


def _service_host(r: _Reader, m: dict, kind: str, where: str, pools: set[str]) -> dict:
    """Where a service runs: its Unix user, its keyring's access, pinned secrets/backends."""
    out: dict[str, Any] = {"unix_user": SERVICE_UNIX_USERS[kind]}
    if "unix_user" in m and (v := unix_name(r, m["unix_user"][1], f"{where}.unix_user")):
        out["unix_user"] = v
    access: dict[str, Any] = {"group": out["unix_user"]}  # e.g. root:glance 0640
    if "keyring" in m:
        k = r.mapping(m["keyring"][1], f"{where}.keyring", ("owner", "group", "mode"))
        for key in ("owner", "group"):
            if key in k and (v := unix_name(r, k[key][1], f"{where}.keyring.{key}")):
                access[key] = v
        if "mode" in k and (mode := read_mode(r, k["mode"][1], f"{where}.keyring.mode",
                                          _SAFE_MODES)) is not None:
            access["mode"] = mode
    out["keyring"] = FileAccess(**access)
    for flag in ("default_store", "replace_existing"):
        if flag in m and (v := r.value(m[flag][1], f"{where}.{flag}", (bool,),
                                       "true or false")) is not None:
            out[flag] = v
    if "secret_uuid" in m:
        v = r.value(m["secret_uuid"][1], f"{where}.secret_uuid", (str,), "a UUID")
        if v is not None and not _UUID.fullmatch(v):
            r.problem(m["secret_uuid"][1], f"{where}.secret_uuid",
                      f"expected a lower-case UUID, got {v!r}")
        elif v is not None:
            out["secret_uuid"] = v
    if "backends" in m:
        pins = {}
        for pool, (key_node, pin_node) in r.mapping(m["backends"][1],
                                                    f"{where}.backends").items():
            at = dotted(f"{where}.backends", pool)
            if pool not in pools:
                r.problem(key_node, at, f"pool {pool!r} is not one of this service's pools")
                continue
            p = r.mapping(pin_node, at, ("section", "volume_backend_name"))
            names = {key: r.name(p[key][1], f"{at}.{key}", key) for key in p}
            if "section" not in p:
                r.problem(pin_node, at, "missing 'section': the cinder.conf section to adopt")
            elif names.get("section"):
                pins[pool] = CinderBackendPin(names["section"],
                                              names.get("volume_backend_name")
                                              or names["section"])
        out["backends"] = pins
    return out


def _clients(r: _Reader, node: yaml.Node,
             services: dict[str, ServiceSpec]) -> dict[str, ClientSpec]:
    service_users = {s.user: s.kind for s in services.values()}
    clients = {}
    for name, (key_node, value_node) in r.mapping(node, "clients").items():
        where = dotted("clients", name)
        bare = r.user_id(key_node, where)
        if bare is None:
            continue
        if bare in service_users:
            r.problem(key_node, where, f"user {bare!r} is already the user of service "
                      f"{service_users[bare]}: its caps are compiled from the service")
            continue
        if bare in clients:
            r.problem(key_node, where, "duplicate user (given with and without 'client.')")
            continue
        m = r.mapping(value_node, where, ("caps",))
        if "caps" not in m:
            r.problem(value_node, where, "missing 'caps' (mon/osd/mgr cap strings)")
            continue
        caps = {}
        for daemon, (_, cap_node) in r.mapping(m["caps"][1], f"{where}.caps",
                                               DAEMON_TYPES).items():
            text = r.value(cap_node, f"{where}.caps.{daemon}", (str,), "a cap string")
            if text is None:
                continue
            try:
                parse_cap(text)
            except CapsSyntaxError as e:
                r.problem(cap_node, f"{where}.caps.{daemon}", str(e))
                continue
            caps[daemon] = text
        clients[bare] = ClientSpec(bare, caps)
    return clients
