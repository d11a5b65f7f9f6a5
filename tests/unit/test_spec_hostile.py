"""Hostile specs: every malformed or dangerous spec is a SpecError naming file:line: field,
before the cluster is contacted, and never any other exception (no traceback).

(1) a table of targeted cases; (2) a generated fuzzer: mutations of the default spec.
"""

from __future__ import annotations

import codecs
import copy
import math
import random
import re
from pathlib import Path

import pytest
import yaml

from cephstack.errors import SpecError
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import Spec, load_spec, parse_spec
from cephstack.spec.read import NAME

POOLS = "pools: {images: {}, vm: {}}\n"


def problems(text: str, **kw) -> list[str]:
    with pytest.raises(SpecError) as e:
        parse_spec(text, "s.yaml", **kw)
    return e.value.problems


# -- (1) targeted cases: text -> the problem that must be among those reported --------

TARGETED = [
    # Reserved entities: admin, the connecting user, daemons, bootstrap keys.
    (POOLS + "services:\n  glance: {user: admin, pool: images}\n",
     "s.yaml:3: services.glance.user: client.admin is the cluster's admin"),
    (POOLS + "services:\n  glance: {user: client.admin, pool: images}\n",
     "s.yaml:3: services.glance.user: client.admin is the cluster's admin"),
    ("clients:\n  admin: {caps: {mon: 'allow *'}}\n",
     "s.yaml:2: clients.admin: client.admin is the cluster's admin"),
    ("clients:\n  client.admin: {caps: {mon: 'allow *'}}\n",
     "s.yaml:2: clients.client.admin: client.admin is the cluster's admin"),
    ("cluster: {client: client.ops}\n" + POOLS + "services:\n  nova: {user: ops, pool: vm}\n",
     "s.yaml:4: services.nova.user: client.ops is the user cephstack connects as"),
    ("cluster:\n  client: client.ops\nclients:\n  client.ops: {caps: {}}\n",
     "s.yaml:4: clients.client.ops: client.ops is the user cephstack connects as"),
    (POOLS + "services:\n  glance: {user: 'mon.', pool: images}\n",
     "s.yaml:3: services.glance.user: user name 'mon.' names a Ceph daemon"),
    ("clients:\n  osd.0: {caps: {}}\n", "s.yaml:2: clients.osd.0: user name 'osd.0' names a Ceph"),
    ("clients:\n  mgr.x: {caps: {}}\n", "s.yaml:2: clients.mgr.x: user name 'mgr.x' names a Ceph"),
    ("clients:\n  client.mds.a: {caps: {}}\n", "s.yaml:2: clients.client.mds.a: user name"),
    ("clients:\n  bootstrap-osd: {caps: {}}\n", "s.yaml:2: clients.bootstrap-osd: user name"),
    # client. given once is normalised away; twice is refused.
    (POOLS + "services:\n  glance: {user: client.client.glance, pool: images}\n",
     "s.yaml:3: services.glance.user: invalid user name 'client.client.glance': 'client.' is "
     "given twice"),
    ("clients:\n  client.client.x: {caps: {}}\n",
     "s.yaml:2: clients.client.client.x: invalid user name"),
    (POOLS + "services:\n  glance: {user: 'client.', pool: images}\n",
     "s.yaml:3: services.glance.user: invalid user name 'client.'"),
    # A trailing newline (re.match + $ accepted it) or NUL in a name.
    (POOLS + 'services:\n  glance: {user: "admin\\n", pool: images}\n',
     "s.yaml:3: services.glance.user: 'admin\\n' contains the non-printable character"),
    (POOLS + 'services:\n  glance: {user: "glance\\n", pool: images}\n',
     "s.yaml:3: services.glance.user: 'glance\\n' contains the non-printable"),
    ('pools:\n  "images\\n": {}\n', "s.yaml:2: pools.'images\\n': 'images\\n' contains"),
    ('pools:\n  "im\\0ages": {}\n', "s.yaml:2: pools.'im\\x00ages': 'im\\x00ages' contains"),
    ('pools:\n  a: {crush_rule: "rule\\n"}\n', "s.yaml:2: pools.a.crush_rule: 'rule\\n' contains"),
    ('cluster: {client: "client.admin\\n"}\n', "s.yaml:1: cluster.client: 'client.admin\\n' "),
    ('clients:\n  "x\\n": {caps: {}}\n', "s.yaml:2: clients.'x\\n': 'x\\n' contains"),
    ("cluster: {client: client.client.admin}\n",
     "s.yaml:1: cluster.client: expected client.<name>, got 'client.client.admin'"),
    ("cluster: {client: 'client.a b'}\n", "s.yaml:1: cluster.client: expected client.<name>"),
    # YAML booleans, numbers, lists, mappings, null where a name is expected.
    (POOLS + "services:\n  glance: {user: yes, pool: images}\n",
     "s.yaml:3: services.glance.user: expected a user name, got True"),
    (POOLS + "services:\n  glance: {user: on, pool: images}\n",
     "s.yaml:3: services.glance.user: expected a user name, got True"),
    (POOLS + "services:\n  glance: {user: 1234, pool: images}\n",
     "s.yaml:3: services.glance.user: expected a user name, got 1234"),
    (POOLS + "services:\n  glance: {user: [g], pool: images}\n",
     "s.yaml:3: services.glance.user: expected a user name, got a list"),
    (POOLS + "services:\n  glance: {user: ~, pool: images}\n",
     "s.yaml:3: services.glance.user: expected a user name, got None"),
    (POOLS + "services:\n  glance: {user: glance, pool: yes}\n",
     "s.yaml:3: services.glance.pool: expected a pool name, got True"),
    ("pools:\n  true: {}\n", "s.yaml:2: pools: keys must be strings, got True"),
    # Empty strings no longer silently become the defaults.
    ("keyrings: {directory: ''}\n", "s.yaml:1: keyrings.directory: expected a path, got an empty"),
    ("cluster: {conf: ''}\n", "s.yaml:1: cluster.conf: expected a path, got an empty string"),
    ("cluster: {keyring: ''}\n", "s.yaml:1: cluster.keyring: expected a path, got an empty"),
    ("cluster: {client: ''}\n", "s.yaml:1: cluster.client: expected a name, got an empty string"),
    ("render: {directory: ''}\n", "s.yaml:1: render.directory: expected a path, got an empty"),
    (POOLS + "services:\n  glance: {user: '', pool: images}\n",
     "s.yaml:3: services.glance.user: expected a user name, got an empty string"),
    ("pools:\n  '': {}\n", "s.yaml:2: pools.'': expected pool name, got an empty string"),
    # NUL and newlines in paths, caps, owner/group.
    ('cluster: {conf: "/etc/ceph/ceph.conf\\0"}\n', "s.yaml:1: cluster.conf: '/etc/ceph/ceph"),
    ('keyrings:\n  directory: "/var/x\\ny"\n', "s.yaml:2: keyrings.directory: '/var/x\\ny' "),
    ("keyrings:\n  directory: ' /var/x'\n", "s.yaml:2: keyrings.directory: ' /var/x' starts or"),
    ("render: {directory: '/" + "x" * 5000 + "'}\n", "s.yaml:1: render.directory: longer than"),
    ('clients:\n  t:\n    caps: {mon: "allow r\\nallow w"}\n',
     "s.yaml:3: clients.t.caps.mon: 'allow r\\nallow w' contains the non-printable character"),
    ('clients:\n  t:\n    caps: {osd: "profile rbd\\0"}\n', "s.yaml:3: clients.t.caps.osd: "),
    ("keyrings: {owner: 'ro ot'}\n", "s.yaml:1: keyrings.owner: invalid Unix name 'ro ot'"),
    ("keyrings: {owner: 'root:root'}\n", "s.yaml:1: keyrings.owner: invalid Unix name"),
    ('keyrings: {group: "root\\n"}\n', "s.yaml:1: keyrings.group: 'root\\n' contains"),
    ('keyrings: {group: "wh\\0eel"}\n', "s.yaml:1: keyrings.group: 'wh\\x00eel' contains"),
    ("keyrings: {owner: ''}\n", "s.yaml:1: keyrings.owner: invalid Unix name ''"),
    ("keyrings: {owner: 0}\n", "s.yaml:1: keyrings.owner: expected a Unix user or group name"),
    ("keyrings: {mode: !!python/object:os.system '0600'}\n", "s.yaml:1: keyrings.mode: keyring "
     "files hold keys: mode must be one of 0600, 0640, 0400, 0440, got '0600' tagged"),
    ('keyrings: {mode: "0600\\n"}\n', "s.yaml:1: keyrings.mode: keyring files hold keys"),
    # Numbers: quotas are 64-bit in Ceph, timeouts finite.
    ("pools:\n  a: {quota: {max_bytes: 100000P}}\n",
     "s.yaml:2: pools.a.quota.max_bytes: must be below 2**63"),
    ("pools:\n  a:\n    quota: {max_objects: 9223372036854775808}\n",
     "s.yaml:3: pools.a.quota.max_objects: must be below 2**63"),
    ("pools:\n  a: {quota: {max_bytes: -1}}\n", "s.yaml:2: pools.a.quota.max_bytes: must not be"),
    ("pools:\n  a: {quota: {max_objects: 12abc}}\n",
     "s.yaml:2: pools.a.quota.max_objects: not a whole number"),
    ("pools:\n  a: {quota: {max_objects: 10K}}\n",
     "s.yaml:2: pools.a.quota.max_objects: not a whole number"),
    ("pools:\n  a: {quota: {max_bytes: '١٢G'}}\n", "s.yaml:2: pools.a.quota.max_bytes: not a size"),
    ("pools:\n  a: {quota: {max_bytes: " + "9" * 40 + "}}\n",
     "s.yaml:2: pools.a.quota.max_bytes: must be below 2**63"),
    ("pools:\n  a: {quota: {max_bytes: '" + "9" * 40 + "'}}\n",
     "s.yaml:2: pools.a.quota.max_bytes: not a size"),
    ("pools:\n  a: {quota: {max_bytes: 1.5}}\n", "s.yaml:2: pools.a.quota.max_bytes: expected a"),
    ("pools:\n  a: {pg_num: 65537}\n", "s.yaml:2: pools.a.pg_num: must be 1..65536"),
    ("pools:\n  a: {pg_num: " + "9" * 5000 + "}\n", "s.yaml:2: pools.a.pg_num: cannot read"),
    ("pools:\n  a: {pg_num: 2001-13-45}\n", "s.yaml:2: pools.a.pg_num: cannot read this value"),
    ("pools:\n  a: {min_size: 11}\n", "s.yaml:2: pools.a.min_size: must be 1..10"),
    ("pools:\n  a: {autoscale: true, target_size_ratio: .nan}\n",
     "s.yaml:2: pools.a.target_size_ratio: must be 0..1"),
    ("cluster:\n  connect_timeout: .nan\n", "s.yaml:2: cluster.connect_timeout: must be between"),
    ("cluster:\n  connect_timeout: .inf\n", "s.yaml:2: cluster.connect_timeout: must be between"),
    ("cluster:\n  connect_timeout: -.inf\n", "s.yaml:2: cluster.connect_timeout: must be between"),
    ("cluster:\n  connect_timeout: " + "9" * 400 + "\n",
     "s.yaml:2: cluster.connect_timeout: must be between"),
    ("cluster:\n  connect_timeout: yes\n", "s.yaml:2: cluster.connect_timeout: expected seconds"),
    # YAML features a spec has no use for.
    ("base: &b {pg_num: 32}\npools:\n  a: {<<: *b}\n",
     "s.yaml:3: pools.a: YAML merge keys ('<<') are not supported"),
    ("pools: !!python/object:os.system {}\n", "s.yaml:1: pools: unsupported YAML tag"),
    ("pools:\n  a: {pg_num: !!python/name:os.system ''}\n",
     "s.yaml:2: pools.a.pg_num: cannot read this value: unsupported YAML tag"),
    ("pools:\n  a: {pg_num: !foo 3}\n", "s.yaml:2: pools.a.pg_num: cannot read this value: "
     "unsupported YAML tag '!foo'"),
    ("pools: !foo {a: {}}\n", "s.yaml:1: pools: unsupported YAML tag '!foo'"),
    ("pools:\n  !foo a: {}\n", "s.yaml:2: pools: cannot read this value: unsupported YAML tag"),
    ("pools: !!set {a}\n", "s.yaml:1: pools: unsupported YAML tag"),
    ("pools:\n  a: {pg_num: !!binary aGVsbG8=}\n", "s.yaml:2: pools.a.pg_num: expected an integer"),
    ("pools:\n  a: {pg_num: =}\n", "s.yaml:2: pools.a.pg_num: cannot read this value"),
    ("pools:\n  ? &m {a: 1}\n  : {}\n  ? *m\n  : {}\n",
     "s.yaml:2: pools: keys must be strings, got a mapping"),
    # An alias is the anchored node itself: PyYAML gives it the anchor's line.
    ("pools:\n  &x a: {}\n  *x : {}\n", "s.yaml:2: pools.a: duplicate key (an alias of the key "
     "at line 2)"),
    ("pools:\n  ? &r [*r]\n  : {}\n", "s.yaml:2: pools: keys must be strings, got a list"),
    ("pools:\n  a: &r {size: *r}\n", "s.yaml:2: pools.a.size: expected an integer, got a mapping"),
    ("pools: " + "[" * 1000 + "]" * 1000 + "\n", "s.yaml:1: not valid YAML: nested too deeply"),
    ("pools: {}\n---\npools: {}\n", "s.yaml:2: not valid YAML: expected a single document"),
    ("- cluster\n- pools\n", "s.yaml:1: spec: expected a mapping, got a list"),
    ("just text\n", "s.yaml:1: spec: expected a mapping, got 'just text'"),
    ("42\n", "s.yaml:1: spec: expected a mapping, got '42'"),
    ("~\n", "s.yaml:1: spec: the spec is empty"),
    ("# only a comment\n", "s.yaml:1: spec: the spec is empty"),
    ("pools: {a: {}}\n\0\n", "s.yaml:2: not valid YAML: character #x0000 is not allowed"),
    ("pools: {a: {}}\n\x1b[31m: 1\n", "s.yaml:2: not valid YAML: character #x001b"),
    ("pools:\n\ta: {}\n", "s.yaml:2: not valid YAML"),
    ("render: {directory: x, format: [plain]}\n", "s.yaml:1: render.format: expected plain or "
     "kolla, got a list"),
    (POOLS + 'services:\n  glance: {user: "\\ud800", pool: images}\n',
     "s.yaml:3: services.glance.user: '\\ud800' contains the non-printable character"),
]


