"""`report` for a spec with several clusters, as data in, page out: the verify report split
into each cluster's steps and the checks across clusters, the page's overview and sections
(a cluster not read shows its error), the access pictures in one SVG, and the arguments
refused before any cluster is contacted. No cluster."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from cephstack.adopt.access import build_access
from cephstack.adopt.audit import Finding
from cephstack.cli import main
from cephstack.commands.report import BadInput
from cephstack.day2.status import build_status
from cephstack.errors import ClusterUnreachable
from cephstack.report.pages import (
    ClusterPage,
    check_verify,
    clusters_html,
    clusters_svg,
    result_json,
    spec_pictures,
    split_verify,
)
from cephstack.report.views import plan_json
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.spec.fleet import split
from cephstack.spec.load import parse_spec
from tests.unit.test_clusters import TWO_SITE
from tests.unit.test_status import SPEC, MiB, _facts, _state

SITES = parse_spec(TWO_SITE, "sites.yaml")
SVG = "{http://www.w3.org/2000/svg}"


def _step(service: str, name: str, result: str = "pass") -> dict:
    return {"service": service, "name": name, "result": result, "seconds": 0.01,
            "detail": f"{service} {name}"}


def _verify() -> dict:
    """The shape of `cephstack verify -f sites.yaml --output json` (report/verifyviews.py's
    fleet_json), as a real run across two sandboxes wrote it: steps labelled by where they
    ran, a cluster's part holding its own, the checks across clusters apart (the volume
    side of a backup across clusters is labelled with its cluster alone)."""
    central = [_step("central/glance", "upload image"),
               _step("central/glance", "must not write to pool volume")]
    edge1 = [_step("edge1/nova", "boot from image"),
             _step("edge1/nova", "must not write to pool images-edge1", "fail")]
    across = [_step("edge1/cinder-volume", "connect with its own keyring"),
              _step("central->edge1/cinder-backup", "full backup [central/rbd-volume]")]
    return {"format_version": "1", "passed": False, "steps": central + edge1 + across,
            "clusters": {"central": {"conf": "/etc/ceph/central.conf", "run_id": "r-central",
                                     "passed": True, "takeover_seconds": None,
                                     "steps": central, "cleanup": [], "error": None},
                         "edge1": {"conf": "/etc/ceph/edge1.conf", "run_id": "r-edge1",
                                   "passed": False, "takeover_seconds": None, "steps": edge1,
                                   "cleanup": [], "error": None}},
            "across": {"run_id": "r-across", "steps": across, "cleanup": [], "errors": {}},
            "failed": ["edge1"]}


def test_verify_steps_go_to_their_cluster_and_the_checks_across_apart():
    own, across = split_verify(_verify(), ["central", "edge1"])
    assert [s["service"] for s in own["central"]["steps"]] == ["glance", "glance"]
    assert [s["service"] for s in own["edge1"]["steps"]] == ["nova", "nova"]
    assert own["central"]["run_id"] == "r-central" and own["edge1"]["passed"] is False
    # A check across clusters stays there, even when labelled with one cluster's name.
    assert [s["service"] for s in across["steps"]] == ["edge1/cinder-volume",
                                                        "central->edge1/cinder-backup"]
    assert across["passed"] is True and across["run_id"] == "r-across"


def test_a_cluster_verify_could_not_reach_and_one_it_did_not_cover():
    doc = _verify()
    doc["clusters"]["edge1"] = {"conf": "/etc/ceph/edge1.conf",
                                "error": {"kind": "unreachable", "message": "edge1 is down",
                                          "hint": None}}
    doc["across"]["errors"] = {"edge1": {"kind": "unreachable", "message": "edge1 is down"}}
    del doc["clusters"]["central"]
    own, across = split_verify(doc, ["central", "edge1"])
    assert "central" not in own
    assert own["edge1"]["ran"] is False and own["edge1"]["steps"] == []
    assert across["passed"] is False  # an error across clusters fails them


def test_a_verify_report_of_one_cluster_or_of_other_clusters_is_refused():
    with pytest.raises(BadInput, match=r"v\.json is a verify report of one cluster; the spec "
                                       r"sites\.yaml has several \(central, edge1\)"):
        check_verify({"steps": [], "run_id": "x"}, "v.json", SITES)
    with pytest.raises(BadInput, match=r"v\.json covers cluster\(s\) site-a, none of the "
                                       r"spec's \(central, edge1\)"):
        check_verify({"steps": [], "clusters": {"site-a": {}}}, "v.json", SITES)
    check_verify(_verify(), "v.json", SITES)  # this spec's: accepted


def _page_parts(verify: dict | None) -> dict:
    state = _state(quota=64 * MiB)
    from cephstack.plan.make import make_plan

    return {"status": build_status(state, _facts(), SPEC),
            "plan": plan_json(make_plan(SPEC, state)),
            "findings": [Finding("shared-key", "error", "client.a", "<b>two users</b>", "x",
                                 "y")],
            "access": build_access(SPEC, state, verify)}


def _multi(down: str | None = None) -> tuple[Fleet, dict[str, ClusterPage]]:
    runs = {name: ClusterRun(name, part) for name, part in split(SITES).items()}
    if down:
        runs[down].error = ClusterUnreachable(f"cannot reach the cluster of /etc/ceph/{down}.conf",
                                       hint="is a monitor running?")
    pages = {name: ClusterPage(f"fsid-{name}", _page_parts(None)) for name in runs
             if name != down}
    return Fleet(runs), pages


def _sections(page: str) -> dict[str, str]:
    """The page cut at each cluster's and the cross-cluster section."""
    parts = re.split(r'(?=<section class="cluster" id=")', page)
    return {re.match(r'<section class="cluster" id="([^"]+)"', p).group(1): p
            for p in parts[1:]}


