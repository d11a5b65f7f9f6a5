"""CRUSH rules in the spec against a real sandbox of three OSDs (classes hdd, ssd, hdd on
one host): an SSD and an HDD tier created by apply, their pools' PGs on the right OSDs,
re-apply a no-op, and what cannot be (a class no OSD has, a rule changed in place) refused."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from cephstack.sandbox.cluster import Sandbox
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.slow

CLASSES = {0: "hdd", 1: "ssd", 2: "hdd"}  # what Sandbox.up(osds=3) gives
HEAD = ("cluster: {conf: /etc/ceph/ceph.conf, keyring: /etc/ceph/ceph.client.admin.keyring}\n"
        "keyrings: {directory: /var/openstack/ceph}\n")
TIERS = HEAD + """\
crush_rules:
  fast: {device_class: ssd, failure_domain: osd}
  slow: {device_class: hdd, failure_domain: osd}
pools:
  volume-ssd: {crush_rule: fast, size: 1}
  volume-hdd: {crush_rule: slow, size: 2}
services:
  cinder-volume: {user: cinder-volume, pools: [volume-ssd, volume-hdd]}
"""


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("crush")
    box = Sandbox(root / "sandbox")
    try:
        box.up(osds=3)
        yield Cluster(box, root)
    finally:
        box.down()


@pytest.fixture(scope="module")
def applied(three: Cluster):
    spec = three.write_spec("tiers.yaml", TIERS)
    plan = three.cli("plan", "-f", str(spec))
    apply = three.cli("apply", "-f", str(spec), "--yes")
    assert apply.returncode == 0, apply.stdout + apply.stderr
    return spec, plan, apply


def _rules(cluster: Cluster) -> dict[str, dict]:
    with cluster.admin() as conn:
        return {r["rule_name"]: r for r in conn.mon("osd crush rule dump")}


def test_plan_shows_the_rules_to_create_with_their_reach(applied):
    _, plan, _ = applied
    assert plan.returncode == 0, plan.stdout + plan.stderr
    out = plan.stdout
    assert ("  + crush_rule.fast\n      root = default\n      device_class = ssd\n"
            "      failure_domain = osd\n      reaches = \"1 OSD(s), 1 up and in\"") in out
    assert "  + crush_rule.slow" in out and 'reaches = "2 OSD(s), 2 up and in"' in out
    assert out.index("+ crush_rule.slow") < out.index("+ pool.volume-ssd")
    assert "Plan: 2 crush rules to create, 2 pools to create, 1 client to create" in out


def test_apply_creates_the_rules_then_the_pools_on_them(three, applied):
    _, _, apply = applied
    progress = apply.stderr  # one line per step, as it is done
    assert progress.index("+ crush_rule fast: done") < progress.index("+ pool volume-ssd: done")
    rules = _rules(three)
    for name, device_class in (("fast", "ssd"), ("slow", "hdd")):
        steps = rules[name]["steps"]
        assert steps[0]["item_name"] == f"default~{device_class}"
        assert steps[1]["op"] == "choose_firstn" and steps[1]["type"] == "osd"
    with three.admin() as conn:
        pools = {p["pool_name"]: p for p in conn.mon("osd pool ls", detail="detail")}
    assert pools["volume-ssd"]["crush_rule"] == rules["fast"]["rule_id"]
    assert pools["volume-hdd"]["crush_rule"] == rules["slow"]["rule_id"]
    assert (pools["volume-ssd"]["size"], pools["volume-hdd"]["size"]) == (1, 2)


def test_each_pools_pgs_map_only_to_osds_of_its_class(three, applied):
    with three.admin() as conn:
        ids = {str(p["pool_id"]): p["pool_name"]
               for p in conn.mon("osd pool ls", detail="detail")}
        wanted = {"volume-ssd": 32, "volume-hdd": 32}
        deadline = time.monotonic() + 90
        while True:  # the manager reports a new pool's PGs within seconds
            brief = conn.mon("pg dump", dumpcontents=["pgs_brief"])
            stats = brief.get("pg_stats", []) if isinstance(brief, dict) else brief
            by_pool: dict[str, list[dict]] = {}
            for pg in stats:
                by_pool.setdefault(ids.get(pg["pgid"].split(".")[0], "?"), []).append(pg)
            if all(len(by_pool.get(p, [])) == n and all(pg["up"] for pg in by_pool[p])
                   for p, n in wanted.items()):
                break
            assert time.monotonic() < deadline, f"PGs not reported: {by_pool.keys()}"
            time.sleep(1)
        # the monitor's own mapping of objects agrees
        placed = {pool: conn.mon("osd map", pool=pool, object=f"probe-{i}")["up"]
                  for pool in wanted for i in range(4)}
    ssd = {pg_osd for pg in by_pool["volume-ssd"] for pg_osd in pg["up"] + pg["acting"]}
    hdd_sets = [pg["up"] for pg in by_pool["volume-hdd"]]
    assert ssd == {1}
    assert {o for s in hdd_sets for o in s} == {0, 2}
    assert all(sorted(s) == [0, 2] for s in hdd_sets)  # size 2: both HDD OSDs, each PG
    assert all(CLASSES[o] == ("ssd" if pool == "volume-ssd" else "hdd")
               for pool, up in placed.items() for o in up)


def test_reapply_changes_nothing(three, applied):
    spec, _, _ = applied
    again = three.cli("apply", "-f", str(spec), "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes: the cluster matches the spec." in again.stdout
    assert three.cli("plan", "-f", str(spec), "--detailed-exitcode").returncode == 0


def test_a_rule_for_a_class_no_osd_has_is_refused_with_its_numbers(three, applied):
    spec = three.write_spec("nvme.yaml", TIERS.replace(
        "pools:\n", "  nvme: {device_class: nvme, failure_domain: osd}\npools:\n"
        "  volume-nvme: {crush_rule: nvme}\n"))
    plan = three.cli("plan", "-f", str(spec))
    assert plan.returncode == 1, plan.stdout + plan.stderr
    refused = [line for line in plan.stdout.splitlines() if line.startswith("Refused: ")]
    assert any("crush_rule.nvme: no OSD under root 'default' has device class 'nvme' "
               "(its OSDs by class: 2 hdd, 1 ssd)" in r for r in refused), plan.stdout
    assert any("pool.volume-nvme: crush rule 'nvme' reaches no OSD that is up and in "
               "(root 'default', class nvme: 0 OSD(s), 0 up and in)" in r
               for r in refused), plan.stdout
    applied_ = three.cli("apply", "-f", str(spec), "--yes")
    assert applied_.returncode == 1 and "the plan cannot be applied" in applied_.stderr
    assert "nvme" not in _rules(three)


def test_changing_a_rule_is_refused_not_done_in_place(three, applied):
    before = _rules(three)["fast"]
    spec = three.write_spec("host.yaml", TIERS.replace(
        "fast: {device_class: ssd, failure_domain: osd}",
        "fast: {device_class: ssd, failure_domain: host}"))
    plan = three.cli("plan", "-f", str(spec))
    assert plan.returncode == 1, plan.stdout + plan.stderr
    [refused] = [line for line in plan.stdout.splitlines() if line.startswith("Refused: ")]
    for words in ("crush_rule.fast: the cluster's rule 'fast' differs from the spec "
                  "(failure_domain: cluster osd, spec host)", "cannot change a rule in place",
                  "name a new rule (e.g. fast-host)"):
        assert words in refused, refused
    for flags in ((), ("--allow-disruptive",)):
        out = three.cli("apply", "-f", str(spec), "--yes", *flags)
        assert out.returncode == 1 and "the plan cannot be applied" in out.stderr
    assert _rules(three)["fast"] == before