@pytest.mark.parametrize("text, expected", TARGETED)
def test_targeted_hostile_specs(text, expected):
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found
    assert all(re.match(r"s\.yaml:\d+: ", p) and "\n" not in p for p in found), found


def test_deep_block_nesting_names_a_line():
    # Where recursion runs out depends on the stack already in use: any line will do.
    text = "pools:\n  a:\n" + "".join(" " * (i + 4) + f"k{i}:\n" for i in range(1500))
    found = problems(text)
    assert len(found) == 1 and re.fullmatch(r"s\.yaml:\d+: not valid YAML: nested too deeply",
                                            found[0]), found


def test_one_problem_per_bad_format():
    assert len(problems("render: {directory: x, format: [plain]}\n")) == 1


def test_client_prefix_is_normalised_once():
    spec = parse_spec(POOLS + "services:\n  glance: {user: client.glance, pool: images}\n"
                      "clients:\n  client.tool: {caps: {mon: 'allow r'}}\n")
    assert spec.services["glance"].user == "glance"
    assert list(spec.clients) == ["tool"]


def test_connecting_user_given_by_the_cli_is_reserved():
    text = "clients:\n  ops: {caps: {mon: 'allow r'}}\n"
    assert parse_spec(text).clients["ops"].name == "ops"
    for who in ("ops", "client.ops"):
        assert problems(text, connect_as=who)[0].startswith(
            "s.yaml:2: clients.ops: client.ops is the user cephstack connects as")


