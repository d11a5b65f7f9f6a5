"""The package's shape, read from its imports (ast), so it stays: no import cycle (imports
inside functions included, TYPE_CHECKING aside), layers import only downward, the bindings
only in the adapter, no "several clusters" twin of a module, a small package root."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "cephstack"

# Lowest first: a module may import from its own wing and the wings before it.
LAYERS = ("base", "spec", "plan", "ceph", "render", "host", "adopt", "session", "day2",
          "verify", "report", "sandbox", "commands", "cli")
BASE = {"__init__", "errors", "interrupt", "safefiles", "keyfiles", "text"}
BINDINGS = {"rados", "rbd"}
ADAPTER = "cephstack.ceph.adapter"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every module named by an import in the file, TYPE_CHECKING blocks aside."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names
                         if f"{node.module}.{a.name}" in known)
    return names


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {m: _imports(p, known) for m, p in known.items()}


def _wing(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and parts[1] in BASE | {"__main__"}):
        return "base" if parts[-1] != "__main__" else "cli"
    if len(parts) == 2 and parts[1] == "cli":
        return "cli"
    return parts[1]


def test_no_import_cycle():
    graph = {m: {i for i in imps if i.startswith("cephstack.") and i != m}
             for m, imps in _graph().items()}
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_layers_import_only_downward():
    upward = []
    for module, imports in _graph().items():
        here = _wing(module)
        for target in imports:
            if not target.startswith("cephstack.") or target == "cephstack":
                continue
            there = _wing(target)
            if here in LAYERS and there in LAYERS and LAYERS.index(there) > LAYERS.index(here):
                upward.append(f"{module} ({here}) -> {target} ({there})")
    assert not upward, "imports up the layers:\n" + "\n".join(sorted(upward))


def test_every_wing_has_a_layer():
    wings = {_wing(m) for m in _modules()}
    assert wings <= set(LAYERS), f"a wing without a layer: {sorted(wings - set(LAYERS))}"


def test_only_the_adapter_imports_the_bindings():
    offenders = sorted(m for m, imports in _graph().items()
                       if imports & BINDINGS and m != ADAPTER)
    assert not offenders, f"rados/rbd imported outside {ADAPTER}: {offenders}"


def test_no_several_clusters_twin():
    twins = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("multi*.py"))
    assert not twins, f"a second copy of a command path for several clusters: {twins}"


def test_a_small_root_and_small_modules():
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= 12, f"{len(root)} modules at the package root: {root}"
    long = sorted(f"{p.relative_to(PACKAGE)}: {n}" for p in PACKAGE.rglob("*.py")
                  if (n := len(p.read_text().splitlines())) > 400)
    assert not long, f"modules over 400 lines: {long}"
