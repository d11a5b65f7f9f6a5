"""status across clusters, as tables: statuses in, views out (text sections, one JSON
document per cluster, a cluster label on every Prometheus sample). No cluster."""

from __future__ import annotations

import json
import re

from cephstack.day2.status import FleetStatus, build_status
from cephstack.errors import ClusterUnreachable
from cephstack.report.statusviews import (
    clusters_prometheus,
    dumps,
    fleet_json,
    fleet_prometheus,
    fleet_text,
    status_json,
    status_prometheus,
    status_text,
)
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.spec.fleet import split
from cephstack.spec.load import parse_spec
from tests.unit.test_clusters import TWO_SITE
from tests.unit.test_status import SPEC, MiB, _facts, _state

STATUS = build_status(_state(quota=64 * MiB), _facts(), SPEC)


def clusters_text(multi: Fleet, statuses: dict) -> str:
    return fleet_text(FleetStatus(multi, statuses, named=True))


def clusters_json(multi: Fleet, statuses: dict) -> dict:
    return fleet_json(FleetStatus(multi, statuses, named=True))
_LABELLED = re.compile(r'^(cephstack_[a-z_]+)\{cluster="(central|edge1)"(,pool="[^"]*",'
                       r'service="[^"]*")?\} (-?[0-9.e+]+)$')


def _multi(failed: str | None = None) -> Fleet:
    runs = {n: ClusterRun(n, part) for n, part in split(parse_spec(TWO_SITE)).items()}
    if failed:
        runs[failed].error = ClusterUnreachable(f"{failed}: could not connect within 3 s",
                                                hint="is the cluster up?")
    return Fleet(runs)


def test_one_cluster_prometheus_is_the_labelless_exposition():
    assert clusters_prometheus({None: STATUS}) == status_prometheus(STATUS)
    assert "cluster=" not in status_prometheus(STATUS)


def test_every_sample_carries_its_cluster_and_each_metric_is_declared_once():
    text = clusters_prometheus({"central": STATUS, "edge1": STATUS})
    helped: list[str] = []
    seen: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.append(line.split()[2])
        elif not line.startswith("# TYPE "):
            m = _LABELLED.match(line)
            assert m, line
            seen.setdefault(m.group(1), set()).add(m.group(2))
            assert helped[-1] == m.group(1), f"{line}: not with its metric's other samples"
    assert len(helped) == len(set(helped))
    assert all(clusters == {"central", "edge1"} for clusters in seen.values())
    # The metric names are the one-cluster ones, and which clusters were read.
    assert set(seen) == {line.split()[2] for line in status_prometheus(STATUS).splitlines()
                         if line.startswith("# HELP ")} | {"cephstack_cluster_read"}


def test_a_cluster_not_read_keeps_a_sample_an_alert_sees():
    text = clusters_prometheus({"central": STATUS}, ["edge1"])
    assert 'cephstack_cluster_read{cluster="central"} 1' in text.splitlines()
    assert 'cephstack_cluster_read{cluster="edge1"} 0' in text.splitlines()
    assert 'cluster="edge1",pool=' not in text  # no pool samples of a cluster not read
    assert "cephstack_cluster_read" not in clusters_prometheus({None: STATUS})


def test_text_has_a_section_per_cluster_and_a_failed_one_shows_its_error():
    text = clusters_text(_multi("edge1"), {"central": STATUS})
    central, edge1 = text.split("== cluster edge1")
    assert central.startswith("== cluster central (/etc/ceph/central.conf) ==")
    assert "images" in central and "volume" in central
    assert "error: edge1: edge1: could not connect within 3 s" in edge1
    assert text.endswith("Across 2 clusters: central: 4 pool(s); edge1: FAILED.")


def test_json_holds_each_clusters_status_document():
    doc = json.loads(dumps(clusters_json(_multi("edge1"), {"central": STATUS})))
    one = json.loads(dumps(status_json(STATUS)))
    assert doc["clusters"]["central"] == {**one, "error": None}
    assert doc["clusters"]["edge1"] == {"error": {"kind": "unreachable",
                                                  "message": "edge1: could not connect "
                                                  "within 3 s", "hint": "is the cluster up?"}}
    assert doc["failed"] == ["edge1"]
    assert _multi("edge1").exit_code() == 3 and _multi().exit_code() == 0


def test_a_fleet_of_one_shows_exactly_the_one_cluster_views():
    one = FleetStatus(Fleet({"ceph": ClusterRun("ceph", SPEC)}), {"ceph": STATUS}, named=False)
    assert fleet_text(one) == status_text(STATUS)
    assert fleet_json(one) == status_json(STATUS)
    assert fleet_prometheus(one) == status_prometheus(STATUS)


def test_one_cluster_that_cannot_be_reached_fails_as_the_command_did(tmp_path, capsys):
    from cephstack.cli import main

    missing = str(tmp_path / "none.conf")
    for command in (["status"], ["report", "--html", str(tmp_path / "r.html")]):
        assert main([*command, "--conf", missing, "--output", "json"]) == 3
        assert json.loads(capsys.readouterr().out) == {"error": {
            "kind": "unreachable", "message": f"ceph.conf not found: {missing}",
            "hint": "pass --conf or set cluster.conf in the spec"}}
