"""Reading a spec file: bytes -> YAML nodes -> checked values, each problem as
file:line: field: what. Knows YAML, names and paths; what the spec means is load.py's.

Nothing here raises anything but SpecError, whatever the file holds: other encodings,
unknown tags, merge keys, deep nesting, several documents, control characters.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Any

import yaml

from cephstack.errors import SpecError

# Ceph accepts more, but these names are safe in paths, INI files and libvirt usage names.
# Always fullmatch: `$` would accept a trailing newline.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_NAME_RULE = ("use letters, digits, '_', '.', '-', starting with a letter or digit, "
              "at most 63 characters")
# Entities that are not OpenStack users: the daemons' own keys and Ceph's bootstrap keys.
_DAEMON_ID = re.compile(r"(mon|osd|mgr|mds)\..*|bootstrap-.*", re.DOTALL)
_PATH_MAX = 4096
_TAG = "tag:yaml.org,2002:"
_STR = _TAG + "str"
_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def show(value: Any, limit: int = 60) -> str:
    """repr() for a problem message: one line, and short even for a huge value."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def brief(text: str, limit: int = 120) -> str:
    """`text` on one line, control characters escaped, at most `limit` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in " ".join(text.split()))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def decode(data: bytes, path: str) -> str:
    """The text of a spec file, which must be UTF-8 (a UTF-8 byte-order mark is skipped)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise SpecError([f"{path}:1: not UTF-8 text: the file is {name}; save it as UTF-8 "
                             f"(iconv -f {name} -t UTF-8)"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise SpecError([f"{path}:{line}: not UTF-8 text: byte 0x{data[e.start]:02x} at "
                         f"offset {e.start}; save the spec as UTF-8"]) from None


# libyaml's loader (PyYAML's CSafeLoader) composes the same nodes, with the same marks, ten
# times faster; it is used only where it cannot differ from the pure-Python one: plain ASCII
# text (no control characters but tab, CR, LF), no problem at all (any error is reported by
# the pure loader, as always), and nesting no spec needs (the pure loader then decides).
_C_LOADER = getattr(yaml, "CSafeLoader", None)
_NOT_PLAIN_ASCII = re.compile(r"[^\t\n\r\x20-\x7e]")
_C_MAX_DEPTH = 100


def compose(text: str, path: str) -> tuple[yaml.Node | None, Any]:
    """The YAML node tree of the one document in `text` (None when there is none), and the
    loader that composed it (for constructing its scalars)."""
    if _C_LOADER is not None and not _NOT_PLAIN_ASCII.search(text):
        loader = _C_LOADER(text)
        try:
            root = loader.get_single_node()
        except Exception:  # noqa: BLE001 - the pure loader below reports it, with its line
            pass
        else:
            if _shallow(root):
                return root, loader
        finally:
            loader.dispose()
    return _compose_pure(text, path)


def _shallow(root: yaml.Node | None) -> bool:
    """Whether no collection in the tree nests deeper than _C_MAX_DEPTH (aliases are the
    anchored node itself: each node is looked at once)."""
    collection = (yaml.SequenceNode, yaml.MappingNode)
    seen: set[int] = set()
    stack = [(root, 0)] if isinstance(root, collection) else []
    while stack:
        node, depth = stack.pop()
        if depth > _C_MAX_DEPTH:
            return False
        if id(node) in seen:
            continue
        seen.add(id(node))
        children = node.value if isinstance(node, yaml.SequenceNode) else \
            [n for pair in node.value for n in pair]
        stack += [(n, depth + 1) for n in children if isinstance(n, collection)]
    return True


def _compose_pure(text: str, path: str) -> tuple[yaml.Node | None, yaml.SafeLoader]:
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # this already refuses control characters
        return loader.get_single_node(), loader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f"{mark.line + 1}" if mark else "?"
        what = ", ".join(str(p) for p in (e.context, e.problem) if p)
        if "another document" in what:
            what += " (a spec is one YAML document: remove the '---' line and what follows)"
        raise SpecError([f"{path}:{line}: not valid YAML: {what}"]) from None
    except yaml.reader.ReaderError as e:
        line = text[:e.position].count("\n") + 1
        utf16 = e.character == 0 and e.position <= 1  # UTF-16 without a byte-order mark
        hint = " (is the file UTF-16? save it as UTF-8)" if utf16 else ""
        raise SpecError([f"{path}:{line}: not valid YAML: character #x{e.character:04x} is "
                         f"not allowed in YAML{hint}"]) from None
    except yaml.YAMLError as e:
        raise SpecError([f"{path}:?: not valid YAML: {brief(str(e))}"]) from None
    except RecursionError:
        line = f"{loader.line + 1}" if loader else "?"
        raise SpecError([f"{path}:{line}: not valid YAML: nested too deeply"]) from None
    finally:
        if loader:
            loader.dispose()


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null"


class Reader:
    """Walks the YAML node tree, collecting problems with their file and line."""

    def __init__(self, path: str, loader: Any) -> None:
        self.path = path
        self.loader = loader
        self.problems: list[str] = []
        # Entities the spec must never manage: admin, and the user cephstack connects as.
        self.never_manage: set[str] = {"client.admin"}

    def problem(self, node: yaml.Node | None, where: str, what: str) -> None:
        line = f"{node.start_mark.line + 1}" if node is not None else "?"
        self.problems.append(f"{self.path}:{line}: {where or 'spec'}: {what}")

    def construct(self, node: yaml.Node, where: str) -> tuple[bool, Any]:
        """(True, the scalar's value) or (False, None) with a problem."""
        if node.tag == _STR and isinstance(node, yaml.ScalarNode):
            return True, node.value  # what SafeConstructor makes of it, without its lookups
        try:
            return True, self.loader.construct_object(node)
        # PyYAML's constructors raise more than YAMLError on hostile scalars: ValueError
        # for a date like 2001-13-45 or an int of more than 4300 digits.
        except Exception as e:
            reason = (e.problem if isinstance(e, yaml.MarkedYAMLError) else None) or str(e)
            if "constructor for the tag" in reason:
                reason = f"unsupported YAML tag {show(node.tag)}"
            self.problem(node, where, f"cannot read this value: {brief(reason)}")
            return False, None

    def mapping(self, node: yaml.Node, where: str,
                allowed: tuple[str, ...] | None = None) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Keys -> (key node, value node); rejects non-mappings, duplicates, unknown keys."""
        if is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, where, f"expected a mapping, got {describe(node)}")
            return {}
        if node.tag != _TAG + "map":
            self.problem(node, where, f"unsupported YAML tag {show(node.tag)}")
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                self.problem(key_node, where, "YAML merge keys ('<<') are not supported: "
                             "write the keys out")
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, where, f"keys must be strings, got {describe(key_node)}")
                continue
            ok, key = self.construct(key_node, where)
            if not ok:
                continue
            if not isinstance(key, str):
                self.problem(key_node, where, f"keys must be strings, got {show(key)}")
                continue
            path = dotted(where, key)
            if key in out:
                first = out[key][0]  # an alias is the anchored node itself, with its line
                what = "an alias of the key" if first is key_node else "first"
                self.problem(key_node, path, f"duplicate key ({what} at line "
                             f"{first.start_mark.line + 1})")
                continue
            if allowed is not None and key not in allowed:
                self.problem(key_node, path, f"unknown key; expected one of: {', '.join(allowed)}")
                continue
            out[key] = (key_node, value_node)
        return out

    def value(self, node: yaml.Node, where: str, types: tuple[type, ...], what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, where, f"expected {what}, got {describe(node)}")
            return None
        ok, value = self.construct(node, where)
        if not ok:
            return None
        # bool is an int in Python; a YAML `yes` must not pass as a number.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            hint = ""
            if str in types and not node.style and not isinstance(value, (bytes, type(None))):
                hint = " (YAML reads it as a non-string: quote it if you mean the text)"
            self.problem(node, where, f"expected {what}, got {show(value)}{hint}")
            return None
        # No string in a spec spans lines or holds control characters (NUL, newline, ...):
        # they would break paths, INI files, keyring names and cap strings downstream.
        if isinstance(value, str) and not value.isprintable():
            bad = next(c for c in value if not c.isprintable())
            self.problem(node, where, f"{show(value)} contains the non-printable character "
                         f"{bad!r} (U+{ord(bad):04X})")
            return None
        return value

    def written(self, node: yaml.Node) -> str | None:
        """A plain or quoted scalar's text as written (YAML 1.1 reads an unquoted 0600 as the
        int 384); None for anything else: the caller reports it as a bad value."""
        if isinstance(node, yaml.ScalarNode) and node.tag in (_TAG + "str", _TAG + "int") \
                and node.value.isprintable():
            return node.value
        return None

    def text(self, node: yaml.Node, where: str, what: str) -> str | None:
        """A non-empty string."""
        value = self.value(node, where, (str,), what)
        if value == "":
            self.problem(node, where, f"expected {what}, got an empty string")
            return None
        return value

    def name(self, node: yaml.Node, where: str, what: str) -> str | None:
        value = self.text(node, where, what)
        if value is not None and not NAME.fullmatch(value):
            self.problem(node, where, f"invalid {what} {show(value)}: {_NAME_RULE}")
            return None
        return value

    def user_id(self, node: yaml.Node, where: str) -> str | None:
        """A cephx user the spec manages: 'glance' or 'client.glance' -> 'glance'.
        None, with a problem, for an invalid id or one cephstack must never manage."""
        value = self.text(node, where, "a user name")
        if value is None:
            return None
        bare = value.removeprefix("client.")
        if bare.startswith("client."):
            self.problem(node, where, f"invalid user name {show(value)}: 'client.' is given "
                         f"twice; write {show(bare.removeprefix('client.'))}")
            return None
        if not NAME.fullmatch(bare):
            self.problem(node, where, f"invalid user name {show(value)}: {_NAME_RULE} "
                         "(without 'client.')")
            return None
        entity = f"client.{bare}"
        if entity in self.never_manage:
            which = "the cluster's admin" if entity == "client.admin" else \
                "the user cephstack connects as (cluster.client, --id)"
            self.problem(node, where, f"{entity} is {which}: cephstack never manages it "
                         "(its caps would be replaced); use another user name")
            return None
        if _DAEMON_ID.fullmatch(bare):
            self.problem(node, where, f"user name {show(value)} names a Ceph daemon or "
                         "bootstrap key, not an OpenStack user: use another user name")
            return None
        return bare

    def fs_path(self, node: yaml.Node, where: str, base: Path) -> str | None:
        """A path; relative ones are relative to `base` (the spec's directory)."""
        value = self.text(node, where, "a path")
        if value is None:
            return None
        if value != value.strip():
            self.problem(node, where, f"{show(value)} starts or ends with a space")
            return None
        if len(value.encode()) > _PATH_MAX:
            self.problem(node, where, f"longer than {_PATH_MAX} bytes")
            return None
        if Path(value).is_absolute():
            return value
        try:
            return str((base / value).resolve())
        except (OSError, RuntimeError, ValueError) as e:  # RuntimeError: a symlink loop
            self.problem(node, where, f"cannot resolve {show(value)}: {brief(str(e))}")
            return None


def dotted(where: str, key: str) -> str:
    """The dotted field name of `key` under `where`; an odd key shown quoted."""
    shown = key if key and key.isprintable() and " " not in key else show(key)
    return f"{where}.{shown}" if where else shown


def describe(node: yaml.Node) -> str:
    """What a node is, for a problem message: a mapping, a list, or the text as written."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    standard = node.tag.removeprefix(_TAG) in ("str", "int", "float", "bool", "null")
    return show(node.value) + ("" if standard else f" tagged {show(node.tag)}")


_UNIX_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def read_mode(r: Reader, node: yaml.Node, where: str, allowed: tuple[int, ...],
          why: str = "") -> int | None:
    # Read the text as written: YAML 1.1 turns an unquoted 0600 into the int 384.
    text = r.written(node)
    mode = int(text, 8) if text and re.fullmatch(r"[0-7]{3,4}", text) else None
    if mode not in allowed:
        r.problem(node, where, f"{why}mode must be one of "
                  f"{', '.join(f'{m:04o}' for m in allowed)}, got {describe(node)}")
        return None
    return mode


def unix_name(r: Reader, node: yaml.Node, where: str) -> str | None:
    v = r.value(node, where, (str,), "a Unix user or group name")
    if v is not None and not _UNIX_NAME.fullmatch(v):
        r.problem(node, where, f"invalid Unix name {v!r}")
        return None
    return v
