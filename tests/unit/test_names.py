"""Every name is data (issue 18), as tables: a cluster whose pools, users, images and
caps hold quotes, `<`, `&`, `]]>`, backslashes, control characters and other scripts,
through the views of status, report, the access picture and audit. No cluster (the real
one is tests/integration/test_status_names.py)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from cephstack.adopt.access import access_svg, build_access
from cephstack.adopt.audit import audit
from cephstack.day2.status import (
    FleetStatus,
    ImageFacts,
    Locker,
    PoolFacts,
    StatusFacts,
    build_status,
)
from cephstack.errors import ClusterUnreachable
from cephstack.keyfiles import Secret
from cephstack.plan.state import ClientState, ClusterState, Health
from cephstack.report.html import html_report
from cephstack.report.statusviews import fleet_text, status_json, status_prometheus, status_text
from cephstack.report.views import audit_text
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.text import printable, printable_lines
from tests.unit.test_plan import pool
from tests.unit.test_status import SPEC

ESC, QUOTE, MARKUP, NL = "esc\x1b[31mred\x07", "q'uote", 'a<b&c"d]]>e\\f', "nl\nx"
POOLS = (ESC, QUOTE, MARKUP, NL, "ünï池\u202e")
IMAGE = 'disk\x1b[2J<&>"]]>\\'
CINDER = "client.cinder-q'uote<&>\x1b"
_RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]")
_KEY = Secret("AQBzX1Zl" + "A" * 32)


@pytest.mark.parametrize("name, shown", [
    ("images", "images"),  # plain names: unchanged
    ("ünï池", "ünï池"),  # letters of any script stay
    (ESC, "esc\\x1b[31mred\\x07"),
    ("a\\b", "a\\\\b"),  # a backslash doubled: "\x1b" shown can only be ESC
    ("rtl\u202eabc", "rtl\\u202eabc"),  # a right-to-left override would reorder the line
    ("nl\nx\ttab", "nl\\x0ax\\x09tab"),
    ("\ud800", "\\ud800"),  # a lone surrogate (undecodable bytes)
    (None, ""),
])
def test_printable(name, shown):
    assert printable(name) == shown
    assert printable(shown).isprintable()


def test_printable_lines_keeps_the_line_breaks():
    assert printable_lines(f"cannot open {ESC}\n  hint: x") == \
        "cannot open esc\\x1b[31mred\\x07\n  hint: x"


def _state() -> ClusterState:
    caps = {"mon": "profile rbd",
            "osd": f'profile rbd pool="{QUOTE}", profile rbd pool=\'{MARKUP}\', '
                   f'profile rbd pool="{ESC}", profile rbd pool="{NL}"'}
    clients = {CINDER: ClientState(CINDER, caps, _KEY),
               "client.glance\x1b[5m": ClientState("client.glance\x1b[5m",
                                                   {"mon": "allow r", "osd": "allow r pool=q'uote"},
                                                   _KEY)}
    return ClusterState("fsid-1", {n: pool(n) for n in POOLS}, clients,
                        health=Health("HEALTH_OK", 1, 1, 1, 8, {"active+clean": 8}))


def _status():
    lock = Locker("client.9", f"cookie{ESC}", "10.1.1.1:0/5", True, "")
    facts = StatusFacts(
        pools={n: PoolFacts(n, images=1, snapshots=0, pg_states={"active+clean": 8},
                            scanned=(ImageFacts(IMAGE, lockers=(lock,)),)) for n in POOLS},
        blocklist=("10.1.1.1:0/5",))
    return build_status(_state(), facts, None)


def test_status_text_has_no_raw_control_character():
    text = status_text(_status())
    assert not _RAW.findall(text)
    assert f"Stale lock: {printable(ESC)}/{printable(IMAGE)} held by client.9" in text
    table = [line.split("  ")[0] for line in text.splitlines()]
    assert {printable(p) for p in POOLS} <= set(table)


def test_json_gives_every_name_back():
    doc = status_json(_status())
    assert {p["name"] for p in doc["pools"]} == set(POOLS)
    assert doc["pools"][0]["locks"][0]["image"] == IMAGE


def test_a_clusters_error_naming_a_pool_is_printable():
    runs = {"edge1": ClusterRun("edge1", SPEC)}
    runs["edge1"].error = ClusterUnreachable(f"pool {ESC} is gone", hint="look")
    text = fleet_text(FleetStatus(Fleet(runs), {}, named=True))
    assert "error: edge1: pool esc\\x1b[31mred\\x07 is gone\n    hint: look" in text
    assert not _RAW.findall(text)


_SAMPLE = re.compile(r'^[a-z_]+\{pool="((?:[^"\\\n]|\\[\\"n])*)",service="[^"]*"\} \S+$')


def test_prometheus_labels_escape_backslash_quote_and_newline():
    pools = set()
    for line in status_prometheus(_status()).splitlines():
        if line.startswith("cephstack_pool_stored_bytes"):
            m = _SAMPLE.match(line)
            assert m, line
            pools.add(re.sub(r"\\([\\\"n])", lambda x: {"n": "\n"}.get(x.group(1), x.group(1)),
                             m.group(1)))
    assert pools == set(POOLS)


def test_the_page_and_the_picture_are_well_formed():
    state, status = _state(), _status()
    access = build_access(None, state, None)
    page = html_report(generated="now", fsid="fsid-1", spec_path=None, status=status,
                       plan=None, findings=audit(state, None), verify=None,
                       verify_source=None, access=access)
    assert not _RAW.findall(page) and "<b&c" not in page and "]]>" not in page
    for svg in re.findall(r"<svg.*?</svg>", page, re.S):
        ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))
    root = ET.fromstring(access_svg(access))
    texts = {"".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {printable(CINDER), printable(ESC), printable(MARKUP)} <= texts
    # Cinder's quoted pools are read from its caps (they were a CapsSyntaxError).
    cinder = next(u for u in access.users if u.entity == CINDER)
    assert {p for p, c in cinder.cells.items() if c.write} == {QUOTE, MARKUP, ESC, NL}


def test_an_unparsable_grant_is_a_finding_not_a_traceback():
    findings = audit(_state(), None)
    odd = [f for f in findings if f.id == "caps-unparsable"]
    assert [(f.entity, f.what) for f in odd] == [
        ("client.glance\x1b[5m", "osd cap grant 'allow r pool=q'uote' could not be parsed")]
    text = audit_text(findings)
    assert not _RAW.findall(text)
    assert "caps-unparsable  client.glance\\x1b[5m" in text
