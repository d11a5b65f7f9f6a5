"""`cephstack report --html` for a spec with several clusters, against two real sandboxes
(central, edge1: test_multicluster's fixture) and a real verify run across them: one page
with an overview naming both, each cluster's section with its pools, findings and verify
steps, the checks across clusters apart, no key of either cluster anywhere, rendered by
headless chromium; and with edge1's monitor stopped, the page still written with edge1's
error in its section, central's complete, exit code 3."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path

import pytest

from tests.integration.test_multicluster import admin, cli, two  # noqa: F401 - the fixture
from tests.integration.test_report_html import (
    TABLES,
    _browser,
    _chromium,
    assert_screenshot_not_blank,
)

pytestmark = pytest.mark.slow

POOLS = {"central": {"images", "volume", "backups"},
         "edge1": {"images-edge1", "volume-edge1", "vm-edge1"}}


def _keys(boxes) -> list[str]:
    keys = []
    for box in boxes.values():
        with admin(box) as conn:
            keys += [e["key"] for e in conn.mon("auth ls")["auth_dump"]]
    return keys


def _sections(page: str) -> dict[str, str]:
    parts = re.split(r'(?=<section class="cluster" id=")', page)
    return {re.match(r'<section class="cluster" id="([^"]+)"', p).group(1): p
            for p in parts[1:]}


def _pools(section: str, name: str) -> set[str]:
    """The POOL column of a cluster's status table."""
    table = section.split(f'<table id="cluster-{name}/status-pools">')[1].split("</table>")[0]
    return set(re.findall(r"<tr><td>([^<]+)</td>", table))