@pytest.mark.parametrize("fix", [False, True])
def test_import_leaves_out_the_connecting_user(fix):
    from cephstack.adopt.describe import import_spec
    from cephstack.spec.load import ClusterSettings
    from tests.unit.test_audit import seed_state

    state = seed_state(ops={"mon": "profile rbd", "osd": "profile rbd pool=images"})
    spec = parse_spec(import_spec(state, ClusterSettings("/c", "/k", "client.ops"), "/k", fix))
    assert "ops" not in spec.clients and spec.cluster.client == "client.ops"
    spec = parse_spec(import_spec(state, ClusterSettings("/c", "/k", "client.glance"), "/k", fix))
    assert "glance" not in spec.clients and "glance" not in spec.services


def test_largest_quota_is_accepted():
    spec = parse_spec("pools:\n  a: {quota: {max_bytes: 8191P, max_objects: "
                      f"{2**63 - 1}}}}}\n")
    assert spec.pools["a"].quota.max_objects == 2**63 - 1


@pytest.mark.parametrize("data, expected", [
    ("keyrings:\n  directory: /var/openstack/ceph\n  owner: r\u00e9mi\n".encode("latin-1"),
     ":3: not UTF-8 text: byte 0xe9"),
    (codecs.BOM_UTF16_LE + DEFAULT_SPEC.encode("utf-16-le"), ":1: not UTF-8 text: the file is "
     "UTF-16"),
    (codecs.BOM_UTF16_BE + DEFAULT_SPEC.encode("utf-16-be"), ":1: not UTF-8 text: the file is "
     "UTF-16"),
    (DEFAULT_SPEC.encode("utf-16-le"), ":1: not valid YAML: character #x0000 is not allowed in "
     "YAML (is the file UTF-16?"),
    (DEFAULT_SPEC.encode("utf-32"), ":1: not UTF-8 text: the file is UTF-32"),
    (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), ":2: not UTF-8 text: byte 0x80"),
    (b"pools: {a: {}}\n" + "\u00e9".encode()[:1], ":2: not UTF-8 text"),
])
def test_other_encodings_are_spec_errors(tmp_path: Path, data: bytes, expected: str):
    f = tmp_path / "spec.yaml"
    f.write_bytes(data)
    with pytest.raises(SpecError) as e:
        load_spec(f)
    assert e.value.problems[0].startswith(f"{f}{expected}"), e.value.problems


