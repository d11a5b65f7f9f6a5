"""The pure mirroring planner: facts of both sides in, typed actions out (no cluster)."""

from __future__ import annotations

import pytest

from cephstack.errors import SpecError
from cephstack.plan.mirroring import (
    AddSchedule,
    BootstrapPeer,
    EnableImageMode,
    MirroringFacts,
    PeerFacts,
    SetSiteName,
    SideFacts,
    plan_mirroring,
)

BOTH_WAYS = PeerFacts(both_ways=True, one_way=False)
NONE = PeerFacts(both_ways=False, one_way=False)


def facts(a_name="site-a", b_name="site-b", a_mode="image", b_mode="image", a_peer=BOTH_WAYS,
          b_peer=BOTH_WAYS, schedules=("1h",)) -> MirroringFacts:
    return MirroringFacts(
        SideFacts("site-a", a_name, {"volume": a_mode}, {"volume": a_peer}),
        SideFacts("site-b", b_name, {"volume": b_mode}, {"volume": b_peer}),
        {"volume": tuple(schedules)})


def test_converged_mirroring_plans_nothing():
    assert plan_mirroring(facts(), ["volume"], "60m") == ()


def test_a_fresh_pair_is_planned_in_apply_order_with_the_same_addresses_as_before():
    planned = plan_mirroring(facts("fsid-a", "fsid-b", "disabled", "disabled", NONE, NONE,
                                   ()), ["volume"], "60m")
    assert [type(a) for a in planned] == [SetSiteName, SetSiteName, EnableImageMode,
                                          BootstrapPeer, EnableImageMode, BootstrapPeer,
                                          AddSchedule]
    assert [a.address for a in planned] == [
        "mirror site@site-a", "mirror site@site-b", "mirror volume@site-a: mode image",
        "mirror volume@site-a: peer site-b", "mirror volume@site-b: mode image",
        "mirror volume@site-b: peer site-a", "mirror volume@site-a: schedule 1h"]
    assert planned[0].detail == "site name 'fsid-a' -> 'site-a'"
    assert planned[2].detail == "mirror mode disabled -> image"
    assert planned[3].detail == "peer site-b rx-tx"
    assert planned[-1].detail == "mirror snapshots every 1h"
    assert {a.kind for a in planned} == {"mirroring"}
    assert not any(a.disruptive for a in planned)


def test_a_one_way_or_stale_peer_is_bootstrapped_again():
    one_way = PeerFacts(both_ways=False, one_way=True)
    stale = PeerFacts(both_ways=True, one_way=False, stale="its key is not the one")
    planned = plan_mirroring(facts(a_peer=one_way, b_peer=stale), ["volume"], None)
    assert [(a.address, a.detail) for a in planned] == [
        ("mirror volume@site-a: peer site-b", "peer site-b rx-tx (replaces a one-way peer)"),
        ("mirror volume@site-b: peer site-a",
         "peer site-a bootstrapped again: its key is not the one")]


def test_a_bad_schedule_is_refused():
    with pytest.raises(SpecError, match="mirror schedule"):
        plan_mirroring(facts(), ["volume"], "1s")
