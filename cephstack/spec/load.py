"""The spec: YAML -> validated Spec, every problem reported as file:line: field: what.

Pure: reads the file it is given and nothing else (no cluster, no printing).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from cephstack.errors import SpecError
from cephstack.spec.extras import read_ms, read_pool_trash
from cephstack.spec.mirroring import pinned_secret_problems, read_mirroring
from cephstack.spec.model import (  # re-exported: the spec's types are imported from here
    _QUOTA_LIMIT,
    _SAFE_MODES,
    CRUSH_TYPES,
    SERVICE_KINDS,
    SERVICE_UNIX_USERS,
    CinderBackendPin,
    ClientSpec,
    ClusterSettings,
    CrushRuleSpec,
    FileAccess,
    KeyringSettings,
    MirroringSpec,
    PoolSpec,
    Quota,
    RenderSettings,
    ServiceSpec,
    Spec,
    parse_size,
)
from cephstack.spec.read import NAME as _NAME
from cephstack.spec.read import Reader as _Reader
from cephstack.spec.read import compose, decode, dotted, is_null, read_mode, show, unix_name
from cephstack.spec.services import _clients, _services

__all__ = ["SERVICE_KINDS", "SERVICE_UNIX_USERS", "CinderBackendPin", "ClientSpec",
           "ClusterSettings", "CrushRuleSpec", "FileAccess", "KeyringSettings", "MirroringSpec",
           "PoolSpec", "Quota",
           "RenderSettings", "ServiceSpec", "Spec", "load_spec", "parse_size", "parse_spec"]


def load_spec(path: str | Path, connect_as: str | None = None) -> Spec:
    """Read and validate a spec file. Raises SpecError listing every problem found.
    `connect_as`: the user cephstack will connect as when not the spec's cluster.client
    (the CLI's --id); the spec must not manage it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SpecError([f"{path}: cannot read: {e.strerror}"]) from None
    return parse_spec(decode(data, str(path)), str(path), connect_as)


def parse_spec(text: str, path: str = "<spec>", connect_as: str | None = None) -> Spec:
    root, loader = compose(text, path)
    if root is None or is_null(root):
        raise SpecError([f"{path}:{root.start_mark.line + 1 if root else 1}: spec: "
                         "the spec is empty"])
    r = _Reader(path, loader)
    top = r.mapping(root, "", ("cluster", "clusters", "crush_rules", "pools", "services",
                               "clients", "keyrings", "render", "mirroring", "id"))
    base = Path(path).parent
    cluster = _cluster(r, top["cluster"][1], base) if "cluster" in top else ClusterSettings()
    clusters = _clusters(r, top["clusters"][1], base) if "clusters" in top else {}
    if "cluster" in top and "clusters" in top:
        r.problem(top["clusters"][0], "clusters", "give 'cluster' (one cluster) or 'clusters' "
                  "(several), not both")
    # Never manage admin or the user cephstack connects as: apply would replace its caps.
    r.never_manage |= {cluster.client} | {c.client for c in clusters.values()} | (
        {f"client.{connect_as.removeprefix('client.')}"} if connect_as else set())
    crush_rules = _crush_rules(r, top["crush_rules"][1]) if "crush_rules" in top else {}
    pools = _pools(r, top["pools"][1], clusters) if "pools" in top else {}
    services = _services(r, top["services"][1], pools) if "services" in top else {}
    clients = _clients(r, top["clients"][1], services) if "clients" in top else {}
    if clusters and "services" in top:
        pinned_secret_problems(r, top["services"][1], services, clusters)
    keyrings = _keyrings(r, top["keyrings"][1], base) if "keyrings" in top else KeyringSettings()
    render = _render(r, top["render"][1], base) if "render" in top else None
    mirroring = read_mirroring(r, top["mirroring"][1], clusters, pools, services) \
        if "mirroring" in top else None
    spec_id = _spec_id(r, top["id"][1]) if "id" in top else None
    if r.problems:
        raise SpecError(r.problems)
    return Spec(path, cluster, pools, services, clients, keyrings, render, crush_rules,
                clusters, mirroring, id=spec_id)


def _spec_id(r: _Reader, node: yaml.Node) -> str | None:
    """`id:` names this spec's records in the cluster (several specs may share one)."""
    value = r.value(node, "id", (str,), "a name like cloud-a")
    if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", value):
        r.problem(node, "id", f"expected letters, digits, '.', '_' or '-' (at most 63, "
                  f"the first a letter or digit), got {show(value)}")
        return None
    return value


def _render(r: _Reader, node: yaml.Node, base: Path) -> RenderSettings | None:
    m = r.mapping(node, "render", ("directory", "format", "ceph_dir_mode", "qemu_owner",
                                   "qemu_group"))
    if "directory" not in m:
        r.problem(node, "render", "missing 'directory': where rendered files go")
        return None
    directory = r.fs_path(m["directory"][1], "render.directory", base)
    fmt = "plain"
    if "format" in m:
        fmt = r.value(m["format"][1], "render.format", (str,), "plain or kolla")
        if fmt not in ("plain", "kolla"):
            if fmt is not None:
                r.problem(m["format"][1], "render.format", f"expected plain or kolla, got "
                          f"{show(fmt)}")
            return None
    extra: dict[str, Any] = {}
    if "ceph_dir_mode" in m and (mode := read_mode(r, m["ceph_dir_mode"][1], "render.ceph_dir_mode",
                                               (0o755, 0o750, 0o711, 0o710))) is not None:
        extra["ceph_dir_mode"] = mode
    for key in ("qemu_owner", "qemu_group"):
        if key in m and (v := unix_name(r, m[key][1], f"render.{key}")):
            extra[key] = v
    return RenderSettings(directory, fmt, **extra) if directory else None


def _cluster(r: _Reader, node: yaml.Node, base: Path, where: str = "cluster",
             name: str | None = None) -> ClusterSettings:
    """`cluster:`, or (with `name`) one entry of `clusters:`, whose files default to
    /etc/ceph/<name>.conf and /etc/ceph/<name>.<client>.keyring."""
    m = r.mapping(node, where, ("conf", "keyring", "client", "connect_timeout", "ms_mode",
                                "require_secure") + (("availability_zone",) if name else ()))
    out: dict[str, Any] = read_ms(r, m, where)
    for key in ("conf", "keyring"):
        if key in m and (v := r.fs_path(m[key][1], f"{where}.{key}", base)):
            out[key] = v
    if "client" in m and (v := r.text(m["client"][1], f"{where}.client", "a name")):
        bare = v.removeprefix("client.")
        if v == bare or bare.startswith("client.") or not _NAME.fullmatch(bare):
            r.problem(m["client"][1], f"{where}.client", f"expected client.<name>, got {show(v)}")
        else:
            out["client"] = v
    if "connect_timeout" in m:
        t = r.value(m["connect_timeout"][1], f"{where}.connect_timeout", (int, float), "seconds")
        # An int is finite (and may be too big for a float); a float may be .nan or .inf.
        if t is not None and not (0 < t <= 3600 and (isinstance(t, int) or math.isfinite(t))):
            r.problem(m["connect_timeout"][1], f"{where}.connect_timeout",
                      f"must be between 0 and 3600 seconds, got {t}")
        elif t is not None:
            out["connect_timeout"] = float(t)
    if "availability_zone" in m and (v := r.name(m["availability_zone"][1],
                                                 f"{where}.availability_zone", "zone name")):
        out["availability_zone"] = v
    if name:
        out.setdefault("conf", f"/etc/ceph/{name}.conf")
        out.setdefault("keyring", f"/etc/ceph/{name}.{out.get('client', 'client.admin')}.keyring")
    return ClusterSettings(**out)


def _clusters(r: _Reader, node: yaml.Node, base: Path) -> dict[str, ClusterSettings]:
    """clusters: {NAME: {conf, keyring, client, connect_timeout, availability_zone}}."""
    clusters: dict[str, ClusterSettings] = {}
    confs: dict[str, str] = {}
    for name, (key_node, value_node) in r.mapping(node, "clusters").items():
        where = dotted("clusters", name)
        if not r.name(key_node, where, "cluster name"):
            continue
        if name in ("DEFAULT", "glance_store"):  # each cluster names a glance-api.conf section
            r.problem(key_node, where, f"{name!r} is a section of glance-api.conf, where each "
                      "cluster's Glance store is a section named after it: use another name")
            continue
        c = _cluster(r, value_node, base, where, name)
        if c.conf in confs:
            r.problem(value_node, f"{where}.conf", f"{c.conf} is already the conf of cluster "
                      f"{confs[c.conf]!r}: each cluster needs its own")
            continue
        confs[c.conf] = name
        clusters[name] = c
    if not clusters and not is_null(node) and isinstance(node, yaml.MappingNode) \
            and not node.value:
        r.problem(node, "clusters", "no cluster declared: give at least one, or use 'cluster'")
    return clusters


def _crush_rules(r: _Reader, node: yaml.Node) -> dict[str, CrushRuleSpec]:
    """crush_rules: {NAME: {device_class, failure_domain, root}}: replicated rules."""
    rules = {}
    for name, (key_node, value_node) in r.mapping(node, "crush_rules").items():
        where = dotted("crush_rules", name)
        if not r.name(key_node, where, "rule name"):
            continue
        m = r.mapping(value_node, where, ("device_class", "failure_domain", "root"))
        out: dict[str, Any] = {}
        for key, what in (("root", "CRUSH bucket name"), ("device_class", "device class")):
            if key in m and (v := r.name(m[key][1], f"{where}.{key}", what)):
                out[key] = v
        if "failure_domain" in m and (v := r.text(m["failure_domain"][1],
                                                   f"{where}.failure_domain", "a CRUSH type")):
            if v in CRUSH_TYPES:
                out["failure_domain"] = v
            else:
                r.problem(m["failure_domain"][1], f"{where}.failure_domain",
                          f"expected one of {', '.join(CRUSH_TYPES)}, got {show(v)}")
        rules[name] = CrushRuleSpec(name=name, **out)
    return rules


def _pools(r: _Reader, node: yaml.Node,
           clusters: dict[str, ClusterSettings]) -> dict[str, PoolSpec]:
    pools = {}
    for name, (key_node, value_node) in r.mapping(node, "pools").items():
        where = dotted("pools", name)
        if not r.name(key_node, where, "pool name"):
            continue
        pools[name] = _pool(r, name, value_node, where, clusters)
    return pools


def _pool(r: _Reader, name: str, node: yaml.Node, where: str,
          clusters: dict[str, ClusterSettings]) -> PoolSpec:
    m = r.mapping(node, where, ("pg_num", "autoscale", "target_size_ratio", "size", "min_size",
                                "crush_rule", "quota", "init", "cluster", "trash_purge"))
    out: dict[str, Any] = read_pool_trash(r, m, where)
    if "cluster" in m and (v := r.name(m["cluster"][1], f"{where}.cluster", "cluster name")):
        if not clusters:
            r.problem(m["cluster"][1], f"{where}.cluster", "a pool names its cluster only in "
                      "a spec with 'clusters:' (this one has one cluster)")
        elif v not in clusters:
            r.problem(m["cluster"][1], f"{where}.cluster", f"unknown cluster {v!r} (declared "
                      f"under clusters: {', '.join(clusters)})")
        else:
            out["cluster"] = v
    elif "cluster" not in m and len(clusters) == 1:
        out["cluster"] = next(iter(clusters))
    elif "cluster" not in m and clusters:
        r.problem(node, where, "missing 'cluster': which of "
                  f"{', '.join(clusters)} holds this pool")

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
                    n = parse_size(v) if key == "max_bytes" else _count(v)
                    if n < 0:
                        raise ValueError(f"must not be negative, got {v}")
                    if n >= _QUOTA_LIMIT:
                        raise ValueError(f"must be below 2**63 (Ceph keeps quotas in 64-bit "
                                         f"fields), got {show(v)}")
                    quota[key] = n
            except ValueError as e:
                r.problem(value_node, f"{where}.quota.{key}", str(e))
        out["quota"] = Quota(**quota)
    return PoolSpec(name=name, **out)


def _count(text: str | int) -> int:
    if isinstance(text, int):
        return text
    if not re.fullmatch(r"[0-9]{1,30}", text.strip()):
        raise ValueError(f"not a whole number: {show(text)}")
    return int(text)


def _keyrings(r: _Reader, node: yaml.Node, base: Path) -> KeyringSettings:
    m = r.mapping(node, "keyrings", ("directory", "owner", "group", "mode", "manage"))
    out: dict[str, Any] = {}
    if "manage" in m:
        v = r.value(m["manage"][1], "keyrings.manage", (bool,), "true or false")
        if v is not None:
            out["manage"] = v
    if "directory" in m and (v := r.fs_path(m["directory"][1], "keyrings.directory", base)):
        out["directory"] = v
    for key in ("owner", "group"):
        if key in m and (v := unix_name(r, m[key][1], f"keyrings.{key}")):
            out[key] = v
    if "mode" in m and (mode := read_mode(r, m["mode"][1], "keyrings.mode", _SAFE_MODES,
                                      "keyring files hold keys: ")) is not None:
        out["mode"] = mode
    return KeyringSettings(**out)