def test_the_page_has_an_overview_and_a_section_per_cluster():
    multi, pages = _multi()
    page = clusters_html(generated="2026-11-25 10:00:00 +0000", spec=SITES, multi=multi,
                         pages=pages, verify=_verify(), verify_source="v.json")
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert "<title>cephstack report: 2 clusters (central, edge1)</title>" in page
    overview = page.split('<section id="overview">')[1].split("</section>")[0]
    assert "2 clusters, all read." in overview
    assert '<a href="#cluster-central">central</a>' in overview
    assert '<span class="good">passed (2 steps)</span>' in overview  # central's verify
    assert '<span class="bad">FAILED (1 of 2 steps)</span>' in overview  # edge1's
    sections = _sections(page)
    assert list(sections) == ["cluster-central", "cluster-edge1", "across"]
    for name in ("central", "edge1"):
        body = sections[f"cluster-{name}"]
        assert f"<h2>cluster {name}</h2>" in body and f"fsid-{name}" in body
        for table in ("status-pools", "plan-actions", "audit-findings", "verify-steps",
                      "access-matrix", "access-caps"):
            assert f'<table id="cluster-{name}/{table}">' in body
        assert "<h3>Status</h3>" in body and "<h4>Caps</h4>" in body
        assert "&lt;b&gt;two users&lt;/b&gt;" in body  # escaped
    assert "upload image" in sections["cluster-central"]
    assert "boot from image" not in sections["cluster-central"]
    assert "boot from image" in sections["cluster-edge1"]
    assert "full backup [central/rbd-volume]" in sections["across"]
    assert "central-&gt;edge1/cinder-backup" in sections["across"]
    assert "connect with its own keyring" not in sections["cluster-edge1"]
    # Ids are unique on the page.
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_a_cluster_not_read_shows_its_error_and_the_other_is_complete():
    multi, pages = _multi(down="edge1")
    page = clusters_html(generated="now", spec=SITES, multi=multi, pages=pages, verify=None,
                         verify_source=None)
    overview = page.split('<section id="overview">')[1].split("</section>")[0]
    assert "not read: edge1" in overview
    assert "error: cannot reach the cluster of /etc/ceph/edge1.conf" in overview
    sections = _sections(page)
    assert "across" not in sections  # no verify report: no cross-cluster section
    edge1 = sections["cluster-edge1"]
    assert "Could not be read: cannot reach the cluster of /etc/ceph/edge1.conf" in edge1
    assert "Hint: is a monitor running?" in edge1 and "<table" not in edge1
    assert '<table id="cluster-central/status-pools">' in sections["cluster-central"]
    assert result_json(SITES, ["r.html"], multi, pages) == {
        "format_version": "1", "written": ["r.html"],
        "clusters": {"central": {"pools": 4, "error": None},
                     "edge1": {"pools": None, "error": {
                         "kind": "unreachable", "hint": "is a monitor running?",
                         "message": "cannot reach the cluster of /etc/ceph/edge1.conf"}}},
        "failed": ["edge1"]}
    assert multi.exit_code() == 3