def test_utf8_with_a_byte_order_mark_loads(tmp_path: Path):
    f = tmp_path / "spec.yaml"
    f.write_bytes(codecs.BOM_UTF8 + DEFAULT_SPEC.encode())
    assert list(load_spec(f).pools) == ["images", "volume", "backups", "vm"]


def test_a_path_in_a_symlink_loop_is_a_spec_error(tmp_path: Path):
    (tmp_path / "loop").symlink_to("loop")
    f = tmp_path / "spec.yaml"
    f.write_text("keyrings: {directory: loop/keys}\n")
    with pytest.raises(SpecError) as e:
        load_spec(f)
    assert e.value.problems[0].startswith(f"{f}:1: keyrings.directory: cannot resolve")


# -- (2) the fuzzer: generated mutations of the default spec ----------------------------

def _base() -> dict:
    """The default spec with every optional field set, so mutations reach them all."""
    base = yaml.safe_load(DEFAULT_SPEC)
    base["pools"]["images"] = {"pg_num": 32, "size": 3, "min_size": 2,
                               "crush_rule": "replicated_rule",
                               "quota": {"max_bytes": "500G", "max_objects": 1000000}}
    base["pools"]["vm"] = {"autoscale": True, "target_size_ratio": 0.2, "init": True}
    base["services"]["glance"]["chunk_size_mib"] = 8
    base["clients"] = {"legacy-tool": {"caps": {"mon": "profile rbd",
                                                "osd": "profile rbd-read-only pool=images"}}}
    base["keyrings"].update(owner="root", group="root", manage=True)
    base["render"] = {"directory": "rendered", "format": "plain"}
    return base