@pytest.fixture(scope="module")
def reported(two):  # noqa: F811 - test_multicluster's fixture
    """Both clusters applied and verified (the real verify across them), edge1 with a
    finding of its own (a keyring others can read), then the page and the SVG."""
    root, boxes, spec = two
    done = cli(root, "apply", "-f", str(spec), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    verified = cli(root, "verify", "-f", str(spec), "--output", "json")
    assert verified.returncode == 0, verified.stderr[-3000:]
    (root / "verify.json").write_text(verified.stdout)
    leaky = root / "keys" / "edge1.client.nova.keyring"
    leaky.chmod(0o644)
    html, svg = root / "report" / "sites.html", root / "report" / "sites.svg"
    proc = cli(root, "report", "-f", str(spec), "--html", str(html), "--svg", str(svg),
               "--verify", str(root / "verify.json"), "--output", "json")
    leaky.chmod(0o600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    return root, boxes, spec, doc, html, svg


def test_one_page_with_each_cluster_and_no_key(reported):
    _, boxes, _, doc, html, svg = reported
    assert doc == {"format_version": "1", "written": [str(html), str(svg)],
                   "clusters": {"central": {"pools": 3, "error": None},
                                "edge1": {"pools": 3, "error": None}}, "failed": []}
    page = html.read_text()
    assert oct(html.stat().st_mode & 0o777) == "0o644"
    secrets = _keys(boxes)
    assert secrets and not [k for k in secrets if k in page or k in svg.read_text()]
    assert "http://" not in page and "https://" not in page and "<script" not in page
    groups = ET.fromstring(svg.read_text()).findall("{http://www.w3.org/2000/svg}g")
    assert [g.get("id") for g in groups] == ["cluster-central", "cluster-edge1"]
    overview = page.split('<section id="overview">')[1].split("</section>")[0]
    assert "2 clusters, all read." in overview
    assert '<a href="#cluster-central">central</a>' in overview
    assert '<a href="#cluster-edge1">edge1</a>' in overview
    sections = _sections(page)
    assert list(sections) == ["cluster-central", "cluster-edge1", "across"]
    for name, pools in POOLS.items():
        assert _pools(sections[f"cluster-{name}"], name) == pools
    # edge1's finding in edge1's section (and the overview), none in central's.
    assert "keyring-readable-by-others" in sections["cluster-edge1"]
    assert "edge1.client.nova.keyring" in sections["cluster-edge1"]
    assert "keyring-readable-by-others" not in sections["cluster-central"]
    rows = {m.group(1): m.group(0)
            for m in re.finditer(r'<a href="#cluster-(\w+)">.*?</tr>', overview, re.S)}
    assert "1 error(s)" in rows["edge1"]
    assert "clean" in rows["central"] or "0 error(s)" in rows["central"]  # the sandbox's own


def test_verify_steps_land_in_their_sections(reported):
    root, _, _, _, html, _ = reported
    verify = json.loads((root / "verify.json").read_text())
    sections = _sections(html.read_text())

    def steps(section: str) -> list[tuple[str, str]]:
        table = section.split("/verify-steps\">")[1].split("</table>")[0]
        return [(unescape(svc), unescape(name)) for svc, name in
                re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>", table)]

    for name in ("central", "edge1"):
        shown = steps(sections[f"cluster-{name}"])
        expected = [(s["service"].removeprefix(f"{name}/"), s["name"])
                    for s in verify["clusters"][name]["steps"]]
        assert shown == expected
        assert ("glance", "upload image (create, write, snap, protect)") in shown
    assert ("nova", "boot from image (copy-on-write clone)") in steps(
        sections["cluster-edge1"])
    across = steps(sections["across"])
    assert len(across) == len(verify["across"]["steps"]) > 0
    assert any(svc == "edge1->central/cinder-backup" for svc, _ in across), across
    for name in ("central", "edge1"):
        assert not [s for s in steps(sections[f"cluster-{name}"]) if "->" in s[0]]
    # Each cluster's least-privilege checks mark its own access matrix.
    for name in ("central", "edge1"):
        matrix = sections[f"cluster-{name}"].split(f'id="cluster-{name}/access-matrix"')[1]
        assert "&#10003; refused" in matrix.split("</table>")[0]


def test_chromium_renders_both_clusters(reported, tmp_path):
    _chromium()
    _, _, _, _, html, _ = reported
    proc = _browser(tmp_path, "--dump-dom", html.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    for name in ("central", "edge1"):
        for table in TABLES:
            assert f'<table id="cluster-{name}/{table}">' in dom, (name, table)
    assert dom.count("<svg") == 2 and '<table id="across/verify-steps">' in dom
    assert_screenshot_not_blank(tmp_path, html)


def test_a_stopped_cluster_shows_its_error_and_the_other_is_complete(reported):
    root, boxes, spec, _, _, _ = reported
    secrets = _keys(boxes)  # edge1's too, read while it runs
    html = root / "report" / "down.html"
    for daemon in ("mgr.x", "mon.a"):
        boxes["edge1"].stop_daemon(daemon)
    try:
        proc = cli(root, "report", "-f", str(spec), "--html", str(html), "--verify",
                   str(root / "verify.json"), "--output", "json")
    finally:
        for daemon in ("mon.a", "mgr.x"):
            boxes["edge1"].start_daemon(daemon)
    assert proc.returncode == 3, proc.stdout + proc.stderr  # edge1's: unreachable
    doc = json.loads(proc.stdout)
    assert doc["written"] == [str(html)] and doc["failed"] == ["edge1"]
    assert doc["clusters"]["central"] == {"pools": 3, "error": None}
    assert doc["clusters"]["edge1"]["error"]["kind"] == "unreachable"
    assert "error: cluster edge1: cannot reach the cluster" in proc.stderr
    page = html.read_text()
    assert not [k for k in secrets if k in page]
    sections = _sections(page)
    edge1 = sections["cluster-edge1"]
    assert "Could not be read: cannot reach the cluster of" in edge1 and "edge1.conf" in edge1
    assert "<table" not in edge1
    assert _pools(sections["cluster-central"], "central") == POOLS["central"]
    for table in TABLES:
        assert f'<table id="cluster-central/{table}">' in sections["cluster-central"]
    assert "not read: edge1" in page.split('<section id="overview">')[1]
    assert Path(html).stat().st_mode & 0o777 == 0o644