def test_a_cluster_the_verify_report_does_not_cover_says_so():
    multi, pages = _multi()
    doc = _verify()
    del doc["clusters"]["edge1"]
    doc["across"]["steps"] = []
    page = clusters_html(generated="now", spec=SITES, multi=multi, pages=pages, verify=doc,
                         verify_source="v.json")
    sections = _sections(page)
    assert "The verify report <code>v.json</code> has no steps of this cluster." in \
        sections["cluster-edge1"]
    assert "No checks across clusters in this report" in sections["across"]
    assert "not in the report" in page.split('<section id="overview">')[1]


def test_one_svg_holds_every_clusters_picture():
    own, _ = split_verify(_verify(), ["central", "edge1"])
    svg = clusters_svg(spec_pictures(SITES, own))
    assert svg == clusters_svg(spec_pictures(SITES, own))  # deterministic
    root = ET.fromstring(svg)
    groups = [g for g in root.findall(f"{SVG}g")]
    assert [g.get("id") for g in groups] == ["cluster-central", "cluster-edge1"]
    offsets = [int(re.search(r"translate\(0,(\d+)\)", g.get("transform")).group(1))
               for g in groups]
    assert offsets[0] == 0 and offsets[1] > 100  # stacked, not drawn over each other
    assert int(root.get("height")) > offsets[1]
    texts = {name: {"".join(t.itertext()) for t in g.iter(f"{SVG}text")}
             for name, g in zip(("central", "edge1"), groups, strict=True)}
    assert {"cluster central", "images", "client.glance"} <= texts["central"]
    assert {"cluster edge1", "images-edge1", "client.nova"} <= texts["edge1"]
    assert "backups" in texts["edge1"] and "backups" not in texts["central"]
    # Each cluster's marks from its own steps: edge1's Nova could write to images-edge1.
    leaks = [ET.tostring(g, encoding="unicode").count('class="leak"') for g in groups]
    assert leaks == [0, 1]


def test_svg_alone_needs_no_cluster(tmp_path, capsys):
    spec = tmp_path / "sites.yaml"
    spec.write_text(TWO_SITE.replace("/etc/ceph/", "/nonexistent/"))
    out = tmp_path / "a.svg"
    assert main(["report", "-f", str(spec), "--svg", str(out), "--output", "json"]) == 0
    ET.fromstring(out.read_text())
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    assert json.loads(capsys.readouterr().out) == {
        "format_version": "1", "written": [str(out)],
        "clusters": {"central": {"pools": None, "error": None},
                     "edge1": {"pools": None, "error": None}}, "failed": []}
    assert main(["report", "-f", str(spec), "--svg", str(out)]) == 0
    assert capsys.readouterr().out == f"Wrote {out}\n"


def test_a_one_cluster_verify_report_is_refused_before_any_cluster(tmp_path, capsys):
    spec = tmp_path / "sites.yaml"
    spec.write_text(TWO_SITE.replace("/etc/ceph/", "/nonexistent/"))
    verify = tmp_path / "v.json"
    verify.write_text(json.dumps({"run_id": "x", "passed": True, "steps": []}))
    html = tmp_path / "r.html"
    assert main(["report", "-f", str(spec), "--html", str(html), "--verify", str(verify)]) == 2
    err = capsys.readouterr().err
    assert f"{verify} is a verify report of one cluster" in err
    assert f"cephstack verify -f {spec} --output json" in err
    assert not html.exists()  # nothing written