# Every scalar of the base gets each of these...
HOSTILE_VALUES: list[object] = [
    "", "x\n", "a\0b", "\ud800", "client.admin", True, None, [], {"a": 1}, 2**64, -1, math.nan,
]
# ... and, round-robin, four of these.
MORE_VALUES: list[object] = [
    " ", "\n", "glance\n", "admin\n", "\0", "\t", "\r\n", "\u2028", "\x85", "é", "ünï",
    "\u00a0", "a b", "x:y", "../../etc/passwd", "/", "a" * 300, "admin", "client.client.x",
    "client.", "mon.", "osd.0", "mgr.a", "bootstrap-osd", "0600", "100000P", "9" * 5000, "-1",
    "yes", "1e400", False, ["a"], [["a"]], {}, {"mon": "allow *"}, 0, 1, 2**63, 10**30, 1.5,
    -0.0, math.inf, -math.inf, b"\xff\xfe",
]
HOSTILE_KEYS: list[object] = ["", "x\n", "a\0b", "client.admin", "osd.0", "<<", True, None]


def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    else:
        yield path


def _mappings(node, path=()):
    if isinstance(node, dict):
        yield path
        for k, v in node.items():
            yield from _mappings(v, (*path, k))


def _at(node, path):
    for p in path:
        node = node[p]
    return node


