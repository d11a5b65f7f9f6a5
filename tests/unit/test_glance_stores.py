"""Glance images missing from a zone's store (status with several clusters): the stores are
the two-site spec's, the image directories are given. No cluster."""

from __future__ import annotations

from cephstack.day2.status import FleetStatus
from cephstack.day2.stores import store_gaps, stores_of
from cephstack.report.statusviews import fleet_json, fleet_text
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.spec.fleet import split
from cephstack.spec.load import parse_spec
from tests.unit.test_clusters import TWO_SITE
from tests.unit.test_status import SPEC as ONE_CLUSTER

SPEC = parse_spec(TWO_SITE, "two-site.yaml")
CIRROS, UBUNTU, EDGE_ONLY = ("0b4e6a1c-cirros", "7d1f0c2e-ubuntu", "9a2b3c4d-edge-only")


def _found(listed: dict) -> FleetStatus:
    runs = Fleet({n: ClusterRun(n, part) for n, part in split(SPEC).items()})
    return FleetStatus(runs, {}, True, store_gaps(stores_of(SPEC), listed))


def test_the_two_site_stores_are_one_per_cluster_and_one_store_has_none():
    assert stores_of(SPEC) == [("central", "central", "images"),
                               ("edge1", "edge1", "images-edge1")]
    assert stores_of(ONE_CLUSTER) == [] and stores_of(None) == []


def test_an_image_only_in_the_central_store_is_listed_for_the_edge_zone():
    found = _found({"central": {CIRROS, UBUNTU}, "edge1": {CIRROS, EDGE_ONLY}})
    gaps = {g.store: g.missing for g in found.store_gaps}
    assert gaps == {"central": (EDGE_ONLY,), "edge1": (UBUNTU,)}
    text = fleet_text(found)
    edge = next(line for line in text.splitlines() if line.startswith("Glance store edge1"))
    assert UBUNTU in edge and CIRROS not in edge
    assert "glance image-import <id> --stores edge1 --import-method copy-image" in edge
    doc = fleet_json(found)
    assert {s["store"]: s["missing_images"] for s in doc["glance_stores"]} == {
        "central": [EDGE_ONLY], "edge1": [UBUNTU]}


def test_stores_alike_say_nothing_and_a_store_not_read_says_so():
    assert not [line for line in fleet_text(_found({"central": {CIRROS}, "edge1": {CIRROS}}))
                .splitlines() if line.startswith("Glance store")]
    found = _found({"central": {CIRROS}, "edge1": None})
    assert [(g.store, g.read, g.missing) for g in found.store_gaps] == [
        ("central", True, ()), ("edge1", False, ())]
    assert "Glance store edge1: pool images-edge1 on edge1 not read" in fleet_text(found)


def test_mirrored_images_by_mode_in_openstack_terms():
    from cephstack.day2.mirrorstatus import MirroredImage, entries_behind, summary_line

    images = [MirroredImage("volume-1", "journal", False, "replaying", 3),
              MirroredImage("volume-2", "journal", False, "replaying", 0),
              MirroredImage("disk-1", "snapshot", True, "stopped")]
    line = summary_line("edge1", "volume", images)
    assert line == ("Mirrored: edge1/volume: 2 Cinder replicated volumes (journal): 0 primary "
                    "here, 2 replayed here (replaying 2), at most 3 journal entries behind; "
                    "1 snapshot-mirrored images (schedule): 1 primary here")
    found = _found({"central": set(), "edge1": set()})
    found.mirrored[("edge1", "volume")] = images
    assert line in fleet_text(found)
    assert [i["mode"] for i in fleet_json(found)["mirrored"]["edge1/volume"]] == [
        "journal", "journal", "snapshot"]
    assert entries_behind('replaying, {"entries_behind_primary":3}') == 3
    assert entries_behind("stopped") is None and entries_behind("replaying, {bad") is None
