"""The parts of the spec only a several-cluster spec has: `mirroring:`, and the checks that
tie services to clusters. load.py reads the rest; fleet.py splits the result per cluster.
"""

from __future__ import annotations

import re

import yaml

from cephstack.spec.model import ClusterSettings, MirroringSpec, PoolSpec, ServiceSpec
from cephstack.spec.read import Reader, is_null, show

# `rbd mirror snapshot schedule add` intervals: a number and m(inutes), h(ours) or d(ays).
_SCHEDULE = re.compile(r"[1-9][0-9]{0,5}[mhd]")


def read_mirroring(r: Reader, node: yaml.Node, clusters: dict[str, ClusterSettings],
                   pools: dict[str, PoolSpec],
                   services: dict[str, ServiceSpec]) -> MirroringSpec | None:
    """mirroring: {primary, secondary, pools: [...], schedule, user}: one block for the
    pair, since Cinder's replication_device names one secondary per backend."""
    where = "mirroring"
    m = r.mapping(node, where, ("primary", "secondary", "pools", "schedule", "user"))
    if is_null(node) or not m:
        r.problem(node, where, "expected primary, secondary and pools")
        return None
    if not clusters:
        r.problem(node, where, "mirroring needs two clusters under 'clusters:'")
        return None
    sides: dict[str, str] = {}
    for side in ("primary", "secondary"):
        if side not in m:
            r.problem(node, where, f"missing {side!r}: one of {', '.join(clusters)}")
        elif (v := r.name(m[side][1], f"{where}.{side}", "cluster name")) and v not in clusters:
            r.problem(m[side][1], f"{where}.{side}", f"unknown cluster {v!r} (declared under "
                      f"clusters: {', '.join(clusters)})")
        elif v:
            sides[side] = v
    if len(sides) == 2 and sides["primary"] == sides["secondary"]:
        r.problem(m["secondary"][1], f"{where}.secondary", "the secondary must be another "
                  "cluster than the primary")
    mirrored = _mirrored_pools(r, m, pools, sides.get("primary"), services)
    extra: dict[str, str] = {}
    if "schedule" in m and (v := r.text(m["schedule"][1], f"{where}.schedule", "an interval")):
        if _SCHEDULE.fullmatch(v):
            extra["schedule"] = v
        else:
            r.problem(m["schedule"][1], f"{where}.schedule", f"expected minutes, hours or "
                      f"days such as 5m, 1h, 1d; got {show(v)}")
    if "user" in m and (v := r.user_id(m["user"][1], f"{where}.user")):
        if v in {s.user for s in services.values()}:
            r.problem(m["user"][1], f"{where}.user", f"{v!r} is a service's user: the "
                      "rbd-mirror daemon needs its own")
        else:
            extra["user"] = v
    if len(sides) < 2 or mirrored is None or r.problems:
        return None
    return MirroringSpec(sides["primary"], sides["secondary"], mirrored, **extra)


def _mirrored_pools(r: Reader, m: dict, pools: dict[str, PoolSpec], primary: str | None,
                    services: dict[str, ServiceSpec]) -> tuple[str, ...] | None:
    where = "mirroring.pools"
    if "pools" not in m:
        r.problem(m.get("primary", (None, None))[1], "mirroring", "missing 'pools': the "
                  "primary's pools to mirror")
        return None
    seq = m["pools"][1]
    if not isinstance(seq, yaml.SequenceNode) or not seq.value:
        r.problem(seq, where, "expected a non-empty list of pool names")
        return None
    out: list[str] = []
    volumes = services["cinder-volume"].pools if "cinder-volume" in services else ()
    for item in seq.value:
        name = r.value(item, where, (str,), "a pool name")
        if name is None:
            continue
        if name not in pools:
            r.problem(item, where, f"pool {name!r} is not declared under pools")
        elif primary and pools[name].cluster != primary:
            r.problem(item, where, f"pool {name!r} is on cluster {pools[name].cluster!r}, "
                      f"not on the primary {primary!r}")
        elif name in out:
            r.problem(item, where, f"pool {name!r} is listed twice")
        elif name not in volumes:
            r.problem(item, where, f"pool {name!r} is not a cinder-volume pool: mirroring "
                      "serves Cinder replication")
        else:
            out.append(name)
    return tuple(out)


def pinned_secret_problems(r: Reader, services_node: yaml.Node, services: dict[str, ServiceSpec],
                           clusters: dict[str, ClusterSettings]) -> None:
    """A pinned libvirt secret is one secret, but each (cluster, user) needs its own."""
    if not clusters or not isinstance(services_node, yaml.MappingNode):
        return
    for kind_node, value_node in services_node.value:
        service = services.get(kind_node.value) if isinstance(kind_node, yaml.ScalarNode) \
            else None
        if service is None or service.secret_uuid is None \
                or not isinstance(value_node, yaml.MappingNode):
            continue
        at = next((k for k, _ in value_node.value if getattr(k, "value", None) == "secret_uuid"),
                  value_node)
        r.problem(at, f"services.{service.kind}.secret_uuid", "a pinned secret is for a "
                  "one-cluster spec: with clusters:, each (cluster, user) gets its own libvirt "
                  "secret, derived from the cluster's fsid")
