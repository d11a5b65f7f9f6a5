"""libyaml's loader (CSafeLoader) reads specs ten times faster than PyYAML's pure one; it
is used only where it composes exactly the same nodes (what the spec reader looks at: kind,
tag, value, quoting, line and column), on every spec of the hostile-spec corpus."""

from __future__ import annotations

import contextlib

import yaml

from cephstack.spec import read as specread
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import parse_spec
from tests.unit.test_spec_hostile import BYTE_CASES, TARGETED, TEXT_CASES


def _shape(node: yaml.Node | None, seen: dict[int, int] | None = None) -> object:
    if node is None:
        return None
    seen = {} if seen is None else seen
    if id(node) in seen:  # an alias: the anchored node itself
        return ("alias", seen[id(node)])
    seen[id(node)] = len(seen)
    base = (type(node).__name__, node.tag, node.start_mark.line, node.start_mark.column)
    if isinstance(node, yaml.ScalarNode):
        return (*base, node.value, node.style or None)  # plain: None (pure), "" (libyaml)
    if isinstance(node, yaml.SequenceNode):
        return (*base, tuple(_shape(n, seen) for n in node.value))
    return (*base, tuple((_shape(k, seen), _shape(v, seen)) for k, v in node.value))


def _texts() -> list[str]:
    texts = [*TEXT_CASES, *(t for t, _ in TARGETED), DEFAULT_SPEC]
    for data in BYTE_CASES:
        with contextlib.suppress(UnicodeDecodeError):
            texts.append(data.decode("utf-8-sig"))
    pools = "".join(f"  pool{i:03d}: {{pg_num: 4}}\n" for i in range(200))
    users = "".join(f"  user{i:04d}: {{caps: {{mon: 'profile rbd', osd: 'profile rbd "
                    f"pool=pool{i % 200:03d}'}}}}\n" for i in range(1000))
    return [*texts, f"pools:\n{pools}clients:\n{users}"]


def test_the_c_loader_composes_what_the_pure_loader_does():
    taken = 0
    for text in _texts():
        try:
            node, loader = specread.compose(text, "s.yaml")
        except Exception:  # noqa: BLE001 - a spec error: reported by the pure loader
            continue
        if isinstance(loader, yaml.CSafeLoader):
            taken += 1
            assert _shape(node) == _shape(yaml.SafeLoader(text).get_single_node()), text[:200]
    assert taken > 500  # most of the corpus takes the fast path


def test_only_plain_shallow_text_takes_the_c_loader():
    assert isinstance(specread.compose(DEFAULT_SPEC, "s.yaml")[1], yaml.CSafeLoader)
    for text in (DEFAULT_SPEC.replace("images", "imagés"),  # not ASCII
                 "pools: {a: {}}\n\x1b: 1\n",  # a control character
                 "x: " + "[" * 150 + "]" * 150 + "\n"):  # deeper than any spec
        try:
            _, loader = specread.compose(text, "s.yaml")
        except Exception:  # noqa: BLE001 - rejected by the pure loader
            continue
        assert not isinstance(loader, yaml.CSafeLoader), text[:40]


def test_errors_are_the_pure_loaders():
    for text in ("pools: {a: {}}\n---\npools: {}\n", "pools:\n\ta: {}\n", "a: [\n"):
        specread._C_LOADER, saved = None, specread._C_LOADER
        try:
            expected = _problems(text)
        finally:
            specread._C_LOADER = saved
        assert _problems(text) == expected


def _problems(text: str) -> list[str]:
    try:
        parse_spec(text, "s.yaml")
    except Exception as e:  # noqa: BLE001
        return list(getattr(e, "problems", [str(e)]))
    return []
