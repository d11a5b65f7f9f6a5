"""What a CRUSH rule can place on, from the OSD tree as observed. Pure.

One computation for the rules the cluster has (observe reads their take steps) and for the
rules a spec wants created (the planner checks them before they exist).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cephstack.plan.state import CrushNode, CrushRule


def tree_nodes(tree: Mapping) -> dict[int, CrushNode]:
    """`osd tree`'s nodes by id (its strays, OSDs outside CRUSH, place nothing)."""
    out = {}
    for n in tree.get("nodes", []):
        node_id = int(n["id"])
        is_osd = n.get("type") == "osd" or node_id >= 0
        out[node_id] = CrushNode(
            id=node_id, name=str(n.get("name", node_id)), type=str(n.get("type", "osd")),
            children=tuple(int(c) for c in n.get("children", [])),
            device_class=n.get("device_class") if is_osd else None,
            up=is_osd and n.get("status") == "up",
            # in (reweight > 0) with a CRUSH weight
            placeable=is_osd and float(n.get("reweight", 0)) > 0
            and float(n.get("crush_weight", 1)) > 0)
    return out


def _leaves(start: CrushNode, nodes: Mapping[int, CrushNode]
            ) -> list[tuple[CrushNode, list[CrushNode]]]:
    """The OSDs under a CRUSH node, each with its buckets from `start` down."""
    out, seen = [], set()
    stack: list[tuple[CrushNode, list[CrushNode]]] = [(start, [])]
    while stack:
        node, above = stack.pop()
        if node.id in seen:
            continue
        seen.add(node.id)
        if node.is_osd:
            out.append((node, above))
            continue
        stack += [(nodes[c], [*above, node]) for c in node.children if c in nodes]
    return out


def bucket(nodes: Mapping[int, CrushNode], name: str) -> CrushNode | None:
    """The bucket of that name (not an OSD), if the tree has it."""
    return next((n for n in nodes.values() if n.name == name and not n.is_osd), None)


def rule_reach(name: str, rule_id: int, takes: Sequence[tuple[str, str | None]],
               failure_domain: str, nodes: Mapping[int, CrushNode],
               replicated: bool = True) -> CrushRule:
    """A rule with its reach: the OSDs under the bucket(s) it takes (`takes`: (root, device
    class or None) each), how many are up and in, and how many buckets of its failure
    domain hold an OSD that is in (the copies it can place)."""
    by_name = {n.name: n for n in nodes.values()}
    osds: dict[int, CrushNode] = {}
    domains: set[int] = set()
    roots: list[str] = []
    classes: list[str] = []
    for root, device_class in takes:
        roots.append(root)
        if device_class and device_class not in classes:
            classes.append(device_class)
        if root not in by_name:
            continue
        for osd, above in _leaves(by_name[root], nodes):
            if device_class and osd.device_class != device_class:
                continue
            osds[osd.id] = osd
            domain = next((b for b in reversed([*above, osd]) if b.type == failure_domain),
                          None)
            if domain is not None and osd.placeable:
                domains.add(domain.id)
    return CrushRule(
        name=name, id=rule_id, replicated=replicated, root=", ".join(roots),
        device_class=", ".join(classes) or None, failure_domain=failure_domain,
        osds=len(osds), osds_usable=sum(o.up and o.placeable for o in osds.values()),
        domains=len(domains))


def classes_under(nodes: Mapping[int, CrushNode], root: str) -> dict[str, int]:
    """Device class -> how many OSDs under the bucket `root` have it ("none": no class)."""
    start = bucket(nodes, root)
    out: dict[str, int] = {}
    for osd, _ in _leaves(start, nodes) if start else []:
        out[osd.device_class or "none"] = out.get(osd.device_class or "none", 0) + 1
    return dict(sorted(out.items()))
