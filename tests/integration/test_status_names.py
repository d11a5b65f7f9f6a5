"""Every name is data (issue 18): a real sandbox whose pools, users, images and lock cookie
have quotes, `<`, `&`, `]]>`, backslashes, control characters (ESC, BEL, a newline, a
right-to-left override) and other scripts, made through librados as another tool could.
status (text, JSON, Prometheus), report (--html, --svg) and audit read it: no traceback,
no raw control character to the terminal, well-formed SVG (checked with an XML parser),
Prometheus labels escaped as the exposition format says, JSON that gives the names back."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from cephstack.text import printable

POOLS = ("q'uote", 'a<b&c"d]]>e\\f', "esc\x1b[31mred\x07", "nl\nx", "ünï池\u202e")
QUOTE, MARKUP, ESC, NEWLINE, UNICODE = POOLS
IMAGE = 'disk\x1b[2J<&>"]]>\\'  # in ESC's pool, its lock's holder blocklisted
COOKIE = "c<&>\x1b"
CINDER = "client.cinder-q'uote<&>\"]]>\\"  # recognised as Cinder by its name
NOVA = "client.nova\x1b[7m"
GLANCE = "client.glance\x1b[5m<x>"  # mon 'allow r': audit finds it cannot blocklist
_RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]")  # control chars but \t \n


@pytest.fixture(scope="module")
def hostile(cluster):
    with cluster.admin() as conn:
        for pool in POOLS:
            conn.mon("osd pool create", pool=pool, pg_num=8, pgp_num=8)
            conn.mon("osd pool set", pool=pool, var="pg_autoscale_mode", val="off")
            conn.mon("osd pool application enable", pool=pool, app="rbd")
        conn.mon("auth get-or-create", entity=CINDER, caps=[
            "mon", "profile rbd",
            "osd", f'profile rbd pool="{QUOTE}", profile rbd pool=\'{MARKUP}\''])
        conn.mon("auth get-or-create", entity=NOVA, caps=[
            "mon", "profile rbd", "osd", f'profile rbd pool="{ESC}", profile rbd pool="{QUOTE}"'])
        conn.mon("auth get-or-create", entity=GLANCE, caps=[
            "mon", "allow r", "osd", f'allow rwx pool="{UNICODE}"'])
        conn.wait_for_osdmap()
        _until_active(conn)
        for pool in POOLS:
            conn.rbd("create", pool, IMAGE, 1 << 20)
        holder = cluster.admin()
        with holder.image(ESC, IMAGE) as image:
            image.lock_exclusive(COOKIE)
        address = holder.client_address()
        holder.close()
        conn.mon("osd blocklist", blocklistop="add", addr=address)
    return cluster


def _until_active(conn, seconds: float = 120) -> None:
    """Until every PG of the hostile pools is active (status skips RBD reads of the
    others), as the manager reports them."""
    import time

    ids = {p["pool_name"]: p["pool_id"] for p in conn.mon("osd pool ls", detail="detail")}
    wanted = {str(ids[p]) for p in POOLS}
    deadline = time.monotonic() + seconds
    while True:
        brief = conn.mon("pg dump", dumpcontents=["pgs_brief"])
        stats = brief.get("pg_stats", []) if isinstance(brief, dict) else brief or []
        mine = [pg["state"] for pg in stats if pg["pgid"].split(".")[0] in wanted]
        if len(mine) == 8 * len(POOLS) and all("active" in s.split("+") for s in mine):
            return
        assert time.monotonic() < deadline, mine
        time.sleep(1)


def _run(cluster, *args: str):
    proc = cluster.cli(*args, "--conf", str(cluster.box.conf), "--keyring",
                       str(cluster.box.admin_keyring))
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _clean_for_a_terminal(text: str) -> None:
    raw = _RAW.findall(text)
    assert not raw, f"raw control characters: {raw!r}"


def test_status_text_shows_every_name_printable(hostile):
    proc = _run(hostile, "status")
    assert proc.returncode == 0, proc.stderr
    _clean_for_a_terminal(proc.stdout + proc.stderr)
    rows = {line.split("  ")[0] for line in proc.stdout.splitlines()}
    assert {printable(p) for p in POOLS} <= rows
    assert "esc\\x1b[31mred\\x07" in rows and "a<b&c\"d]]>e\\\\f" in rows
    assert "nl\\x0ax" in rows and "ünï池\\u202e" in rows  # other scripts stay as they are
    stale = [line for line in proc.stdout.splitlines() if line.startswith("Stale lock:")]
    assert stale == [f"Stale lock: {printable(ESC)}/{printable(IMAGE)} held by "
                     f"{stale[0].split(' held by ')[1]}"]
    assert stale[0].endswith(": holder blocklisted")


def test_status_json_gives_the_names_back(hostile):
    proc = _run(hostile, "status", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    _clean_for_a_terminal(proc.stdout)
    doc = json.loads(proc.stdout)
    pools = {p["name"]: p for p in doc["pools"]}
    assert set(POOLS) <= set(pools)
    assert all(pools[p]["images"] == 1 for p in POOLS)
    lock, = pools[ESC]["locks"]
    assert (lock["image"], lock["cookie"], lock["state"]) == (IMAGE, COOKIE, "stale")
    assert doc["services"]["cinder-volume"]["user"] == CINDER
    assert doc["services"]["nova"]["user"] == NOVA


_SAMPLE = re.compile(r'^([a-z_]+)\{((?:[a-z_]+="(?:[^"\\\n]|\\[\\"n])*",?)*)\} (\S+)$')
_LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\[\\"n])*)"')


def _label_value(text: str) -> str:
    return re.sub(r"\\([\\\"n])", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), text)


def test_prometheus_labels_are_escaped_as_the_exposition_format_says(hostile):
    proc = _run(hostile, "status", "--prometheus")
    assert proc.returncode == 0, proc.stderr
    pools: set[str] = set()
    for line in proc.stdout.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        m = _SAMPLE.match(line)
        assert m, f"not one sample per line: {line!r}"
        labels = {k: _label_value(v) for k, v in _LABEL.findall(m.group(2))}
        if m.group(1) == "cephstack_pool_stored_bytes":
            pools.add(labels["pool"])
    assert set(POOLS) <= pools  # each name given back whole, the newline one included


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_html_and_svg_are_well_formed_with_every_name(hostile):
    html_path, svg_path = hostile.workdir / "names.html", hostile.workdir / "names.svg"
    proc = _run(hostile, "report", "--html", str(html_path), "--svg", str(svg_path))
    assert proc.returncode == 0, proc.stderr  # was: CapsSyntaxError, No closing quotation
    _clean_for_a_terminal(proc.stdout + proc.stderr)
    page = html_path.read_text()
    _clean_for_a_terminal(page)
    assert "a<b&c" not in page and ']]>' not in page
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    assert svgs
    for svg in svgs:  # inline SVG, as the XML it is when saved alone
        ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))
    picture = ET.parse(svg_path).getroot()
    texts = {"".join(t.itertext()) for t in picture.iter("{http://www.w3.org/2000/svg}text")}
    assert {printable(CINDER), printable(NOVA), printable(QUOTE), printable(ESC)} <= texts
    parsed = _Text()
    parsed.feed(page)
    words = "\n".join(parsed.text)
    for name in (*POOLS, IMAGE, CINDER, NOVA, GLANCE):
        assert printable(name) in words, name


def test_audit_names_a_hostile_user_printable(hostile):
    proc = _run(hostile, "audit")
    _clean_for_a_terminal(proc.stdout + proc.stderr)
    assert f"mon-cannot-blocklist  {printable(GLANCE)}" in proc.stdout
    doc = json.loads(_run(hostile, "audit", "--output", "json").stdout)
    assert any(f["entity"] == GLANCE and f["id"] == "mon-cannot-blocklist"
               for f in doc["findings"])
