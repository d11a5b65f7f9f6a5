"""status, the access picture, the HTML report and the alert rules, as tables: facts in,
views out. No cluster."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from cephstack.adopt.access import access_json, access_svg, build_access
from cephstack.adopt.audit import Finding
from cephstack.cli import main
from cephstack.day2.status import (
    HELD,
    LIVE,
    STALE,
    ImageFacts,
    Locker,
    PoolFacts,
    StatusFacts,
    TrashEntry,
    build_status,
    image_budget,
    lock_state,
    parse_blocklist,
)
from cephstack.keyfiles import Secret
from cephstack.plan.state import ClientState, ClusterState, Health
from cephstack.report.html import html_report
from cephstack.report.statusviews import (
    COLUMNS,
    emitted_metrics,
    status_json,
    status_notes,
    status_prometheus,
    status_text,
)
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import parse_spec
from tests.unit.test_plan import converged, pool

ROOT = Path(__file__).parents[2]
SPEC = parse_spec(DEFAULT_SPEC)
MiB, GiB = 1 << 20, 1 << 30
BACKUP = "backup.{}-2222-3333-4444-555555555555.snap.1700000000.{}"


@pytest.mark.parametrize("counts, budget, expected", [
    ({"a": 3, "b": 2}, 10, {"a": 3, "b": 2}),  # everything fits: all opened
    ({"a": 3000, "b": 3, "c": 2, "d": 0}, 1000, {"a": 995, "b": 3, "c": 2, "d": 0}),
    ({"a": 600, "b": 600}, 1000, {"a": 500, "b": 500}),  # fair shares
    ({"a": 601, "b": 600}, 1001, {"a": 501, "b": 500}),
    ({"a": 10}, 0, {"a": 0}),  # --max-images 0: counts only
])
def test_image_budget(counts, budget, expected):
    assert image_budget(counts, budget) == expected
    assert sum(image_budget(counts, budget).values()) <= budget


LOCK = Locker("client.4122", "auto 140185517954224", "127.0.0.1:0/3507576585")


@pytest.mark.parametrize("locker, watchers, exact, ranges, state", [
    (LOCK, ("127.0.0.1:0/3507576585",), (), (), LIVE),  # holder watches: alive
    (LOCK, (), (), (), STALE),  # exclusive lock, no watch: librbd's own "dead owner"
    (LOCK, ("127.0.0.1:0/1",), (), (), STALE),  # someone else watches, not the holder
    (LOCK, ("v2:127.0.0.1:0/3507576585",), (), (), LIVE),  # messenger prefixes ignored
    (LOCK, ("127.0.0.1:0/3507576585",), ("127.0.0.1:0/3507576585",), (), STALE),  # blocklisted
    (LOCK, ("127.0.0.1:0/3507576585",), (), ("127.0.0.0/24",), STALE),  # range blocklist
    (LOCK, ("127.0.0.1:0/3507576585",), (), ("10.0.0.0/8",), LIVE),
    (Locker("client.9", "admin-lock", "10.1.1.1:0/5", True, ""), (), (), (), HELD),  # advisory
    (Locker("client.9", "admin-lock", "10.1.1.1:0/5", True, ""), (), ("10.1.1.1:0/5",), (),
     STALE),
])
def test_lock_state(locker, watchers, exact, ranges, state):
    assert lock_state(locker, watchers, exact, ranges)[0] == state


@pytest.mark.parametrize("out, expected", [
    ('[{"addr":"127.0.0.1:0/18","until":"x"}][]', (("127.0.0.1:0/18",), ())),
    ('[][{"addr":"10.1.2.0:0/24","until":"x"}]', ((), ("10.1.2.0/24",))),
    ([{"addr": "127.0.0.1:0/18"}], (("127.0.0.1:0/18",), ())),  # one array: decoded JSON
    (None, ((), ())),
    ("garbage", ((), ())),
])
def test_parse_blocklist(out, expected):
    assert parse_blocklist(out) == expected


def _state(spec=SPEC, quota=0) -> ClusterState:
    state = converged(spec)
    pools = dict(state.pools)
    pools["volume"] = pool("volume", qb=quota)
    pools["device_health_metrics"] = pool("device_health_metrics", pg=1, apps=("mgr_devicehealth",))
    health = Health("HEALTH_OK", 1, 1, 1, 129, {"active+clean": 129})
    return ClusterState(state.fsid, pools, state.clients, state.keyring_files, osds_in=1,
                        health=health)


def _facts(glance_scanned=None, images_glance=2, vm_read=True) -> StatusFacts:
    clean = {"active+clean": 32}
    glance = glance_scanned if glance_scanned is not None else (
        ImageFacts("img-a", ("snap",), children=(("volume", "volume-1"), ("vm", "u1_disk"),
                                                 ("vm", "u2_disk"))),
        ImageFacts("img-b", ("snap",)))
    return StatusFacts(
        pools={
            "images": PoolFacts("images", stored=20 * MiB, used=20 * MiB, objects=7,
                                max_avail=80 * MiB, pg_states=clean, images=images_glance,
                                provisioned_bytes=2 * GiB, snapshots=2, scanned=glance),
            "volume": PoolFacts("volume", stored=48 * MiB, used=48 * MiB, objects=14,
                                max_avail=4 * GiB, quota_bytes=64 * MiB, pg_states=clean,
                                images=2, snapshots=3, scanned=(
                                    ImageFacts("volume-1"),
                                    ImageFacts("volume-2", (BACKUP.format("11111111", 1),
                                                            BACKUP.format("11111112", 2),
                                                            BACKUP.format("11111113", 3))))),
            "backups": PoolFacts("backups", max_avail=4 * GiB, pg_states=clean, images=0,
                                 snapshots=0),
            "vm": PoolFacts("vm", stored=4 * MiB, used=4 * MiB, objects=9,
                            max_avail=4 * GiB, pg_states=clean, images=4, snapshots=0,
                            trash=(TrashEntry("old_disk", "USER", None,
                                              "2026-12-01 10:00:00"),), scanned=(
                                ImageFacts("u1_disk", watchers=("127.0.0.1:0/1",),
                                           lockers=(Locker("client.1", "auto 1",
                                                           "127.0.0.1:0/1"),)),
                                ImageFacts("u2_disk", lockers=(Locker("client.2", "auto 2",
                                                                      "127.0.0.1:0/2"),)),
                                ImageFacts("u3_disk", lockers=(Locker("client.3", "auto 3",
                                                                      "127.0.0.1:0/3"),)),
                                ImageFacts("u4_disk"))) if vm_read else
            PoolFacts("vm", max_avail=4 * GiB, pg_states={"peering": 2, "active+clean": 30},
                      read=False, note="2 PGs not active: RBD reads skipped"),
        },
        blocklist=("127.0.0.1:0/3",), capacity={"total_bytes": 4 * GiB,
                                                "total_avail_bytes": 3 * GiB},
        taken_at=1700000000.0, seconds=0.25, mon_commands=9, images_opened=10, max_images=1000)


def test_build_status_field_by_field():
    status = build_status(_state(quota=64 * MiB), _facts(), SPEC)
    pools = {p.name: p for p in status.pools}
    assert list(pools) == ["backups", "images", "vm", "volume"]  # not device_health_metrics
    assert {n: p.services for n, p in pools.items()} == {
        "backups": ("cinder-backup",), "images": ("glance",), "vm": ("nova",),
        "volume": ("cinder-volume",)}
    assert status.images_pool == "images"
    assert {n: p.clones for n, p in pools.items()} == {"backups": 0, "images": 0, "vm": 2,
                                                      "volume": 1}
    assert pools["images"].images_with_clones == 1 and pools["images"].clones_complete
    vm = pools["vm"]
    assert [(lk.image, lk.state) for lk in vm.locks] == [
        ("u2_disk", STALE), ("u3_disk", STALE), ("u1_disk", LIVE)]  # stale first
    assert vm.stale_locks[1].why == "holder blocklisted"
    assert vm.watched_images == 1 and len(vm.trash) == 1
    volume = pools["volume"]
    assert volume.quota_bytes_ratio == 0.75
    assert volume.backup_snapshots == (("volume-2", 3),)
    assert volume.backup_pile_ups == (("volume-2", 3),)
    assert pools["images"].fill_ratio == 0.2
    assert pools["backups"].backup_snapshots == ()  # not a Cinder volume pool
    assert status.services["nova"] == ("client.nova", ("vm",))


def test_without_a_spec_services_are_recognised():
    status = build_status(_state(quota=64 * MiB), _facts(), None)
    assert {p.name: p.services for p in status.pools}["vm"] == ("nova",)
    assert status.images_pool == "images"


def test_a_sampled_glance_pool_makes_clone_counts_lower_bounds():
    status = build_status(_state(), _facts(images_glance=5), SPEC)
    pools = {p.name: p for p in status.pools}
    assert pools["images"].sampled and not pools["vm"].clones_complete
    row = dict(zip(COLUMNS, next(r for r in _rows(status_text(status)) if r[0] == "vm"),
                   strict=True))
    assert row["CLONES"] == ">=2"
    assert "Sampled: pool images: 2 of 5 images opened" in status_text(status)


def _rows(text: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("POOL "))
    out = []
    for line in lines[start:]:
        if not line.strip():
            break
        out.append(re.split(r"\s{2,}", line.strip()))
    return out


def test_status_text_one_line_per_pool():
    text = status_text(build_status(_state(quota=64 * MiB), _facts(), SPEC))
    rows = _rows(text)
    assert rows[0] == list(COLUMNS)
    table = {r[0]: dict(zip(COLUMNS, r, strict=True)) for r in rows[1:]}
    assert list(table) == ["backups", "images", "vm", "volume"]
    assert table["volume"] == {
        "POOL": "volume", "SERVICE": "cinder-volume", "STORED": "48.0 MiB",
        "MAX AVAIL": "4.0 GiB", "FULL": "1%", "QUOTA": "64.0 MiB (75%)", "IMAGES": "2",
        "SNAPS": "3", "CLONES": "1", "TRASH": "0", "WATCHED": "0", "LOCKS": "0", "STALE": "0",
        "BACKUP SNAPS": "3 (1 piling)", "PGS": "32 active+clean"}
    assert table["vm"]["LOCKS"] == "3" and table["vm"]["STALE"] == "2"
    assert table["vm"]["TRASH"] == "1" and table["vm"]["WATCHED"] == "1"
    assert table["images"]["FULL"] == "20%" and table["backups"]["BACKUP SNAPS"] == "-"
    assert text.splitlines()[0] == "Cluster: HEALTH_OK, 1 OSD (1 up, 1 in), 129 PGs active+clean"
    assert ("Stale lock: vm/u2_disk held by client.2 at 127.0.0.1:0/2: holder no longer "
            "watches the image (librbd breaks this lock)") in text
    assert "Backup snapshots piling up: volume/volume-2 has 3" in text


def test_a_pool_whose_pgs_are_not_active_is_not_read():
    status = build_status(_state(), _facts(vm_read=False), SPEC)
    vm = {p.name: p for p in status.pools}["vm"]
    assert not vm.read and vm.pgs_inactive == 2 and vm.images is None
    row = next(r for r in _rows(status_text(status)) if r[0] == "vm")
    assert row[COLUMNS.index("IMAGES")] == "-" and row[-1] == "30 active+clean, 2 peering"
    assert "Not read: pool vm: 2 PGs not active: RBD reads skipped" in status_text(status)
    assert 'cephstack_pool_read{pool="vm",service="nova"} 0' in status_prometheus(status)
    assert 'cephstack_pool_images{pool="vm"' not in status_prometheus(status)


def test_status_json_has_everything():
    data = status_json(build_status(_state(quota=64 * MiB), _facts(), SPEC))
    assert data["format_version"] == "1" and data["images_pool"] == "images"
    assert data["reads"] == {"mon_commands": 9, "images_opened": 10, "max_images": 1000}
    volume = next(p for p in data["pools"] if p["name"] == "volume")
    assert volume["quota"] == {"max_bytes": 64 * MiB, "max_objects": 0, "bytes_ratio": 0.75,
                               "objects_ratio": None}
    assert volume["pgs"] == {"total": 32, "inactive": 0, "by_state": {"active+clean": 32}}
    assert volume["backup_snapshots"] == [{"volume": "volume-2", "count": 3}]
    vm = next(p for p in data["pools"] if p["name"] == "vm")
    assert vm["stale_locks"] == 2 and vm["locks"][0]["address"] == "127.0.0.1:0/2"
    assert vm["trash"] == {"entries": 1, "images": [{"name": "old_disk", "source": "USER",
                                                     "deferred_until": None,
                                                     "deleted_at": "2026-12-01 10:00:00"}],
                           "oldest_deleted_at": "2026-12-01 10:00:00"}
    assert ("Trash: pool vm holds 1 deleted image(s), the oldest (old_disk) since "
            "2026-12-01 10:00:00") in status_notes(build_status(_state(quota=64 * MiB),
                                                                 _facts(), SPEC))
    assert vm["watchers"] == [{"image": "u1_disk", "address": "127.0.0.1:0/1"}]
    assert data["cluster"]["status"] == "HEALTH_OK"


_SAMPLE = re.compile(r'^(cephstack_[a-z_]+)(\{pool="[^"\\]*(?:\\.[^"\\]*)*",'
                     r'service="[^"]*"\})? (-?[0-9.e+]+)$')


def test_prometheus_exposition_format():
    text = status_prometheus(build_status(_state(quota=64 * MiB), _facts(), SPEC))
    assert text.endswith("\n")
    helped, typed = set(), set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            assert line.split()[3] == "gauge"
            typed.add(line.split()[2])
        else:
            m = _SAMPLE.match(line)
            assert m, line
            assert m.group(1) in typed and m.group(1) in helped
    assert typed <= emitted_metrics()
    assert 'cephstack_pool_quota_bytes{pool="volume",service="cinder-volume"} 67108864' in text
    assert 'cephstack_pool_stale_locks{pool="vm",service="nova"} 2' in text
    assert 'cephstack_pool_max_avail_bytes{pool="images",service="glance"} 83886080' in text
    assert "cephstack_status_timestamp_seconds 1700000000.0" in text
    # Only Cinder volume pools have a backup pile-up metric.
    assert re.findall(r"cephstack_pool_backup_snapshot_pile_ups\{pool=\"(\w+)\"", text) == [
        "volume"]


def test_prometheus_label_values_are_escaped():
    facts = _facts()
    odd = 'we"ird\\pool'
    facts.pools[odd] = PoolFacts(odd, pg_states={}, images=0, snapshots=0)
    state = _state()
    state.pools[odd] = pool(odd)
    text = status_prometheus(build_status(state, facts, None))
    assert 'pool="we\\"ird\\\\pool"' in text


_PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "bool",
                 "group_left", "group_right", "offset"}


def test_alert_rules_use_only_metrics_status_emits():
    rules = yaml.safe_load((ROOT / "deploy/prometheus/cephstack-alerts.yml").read_text())
    found = [r for g in rules["groups"] for r in g["rules"]]
    assert {r["alert"] for r in found} >= {"CephstackPoolQuotaNearFull", "CephstackPoolNearFull",
                                            "CephstackStaleRbdLock", "CephstackStatusStale"}
    for rule in found:
        expr = rule["expr"]
        assert rule.get("for") and rule["labels"]["severity"] in ("warning", "critical")
        names = {m.group(1) for m in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?", expr)
                 if not m.group(2) and m.group(1) not in _PROMQL_WORDS}
        assert names and names <= emitted_metrics(), (rule["alert"], names)
        # A quota ratio fires only where a quota is set: x / 0 is +Inf, which would.
        for quota in re.findall(r"/\s*(cephstack_pool_quota_\w+)", expr):
            assert re.search(rf"and\s+{quota}\s*>\s*0", expr), rule["alert"]
        if rule["alert"] == "CephstackPoolNearFull":
            assert "cephstack_pool_max_avail_bytes" in expr


def _verify_report() -> dict:
    steps = [{"service": "glance", "name": "upload", "result": "pass", "seconds": 0.1},
             {"service": "glance", "name": "must not write to pool vm", "result": "pass",
              "seconds": 0.01},
             {"service": "nova", "name": "must not write to pool volume", "result": "fail",
              "seconds": 0.01, "error": "", "cause": "client.nova can write to pool volume",
              "fix": "cephstack apply"},
             {"service": "nova", "name": "must not read the key of client.glance",
              "result": "pass", "seconds": 0.01},
             {"service": "nova", "name": "must not create pools", "result": "pass",
              "seconds": 0.01}]
    return {"format_version": "1", "run_id": "abcd0123", "passed": False, "steps": steps,
            "takeover_seconds": 30.5, "cleanup": []}


def test_access_matrix_from_compiled_caps():
    picture = build_access(SPEC, None, _verify_report())
    data = access_json(picture)
    users = {u["entity"]: u for u in data["users"]}
    assert data["source"] == "spec" and data["pools"] == ["backups", "images", "vm", "volume"]
    assert users["client.nova"]["pools"] == {"images": "r", "vm": "rwx"}
    assert users["client.cinder-volume"]["pools"] == {"images": "r", "volume": "rwx"}
    assert users["client.glance"]["pools"] == {"images": "rwx"}
    assert all(u["blocklist"] and not u["read_keys"] and not u["all_pools"]
               for u in users.values())
    assert users["client.cinder-volume"]["hosts"] == ["controller", "backup", "compute",
                                                      "admin"]
    assert users["client.nova"]["hosts"] == ["compute", "admin"]
    assert users["client.glance"]["least_privilege"] == {
        "vm": [{"check": "must not write to pool vm", "result": "pass"}]}
    assert users["client.nova"]["least_privilege"]["volume"][0]["result"] == "fail"
    assert users["client.nova"]["least_privilege"]["keys"][0]["result"] == "pass"
    assert users["client.nova"]["least_privilege"]["admin"][0]["check"] == \
        "must not create pools"
    assert users["client.glance"]["workflows"] == {"passed": 1, "run": 1}


@pytest.mark.parametrize("caps, blocklist, read_keys, all_pools, images", [
    ({"mon": "profile rbd", "osd": "profile rbd pool=images"}, True, False, False, "rwx"),
    ({"mon": "allow r", "osd": "allow rwx pool=images"}, False, False, False, "rwx"),
    ({"mon": "allow *", "osd": "allow *"}, True, True, True, "rwx"),
    ({"mon": "allow rx", "osd": "allow r"}, False, True, True, "r"),
    ({"mon": "allow r, allow command \"osd blocklist\"", "osd": "profile rbd-read-only"},
     True, False, True, "r"),
    ({"mon": "allow r, allow command \"auth get\"", "osd": "allow rwx pool=vm"},
     False, True, False, ""),
])
def test_access_flags_from_caps(caps, blocklist, read_keys, all_pools, images):
    spec = parse_spec(DEFAULT_SPEC.replace("clients: {}", "clients:\n  tool: {caps: "
                                           + yaml.safe_dump(caps, default_flow_style=True,
                                                            width=1000).strip() + "}"))
    user = next(u for u in build_access(spec).users if u.entity == "client.tool")
    assert (user.blocklist, user.read_keys, user.all_pools) == (blocklist, read_keys, all_pools)
    assert user.cells["images"].flags == images


def test_access_without_a_spec_uses_the_cluster_caps():
    state = _state()
    state.clients["client.legacy"] = ClientState("client.legacy", {
        "mon": "allow r", "osd": "allow rwx pool=vm"}, Secret("k"))
    users = {u.entity: u for u in build_access(None, state).users}
    assert users["client.legacy"].cells["vm"].flags == "rwx"
    assert not users["client.legacy"].blocklist and users["client.legacy"].hosts == ()
    assert users["client.nova"].services == ("nova",)


def test_access_svg_is_deterministic_wellformed_xml():
    picture = build_access(SPEC, None, _verify_report())
    svg = access_svg(picture)
    assert svg == access_svg(build_access(SPEC, None, _verify_report()))
    root = ET.fromstring(svg)
    texts = {"".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"client.nova", "images", "compute", "controller"} <= texts
    assert 'class="leak"' in svg  # nova -> volume: a write verify found allowed
    assert svg.count('class="write"') == 4 and svg.count('class="read"') == 2


def _page(**overrides) -> str:
    from cephstack.plan.make import make_plan
    from cephstack.report.views import plan_json

    state = _state(quota=64 * MiB)
    status = build_status(state, _facts(), SPEC)
    args = dict(generated="2026-11-25 10:00:00 +0000", fsid="f5-1d", spec_path="spec.yaml",
                status=status, plan=plan_json(make_plan(SPEC, state)),
                findings=[Finding("shared-key", "error", "client.a, client.b",
                                  "<script>alert(1)</script>", "x", "y")],
                verify=_verify_report(), verify_source="v.json",
                access=build_access(SPEC, state, _verify_report()))
    return html_report(**{**args, **overrides})


def test_html_report_is_self_contained_and_escaped():
    page = _page()
    for table in ("status-pools", "plan-actions", "audit-findings", "verify-steps",
                  "access-matrix", "access-caps"):
        assert f'<table id="{table}">' in page
    assert "<svg" in page and "http" not in page and "url(" not in page  # nothing fetched
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "@media print" in page
    assert "key-of-client" not in page  # the state's keys (see test_plan.converged)
    assert "&#10007; allowed: must not write to pool volume" in page


def test_html_report_without_spec_or_verify():
    page = _page(plan=None, verify=None, spec_path=None)
    assert "No spec given" in page and "No verify report given" in page
    assert '<table id="plan-actions">' in page and '<table id="verify-steps">' in page


@pytest.mark.parametrize("argv", [["status", "--help"], ["report", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: cephstack" in out and "exit codes:" in out


def test_status_views_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as e:
        main(["status", "--prometheus", "--output", "json"])
    assert e.value.code == 2


def test_report_needs_something_to_write(tmp_path, capsys):
    assert main(["report", "--conf", str(tmp_path / "none.conf")]) == 2
    assert "nothing to write" in capsys.readouterr().err


def test_report_svg_from_the_spec_alone(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(DEFAULT_SPEC.replace("/etc/ceph/ceph.conf", "/nonexistent/ceph.conf"))
    out = tmp_path / "a.svg"
    assert main(["report", "-f", str(spec), "--svg", str(out)]) == 0  # no cluster needed
    ET.fromstring(out.read_text())
    assert oct(out.stat().st_mode & 0o777) == "0o644"


def test_an_unreadable_image_is_reported_not_fatal():
    facts = _facts()
    vm = facts.pools["vm"]
    broken = ImageFacts("u9_disk", error="'open image vm/u9_disk' failed: errno 5: EIO")
    facts.pools["vm"] = PoolFacts(**{**vars(vm), "scanned": (*vm.scanned, broken)})
    status = build_status(_state(), facts, SPEC)
    vm_status = {p.name: p for p in status.pools}["vm"]
    assert vm_status.unreadable == (("u9_disk", broken.error),)
    assert len(vm_status.locks) == 3  # the others still count
    assert f"Unreadable: vm/u9_disk: {broken.error}" in status_text(status)
    assert status_json(status)["pools"][2]["unreadable_images"] == [
        {"image": "u9_disk", "error": broken.error}]


def test_views_do_not_load_librados():
    import subprocess
    import sys

    code = ("import sys, cephstack.day2.status, cephstack.report.statusviews, "
            "cephstack.adopt.access, "
            "cephstack.report.html, cephstack.commands.status, cephstack.commands.report; "
            "sys.exit('rados' in sys.modules or 'rbd' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