def _dump(data) -> str:
    options = {"allow_unicode": False, "sort_keys": False, "width": 10**6}
    try:  # libyaml's emitter is fast, but cannot write a lone surrogate
        return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), **options)
    except UnicodeEncodeError:
        return yaml.dump(data, Dumper=yaml.SafeDumper, **options)


def _text_cases() -> list[str]:
    base = _base()
    out = []
    # Every scalar replaced by every hostile value.
    more = iter(MORE_VALUES * 10)
    for path in _leaves(base):
        for value in HOSTILE_VALUES + [next(more) for _ in range(4)]:
            data = copy.deepcopy(base)
            _at(data, path[:-1])[path[-1]] = value
            out.append(_dump(data))
    # Every key replaced by hostile keys, and every key deleted.
    for path in _mappings(base):
        for key in list(_at(base, path)):
            for new in HOSTILE_KEYS:
                data = copy.deepcopy(base)
                m = _at(data, path)
                items = [(new if k == key else k, v) for k, v in m.items()]
                m.clear()
                m.update(items)
                out.append(_dump(data))
            data = copy.deepcopy(base)
            del _at(data, path)[key]
            out.append(_dump(data))
    # Wrong types at the top level and for each section.
    for top in ([], ["cluster"], "text", 0, True, 1.5, {"cluster": []}):
        out.append(_dump(top))
    for section in base:
        for value in ([], "x", 0, True, [{"a": 1}]):
            data = copy.deepcopy(base)
            data[section] = value
            out.append(_dump(data))
    # Line-level edits of the commented default spec: duplicated keys, tabs, stray tags,
    # merge keys, aliases, documents, truncation.
    lines = DEFAULT_SPEC.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        head, tail = lines[:i], lines[i + 1:]
        out.append("".join(head + [line, line] + tail))
        out.append("".join(head + ["\t" + line] + tail))
        out.append("".join(head + [line.replace(": ", ": !foo ", 1)] + tail))
        out.append("".join(head + [line.replace(": ", ": !!python/object:os.system ", 1)] + tail))
        out.append("".join(head + [line.replace(":", ": <<: *nothing", 1)] + tail))
        out.append("".join(head + [line.replace(": ", ": &a ", 1), "---\n"] + tail))
        out.append("".join(head))
    for snippet in ("<<: {pools: {}}\n", "&a cluster: {}\n", "? [a]\n: 1\n", "*a : 1\n",
                    "x: " + "[" * 1000 + "]" * 1000 + "\n", "--- !!map\n", "...\n---\n",
                    "%YAML 1.1\n---\n", "%TAG ! tag:evil,2024:\n---\n", "\ufeff", "\x00",
                    "pools: {a: {pg_num: 2001-02-30}}\n", "pools: {a: {pg_num: 190:20:30}}\n",
                    "pools: {a: {pg_num: 0x" + "f" * 20 + "}}\n"):
        out.append(snippet + DEFAULT_SPEC)
        out.append(DEFAULT_SPEC + snippet)
    return out


