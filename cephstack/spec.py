"""The spec: YAML -> validated Spec, every problem reported as file:line: field: what.

Pure: reads the file it is given and nothing else (no cluster, no printing).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cephstack.caps import DAEMON_TYPES, CapsSyntaxError, parse_cap
from cephstack.errors import SpecError

SERVICE_KINDS = ("glance", "cinder-volume", "cinder-backup", "nova")
# Ceph accepts more, but these names are safe in paths, INI files and libvirt usage names.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_SIZE = re.compile(r"^(\d+)\s*([KMGTP]i?B?|B)?$", re.IGNORECASE)
_SAFE_MODES = (0o600, 0o640, 0o400, 0o440)


@dataclass(frozen=True)
class ClusterSettings:
    conf: str = "/etc/ceph/ceph.conf"
    keyring: str | None = None
    client: str = "client.admin"
    connect_timeout: float = 10.0


@dataclass(frozen=True)
class Quota:
    max_bytes: int = 0  # 0: no quota, as Ceph means it
    max_objects: int = 0


@dataclass(frozen=True)
class PoolSpec:
    name: str
    pg_num: int = 32
    autoscale: bool = False
    target_size_ratio: float | None = None
    size: int | None = None  # None: the cluster's default
    min_size: int | None = None
    crush_rule: str | None = None
    quota: Quota = Quota()
    init: bool = True  # false: leave the rbd application and pool init alone (adopted pools)


@dataclass(frozen=True)
class ServiceSpec:
    kind: str  # one of SERVICE_KINDS
    user: str
    pools: tuple[str, ...]
    direct_snapshots: bool = False  # nova only
    chunk_size_mib: int | None = None  # glance and cinder-volume; None: the service default


@dataclass(frozen=True)
class ClientSpec:
    name: str
    caps: dict[str, str]


@dataclass(frozen=True)
class KeyringSettings:
    directory: str = "/var/openstack/ceph"
    owner: str | None = None  # None: leave as created (the running user)
    group: str | None = None
    mode: int = 0o600
    manage: bool = True  # false: cephstack writes no keyring files (an imported spec)

    def path_for(self, entity: str) -> str:
        return str(Path(self.directory) / f"ceph.{entity}.keyring")


@dataclass(frozen=True)
class RenderSettings:
    directory: str
    format: str = "plain"  # plain | kolla


@dataclass(frozen=True)
class Spec:
    path: str
    cluster: ClusterSettings = ClusterSettings()
    pools: dict[str, PoolSpec] = field(default_factory=dict)
    services: dict[str, ServiceSpec] = field(default_factory=dict)
    clients: dict[str, ClientSpec] = field(default_factory=dict)
    keyrings: KeyringSettings = KeyringSettings()
    render: RenderSettings | None = None  # where `cephstack render` writes; plan checks drift


def parse_size(text: str | int) -> int:
    """'10G', '512MiB', 1024 -> bytes (binary units, as Ceph's quotas)."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text).strip())
    if not m:
        raise ValueError(f"not a size: {text!r} (use bytes or a number with K, M, G, T, P)")
    unit = (m.group(2) or "B")[0].upper()
    return int(m.group(1)) * 1024 ** "BKMGTP".index(unit)


class _Reader:
    """Walks the YAML node tree, collecting problems with their file and line."""

    def __init__(self, path: str, loader: yaml.SafeLoader) -> None:
        self.path = path
        self.loader = loader
        self.problems: list[str] = []

    def problem(self, node: yaml.Node | None, where: str, what: str) -> None:
        line = f"{node.start_mark.line + 1}" if node is not None else "?"
        self.problems.append(f"{self.path}:{line}: {where}: {what}")

    def mapping(self, node: yaml.Node, where: str,
                allowed: tuple[str, ...] | None = None) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Keys -> (key node, value node); rejects non-mappings, duplicates, unknown keys."""
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, where, f"expected a mapping, got {_kind(node)}")
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node)
            if not isinstance(key, str):
                self.problem(key_node, where, f"keys must be strings, got {key!r}")
                continue
            path = f"{where}.{key}" if where else key
            if key in out:
                self.problem(key_node, path, "duplicate key (first at line "
                             f"{out[key][0].start_mark.line + 1})")
                continue
            if allowed is not None and key not in allowed:
                self.problem(key_node, path, f"unknown key; expected one of: {', '.join(allowed)}")
                continue
            out[key] = (key_node, value_node)
        return out

    def value(self, node: yaml.Node, where: str, types: tuple[type, ...], what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, where, f"expected {what}, got {_kind(node)}")
            return None
        value = self.loader.construct_object(node)
        # bool is an int in Python; a YAML `yes` must not pass as a number.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            self.problem(node, where, f"expected {what}, got {value!r}")
            return None
        return value

    def name(self, node: yaml.Node, where: str, what: str) -> str | None:
        value = self.value(node, where, (str,), what)
        if value is not None and not _NAME.match(value):
            self.problem(node, where, f"invalid {what} {value!r}: use letters, digits, '_', "
                         "'.', '-', starting with a letter or digit, at most 63 characters")
            return None
        return value


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"{node.value!r}"


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file. Raises SpecError listing every problem found."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError([f"{path}: cannot read: {e.strerror}"]) from None
    return parse_spec(text, str(path))


def parse_spec(text: str, path: str = "<spec>") -> Spec:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"{mark.line + 1}" if mark else "?"
        raise SpecError([f"{path}:{line}: not valid YAML: {getattr(e, 'problem', e)}"]) from None
    finally:
        loader.dispose()
    r = _Reader(path, loader)
    if root is None:
        raise SpecError([f"{path}:1: the spec is empty"])
    top = r.mapping(root, "", ("cluster", "pools", "services", "clients", "keyrings", "render"))
    base = Path(path).parent
    cluster = _cluster(r, top["cluster"][1], base) if "cluster" in top else ClusterSettings()
    pools = _pools(r, top["pools"][1]) if "pools" in top else {}
    services = _services(r, top["services"][1], pools) if "services" in top else {}
    clients = _clients(r, top["clients"][1], services) if "clients" in top else {}
    keyrings = _keyrings(r, top["keyrings"][1], base) if "keyrings" in top else KeyringSettings()
    render = _render(r, top["render"][1], base) if "render" in top else None
    if r.problems:
        raise SpecError(r.problems)
    return Spec(path, cluster, pools, services, clients, keyrings, render)


def _render(r: _Reader, node: yaml.Node, base: Path) -> RenderSettings | None:
    m = r.mapping(node, "render", ("directory", "format"))
    if "directory" not in m:
        r.problem(node, "render", "missing 'directory': where rendered files go")
        return None
    directory = r.value(m["directory"][1], "render.directory", (str,), "a path")
    fmt = "plain"
    if "format" in m:
        fmt = r.value(m["format"][1], "render.format", (str,), "plain or kolla")
        if fmt not in ("plain", "kolla"):
            r.problem(m["format"][1], "render.format", f"expected plain or kolla, got {fmt!r}")
            return None
    return RenderSettings(_path(base, directory), fmt) if directory else None


def _path(base: Path, value: str) -> str:
    # Relative paths are relative to the spec file, not to wherever cephstack runs.
    return str((base / value).resolve()) if not Path(value).is_absolute() else value


def _cluster(r: _Reader, node: yaml.Node, base: Path) -> ClusterSettings:
    m = r.mapping(node, "cluster", ("conf", "keyring", "client", "connect_timeout"))
    out: dict[str, Any] = {}
    for key in ("conf", "keyring"):
        if key in m and (v := r.value(m[key][1], f"cluster.{key}", (str,), "a path")):
            out[key] = _path(base, v)
    if "client" in m and (v := r.value(m["client"][1], "cluster.client", (str,), "a name")):
        if not re.fullmatch(r"client\.[A-Za-z0-9_.-]+", v):
            r.problem(m["client"][1], "cluster.client", f"expected client.<name>, got {v!r}")
        else:
            out["client"] = v
    if "connect_timeout" in m:
        t = r.value(m["connect_timeout"][1], "cluster.connect_timeout", (int, float), "seconds")
        if t is not None and not 0 < t <= 3600:
            r.problem(m["connect_timeout"][1], "cluster.connect_timeout",
                      f"must be between 0 and 3600 seconds, got {t}")
        elif t is not None:
            out["connect_timeout"] = float(t)
    return ClusterSettings(**out)


def _pools(r: _Reader, node: yaml.Node) -> dict[str, PoolSpec]:
    pools = {}
    for name, (key_node, value_node) in r.mapping(node, "pools").items():
        where = f"pools.{name}"
        if not _NAME.match(name):
            r.problem(key_node, where, f"invalid pool name {name!r}: use letters, digits, "
                      "'_', '.', '-', starting with a letter or digit")
            continue
        pools[name] = _pool(r, name, value_node, where)
    return pools


def _pool(r: _Reader, name: str, node: yaml.Node, where: str) -> PoolSpec:
    m = r.mapping(node, where, ("pg_num", "autoscale", "target_size_ratio", "size", "min_size",
                                "crush_rule", "quota", "init"))
    out: dict[str, Any] = {}

    def integer(key: str, low: int, high: int) -> None:
        if key in m:
            v = r.value(m[key][1], f"{where}.{key}", (int,), "an integer")
            if v is not None and not low <= v <= high:
                r.problem(m[key][1], f"{where}.{key}", f"must be {low}..{high}, got {v}")
            elif v is not None:
                out[key] = v

    integer("pg_num", 1, 65536)
    integer("size", 1, 10)
    integer("min_size", 1, 10)
    for flag in ("autoscale", "init"):
        if flag in m:
            v = r.value(m[flag][1], f"{where}.{flag}", (bool,), "true or false")
            if v is not None:
                out[flag] = v
    if "target_size_ratio" in m:
        node_ = m["target_size_ratio"][1]
        v = r.value(node_, f"{where}.target_size_ratio", (int, float), "a ratio")
        if v is not None and not (0 <= v <= 1 and math.isfinite(v)):
            r.problem(node_, f"{where}.target_size_ratio", f"must be 0..1, got {v}")
        elif v is not None and not out.get("autoscale"):
            r.problem(node_, f"{where}.target_size_ratio", "only applies with autoscale: true")
        elif v is not None:
            out["target_size_ratio"] = float(v)
    if "crush_rule" in m and (v := r.name(m["crush_rule"][1], f"{where}.crush_rule", "rule")):
        out["crush_rule"] = v
    if "min_size" in out and "size" in out and out["min_size"] > out["size"]:
        r.problem(m["min_size"][1], f"{where}.min_size",
                  f"min_size {out['min_size']} exceeds size {out['size']}")
    if "quota" in m:
        q = r.mapping(m["quota"][1], f"{where}.quota", ("max_bytes", "max_objects"))
        quota: dict[str, int] = {}
        for key, (_, value_node) in q.items():
            v = r.value(value_node, f"{where}.quota.{key}", (int, str), "a number")
            try:
                if v is not None:
                    quota[key] = parse_size(v) if key == "max_bytes" else int(v)
                    if quota[key] < 0:
                        raise ValueError(f"must not be negative, got {v}")
            except ValueError as e:
                r.problem(value_node, f"{where}.quota.{key}", str(e))
        out["quota"] = Quota(**quota)
    return PoolSpec(name=name, **out)


_SERVICE_KEYS = {
    "glance": ("user", "pool", "chunk_size_mib"),
    "cinder-volume": ("user", "pool", "pools", "chunk_size_mib"),
    "cinder-backup": ("user", "pool"),
    "nova": ("user", "pool", "direct_snapshots"),
}


def _services(r: _Reader, node: yaml.Node, pools: dict[str, PoolSpec]) -> dict[str, ServiceSpec]:
    services = {}
    for kind, (_, value_node) in r.mapping(node, "services", SERVICE_KINDS).items():
        where = f"services.{kind}"
        m = r.mapping(value_node, where, _SERVICE_KEYS[kind])
        if "user" not in m:
            r.problem(value_node, where, "missing 'user' (the cephx user name, without client.)")
        user = r.name(m["user"][1], f"{where}.user", "user name") if "user" in m else None
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
        if user:
            services[kind] = ServiceSpec(kind, user, tuple(p for p, _ in bound),
                                         **{k: v for k, v in extra.items() if v is not None})
    return services


def _clients(r: _Reader, node: yaml.Node,
             services: dict[str, ServiceSpec]) -> dict[str, ClientSpec]:
    service_users = {s.user: s.kind for s in services.values()}
    clients = {}
    for name, (key_node, value_node) in r.mapping(node, "clients").items():
        where = f"clients.{name}"
        bare = name.removeprefix("client.")
        if not _NAME.match(bare):
            r.problem(key_node, where, f"invalid user name {name!r}")
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


def _keyrings(r: _Reader, node: yaml.Node, base: Path) -> KeyringSettings:
    m = r.mapping(node, "keyrings", ("directory", "owner", "group", "mode", "manage"))
    out: dict[str, Any] = {}
    if "manage" in m:
        v = r.value(m["manage"][1], "keyrings.manage", (bool,), "true or false")
        if v is not None:
            out["manage"] = v
    if "directory" in m and (v := r.value(m["directory"][1], "keyrings.directory", (str,),
                                          "a path")):
        out["directory"] = _path(base, v)
    for key in ("owner", "group"):
        if key in m and (v := r.value(m[key][1], f"keyrings.{key}", (str,), "a name")):
            out[key] = v
    if "mode" in m:
        mode_node = m["mode"][1]
        # Read the text: YAML 1.1 turns an unquoted 0600 into the int 384.
        text = mode_node.value if isinstance(mode_node, yaml.ScalarNode) else None
        try:
            mode = int(str(text), 8)
        except ValueError:
            mode = None
        if mode not in _SAFE_MODES:
            r.problem(mode_node, "keyrings.mode", f"keyring files hold keys: mode must be one of "
                      f"{', '.join(f'{m:04o}' for m in _SAFE_MODES)}, got {text!r}")
        else:
            out["mode"] = mode
    return KeyringSettings(**out)
