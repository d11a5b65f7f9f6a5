"""fence, unfence and locks across clusters without a cluster: which clusters a command
runs on, the exit code, and the per-cluster text and JSON around the one-cluster views."""

from __future__ import annotations

import json

import pytest

from cephstack.cli import main
from cephstack.commands.fence import chosen, per_cluster
from cephstack.day2.fence import FenceResult, LockOutcome, parse_target, plan_fence, plan_unfence
from cephstack.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    ClusterUnreachable,
    SeveralClustersUsage,
)
from cephstack.report.fenceviews import (
    ClusterPart,
    clusters_json,
    clusters_text,
    combined_exit_code,
    fence_json,
    fence_summary,
    fence_text,
    unfence_summary,
)
from cephstack.spec.load import parse_spec
from tests.unit.test_clusters import TWO_SITE
from tests.unit.test_fence import DEAD, UUID, _status

ONE = "pools: {images: {}}\nservices: {glance: {user: g, pool: images}}\n"


class _Args:
    def __init__(self, only=None):
        self.only_clusters = only


@pytest.mark.parametrize("codes, code", [
    ([0, 0], 0),
    ([EXIT_UNREACHABLE, 0], EXIT_UNREACHABLE),  # the failed cluster's own code
    ([EXIT_UNREACHABLE, EXIT_UNREACHABLE], EXIT_UNREACHABLE),
    ([EXIT_UNREACHABLE, EXIT_FAILED], EXIT_FAILED),  # several kinds: 1
    ([0, EXIT_FAILED], EXIT_FAILED),  # a lock that could not be broken
    ([], 0),
])
def test_combined_exit_code(codes, code):
    assert combined_exit_code(codes) == code


def test_chosen_clusters_keep_the_specs_order_and_refuse_unknown_names():
    spec = parse_spec(TWO_SITE, "two.yaml")
    assert list(chosen(spec, None)) == ["central", "edge1"]
    assert list(chosen(spec, ["edge1", "central", "edge1"])) == ["central", "edge1"]
    edge = chosen(spec, ["edge1"])
    assert list(edge) == ["edge1"] and "images-edge1" in edge["edge1"].pools
    assert "images" not in edge["edge1"].pools  # only that cluster's pools are scanned
    with pytest.raises(SeveralClustersUsage) as e:
        chosen(spec, ["edge9", "central"])
    assert "--cluster edge9: no such cluster in two.yaml" in e.value.message
    assert e.value.hint == "its clusters: central, edge1"
    assert e.value.exit_code == EXIT_BAD_INPUT


def test_per_cluster_only_for_a_clusters_spec_and_cluster_needs_one():
    assert per_cluster(_Args(), parse_spec(TWO_SITE, "two.yaml")) is True
    assert per_cluster(_Args(["edge1"]), parse_spec(TWO_SITE, "two.yaml")) is True
    assert per_cluster(_Args(), parse_spec(ONE, "one.yaml")) is False  # one cluster: unchanged
    assert per_cluster(_Args(), None) is False
    with pytest.raises(SeveralClustersUsage, match="the spec one.yaml has one cluster"):
        per_cluster(_Args(["ceph"]), parse_spec(ONE, "one.yaml"))
    with pytest.raises(SeveralClustersUsage, match="no spec given"):
        per_cluster(_Args(["edge1"]), None)


def _parts() -> list[ClusterPart]:
    plan = plan_fence((parse_target(DEAD),), _status(), {})
    result = FenceResult(blocklisted={DEAD: "2026-11-25T19:00:00"}, locks=[LockOutcome(
        "vm", f"{UUID}_disk", "client.4122", "auto 1", DEAD, freed=True)])
    down = ClusterUnreachable("cannot reach the cluster of /etc/ceph/edge1.conf",
                              hint="is a monitor running?")
    return [ClusterPart("central", "/etc/ceph/central.conf", fence_text(plan, result),
                        fence_json(plan, result), fence_summary(plan, result)),
            ClusterPart("edge1", "/etc/ceph/edge1.conf", error=down)]


def test_text_has_a_section_per_cluster_with_the_one_cluster_view_or_its_error():
    central, edge = _parts()
    text = clusters_text([central, edge])
    assert text.startswith("== cluster central (/etc/ceph/central.conf) ==\n"
                           + central.text + "\n\n== cluster edge1 (/etc/ceph/edge1.conf) ==\n")
    assert "error: edge1: cannot reach the cluster of /etc/ceph/edge1.conf\n" in text
    assert "hint: is a monitor running?" in text
    assert text.endswith("Across 2 cluster(s): central: fenced 1 address(es), freed 1 "
                         "image(s); edge1: FAILED.")
    assert [p.code for p in (central, edge)] == [0, EXIT_UNREACHABLE]


def test_json_keys_each_clusters_document_by_name_with_its_error():
    central, edge = _parts()
    doc = clusters_json([central, edge], dry_run=False)
    assert doc["format_version"] == "1" and doc["dry_run"] is False
    assert doc["failed"] == ["edge1"]
    assert doc["clusters"]["central"] == {**central.document, "error": None}
    assert doc["clusters"]["central"]["freed"] == [f"vm/{UUID}_disk"]
    assert doc["clusters"]["edge1"] == {"error": {
        "kind": "unreachable", "message": "cannot reach the cluster of /etc/ceph/edge1.conf",
        "hint": "is a monitor running?"}}
    json.dumps(doc)


def test_summaries():
    plan = plan_fence((parse_target("10.0.0.5"),), _status(), {})
    assert fence_summary(plan, None) == "would blocklist 1 address(es), break 1 lock(s)"
    broken = FenceResult(blocklisted={"10.0.0.5:0/0": "u"}, locks=[LockOutcome(
        "vm", "x_disk", "client.1", "auto 1", DEAD, note="errno 5")])
    assert fence_summary(plan, broken) == ("fenced 1 address(es), freed 0 image(s), "
                                           "1 lock(s) not broken")
    items = plan_unfence((parse_target("10.0.0.5"), parse_target("10.0.0.6")),
                         {"10.0.0.5:0/0": "u"})
    assert unfence_summary(items, False) == "would remove 1 blocklist entr(ies)"
    assert unfence_summary(items, True) == "removed 1 blocklist entr(ies)"


@pytest.mark.parametrize("command", ["fence", "unfence", "locks"])
def test_help_names_cluster(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert "--cluster NAME" in capsys.readouterr().out


@pytest.mark.parametrize("argv, says", [
    (["fence", "10.0.0.5", "--cluster", "edge9"], "--cluster edge9: no such cluster"),
    (["locks", "--conf", "/etc/ceph/edge1.conf"], "--conf: the spec"),
    (["unfence", "10.0.0.5", "--keyring", "k"], "--keyring: the spec"),
])
def test_bad_choices_exit_2_before_any_connection(argv, says, tmp_path, capsys):
    spec = tmp_path / "two.yaml"
    spec.write_text(TWO_SITE)
    assert main([*argv, "-f", str(spec)]) == EXIT_BAD_INPUT
    assert says in capsys.readouterr().err


def test_cluster_without_a_clusters_spec_exits_2(tmp_path, capsys):
    assert main(["locks", "--cluster", "edge1", "--conf", "/nonexistent.conf"]) == 2
    assert "--cluster edge1: no spec given" in capsys.readouterr().err
