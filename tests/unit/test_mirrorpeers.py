"""Telling a mirror peer that no longer reaches its site (cephstack/ceph/mirrorpeers.py)."""

import pytest

from cephstack.ceph.mirrorpeers import addresses, staleness

MONS = {("10.0.0.1", 3300), ("10.0.0.1", 6789), ("10.0.0.2", 3300)}


@pytest.mark.parametrize(("text", "expected"), [
    ("[v2:10.0.0.1:3300/0,v1:10.0.0.1:6789/0]", {("10.0.0.1", 3300), ("10.0.0.1", 6789)}),
    ("v2:127.0.0.1:40123", {("127.0.0.1", 40123)}),
    ("10.0.0.1,10.0.0.2", {("10.0.0.1", None), ("10.0.0.2", None)}),
    ("[v2:[::1]:3300/0,v1:[::1]:6789/0]", {("::1", 3300), ("::1", 6789)}),
    ("mon1.example.org,mon2.example.org", set()),
    ("", set()),
])
def test_addresses_are_read_from_mon_host_and_address_vectors(text, expected):
    assert addresses(text) == expected


def test_a_peer_that_reaches_its_site_is_not_stale():
    attrs = {"mon_host": "[v2:10.0.0.2:3300/0]", "key": "K"}
    assert staleness(attrs, MONS, "K", "client.rbd-mirror-peer", "edge1") is None
    # One monitor in common is enough: monitors come and go.
    attrs = {"mon_host": "10.0.0.9:3300,10.0.0.1", "key": "K"}
    assert staleness(attrs, MONS, "K", "client.rbd-mirror-peer", "edge1") is None


def test_monitors_elsewhere_make_a_peer_stale():
    attrs = {"mon_host": "[v2:10.0.0.1:4000/0]", "key": "K"}  # same host, another cluster
    assert staleness(attrs, MONS, "K", "client.p", "edge1") == \
        "its monitor addresses are not edge1's"


def test_a_changed_or_missing_key_makes_a_peer_stale_and_is_never_shown():
    attrs = {"mon_host": "10.0.0.1:3300", "key": "OLDKEY"}
    reason = staleness(attrs, MONS, "NEWKEY", "client.p", "edge1")
    assert reason == "its key is not the one client.p has on edge1"
    assert "OLDKEY" not in reason and "NEWKEY" not in reason
    assert staleness(attrs, MONS, None, "client.p", "edge1") == \
        "its user client.p does not exist on edge1"


def test_what_cannot_be_told_is_not_called_stale():
    # Monitors by host name, and a peer without a key: nothing to compare.
    assert staleness({"mon_host": "mon1.example.org", "key": "K"}, MONS, "K", "c", "s") is None
    assert staleness({"mon_host": "10.0.0.1"}, MONS, None, "c", "s") is None
