"""plan and apply over a fleet, the parts without a cluster: when there is nothing to do,
when apply asks, and apply --plan's check of a saved plan (one cluster's view, several's)."""

from __future__ import annotations

from dataclasses import replace

from cephstack.plan.make import CreatePool, Plan
from cephstack.report.planviews import OneCluster, SeveralClusters
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.session.planapply import ApplyOptions, needs_confirming, nothing_to_do
from cephstack.spec.load import PoolSpec

CHANGE = Plan((CreatePool(PoolSpec("images")),), fingerprint="f-change")
EMPTY = Plan((), fingerprint="f-empty")


def fleet(*plans: Plan, named: bool = True) -> Fleet:
    runs = {f"c{i}": ClusterRun(f"c{i}", None, plan=p, named=named)
            for i, p in enumerate(plans)}
    return Fleet(runs, named=named)


def test_nothing_to_do_is_no_change_and_no_refusal():
    assert nothing_to_do(fleet(EMPTY, named=False))
    assert nothing_to_do(fleet(EMPTY, EMPTY))
    assert not nothing_to_do(fleet(EMPTY, CHANGE))
    # Refused with nothing to do is not converged: apply goes on and refuses it.
    assert not nothing_to_do(fleet(replace(EMPTY, refusals=("no OSD",)), named=False))


def test_apply_asks_only_when_something_would_be_applied():
    assert needs_confirming(fleet(CHANGE, named=False), ApplyOptions())
    refused = replace(CHANGE, refusals=("no OSD",))
    assert not needs_confirming(fleet(refused, named=False), ApplyOptions())
    assert needs_confirming(fleet(refused, CHANGE), ApplyOptions())
    multi = fleet(EMPTY, EMPTY)
    multi.mirroring_pending = "once the pools exist"
    assert needs_confirming(multi, ApplyOptions())


def test_a_saved_plan_of_one_cluster_checks_its_fingerprint():
    view = OneCluster(None, fleet(CHANGE, named=False))
    assert view.stale({"fingerprint": "f-change"}, "p.json") is None
    stale = view.stale({"fingerprint": "f-old"}, "p.json")
    assert stale.message == ("the cluster changed since p.json was made (state f-old, now "
                          "f-change); nothing applied")


def test_a_saved_plan_of_several_clusters_checks_each():
    saved = {"fingerprint": "x", "clusters": {"c0": {"plan": {"fingerprint": "f-change"}},
                                              "c1": {"plan": {"fingerprint": "f-old"}}}}
    view = SeveralClusters(None, fleet(CHANGE, EMPTY))
    assert view.stale(saved, "p.json").message == ("c1 changed since p.json was made (or is "
                                                "not in it); nothing applied")
    saved["clusters"]["c1"]["plan"]["fingerprint"] = "f-empty"
    assert view.stale(saved, "p.json") is None