def _byte_cases() -> list[bytes]:
    rng = random.Random(13)
    text = DEFAULT_SPEC
    out = [text.encode(enc) for enc in ("utf-16", "utf-16-le", "utf-16-be", "utf-32",
                                        "utf-32-le", "cp1252", "latin-1", "utf-7")]
    out += [text.replace("images", "imagés").encode(enc) for enc in ("latin-1", "cp1252")]
    out += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))) for _ in range(20)]
    raw = text.encode()
    for _ in range(30):  # flip one byte of the default spec to a random one
        i = rng.randrange(len(raw))
        out.append(raw[:i] + bytes([rng.randrange(256)]) + raw[i + 1:])
    out += [raw[:n] for n in range(0, len(raw), 97)]  # truncated, also inside a character
    return out


TEXT_CASES = _text_cases()
BYTE_CASES = _byte_cases()


def _sane(spec: Spec) -> None:
    """What an accepted spec guarantees to the rest of cephstack."""
    client = spec.cluster.client
    assert re.fullmatch(r"client\.(?!client\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", client)
    t = spec.cluster.connect_timeout
    assert isinstance(t, float) and math.isfinite(t) and 0 < t <= 3600
    reserved = {"admin", client.removeprefix("client.")}
    users = [s.user for s in spec.services.values()] + list(spec.clients)
    for user in users:
        assert NAME.fullmatch(user) and user not in reserved, user
        assert not re.match(r"(client|mon|osd|mgr|mds)\.|bootstrap-", user), user
    for name, pool in spec.pools.items():
        assert NAME.fullmatch(name) and pool.name == name
        assert pool.crush_rule is None or NAME.fullmatch(pool.crush_rule)
        assert 0 <= pool.quota.max_bytes < 2**63 and 0 <= pool.quota.max_objects < 2**63
        assert 1 <= pool.pg_num <= 65536
    for service in spec.services.values():
        assert all(p in spec.pools for p in service.pools)
    for c in spec.clients.values():
        assert all(isinstance(t, str) and t.isprintable() for t in c.caps.values())
    paths = [spec.cluster.conf, spec.keyrings.directory]
    paths += [spec.cluster.keyring] if spec.cluster.keyring is not None else []
    paths += [spec.render.directory] if spec.render else []
    for path in paths:
        assert isinstance(path, str) and path and path.isprintable(), path
    for name in (spec.keyrings.owner, spec.keyrings.group):
        assert name is None or re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?", name), name


def _check(load, path: str) -> str | None:
    """None when `load()` behaves, else what went wrong."""
    try:
        spec = load()
    except SpecError as e:
        # file:line: (the contract allows "?" for an unknown line; every case here has one)
        pattern = re.compile(re.escape(path) + r":\d+: ")
        bad = [p for p in e.problems if not pattern.match(p) or "\n" in p]
        return f"badly formed problems {bad}" if bad or not e.problems else None
    except Exception as e:  # noqa: BLE001 - the point: nothing else may escape
        return f"{type(e).__name__}: {e}"[:300]
    try:
        _sane(spec)
    except AssertionError as e:
        return f"accepted an unsafe spec: {e}"
    return None


def test_the_fuzzer_has_hundreds_of_cases():
    assert len(TEXT_CASES) + len(BYTE_CASES) >= 300


def test_the_base_of_the_fuzzer_is_valid():
    _sane(parse_spec(_dump(_base()), "s.yaml"))


def test_fuzzed_texts_are_spec_errors_or_sane_specs():
    failures = []
    for i, text in enumerate(TEXT_CASES):
        why = _check(lambda text=text: parse_spec(text, "s.yaml"), "s.yaml")
        if why:
            failures.append((i, text[:200], why))
    assert not failures, failures[:5]


def test_fuzzed_files_are_spec_errors_or_sane_specs(tmp_path: Path):
    failures = []
    for i, data in enumerate(BYTE_CASES):
        f = tmp_path / f"spec{i}.yaml"
        f.write_bytes(data)
        why = _check(lambda f=f: load_spec(f), str(f))
        if why:
            failures.append((i, data[:100], why))
    assert not failures, failures[:5]
