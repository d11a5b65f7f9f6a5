"""What fence refuses to cut off (issue 18), without a cluster: addresses that are no host
(never, --force or not), the daemons' own addresses read from the maps (unless --force);
and names holding control characters escaped in fence's and locks' text."""

from __future__ import annotations

import pytest

from cephstack.cli import main
from cephstack.day2.fence import parse_target, plan_fence
from cephstack.day2.fenceguard import (
    daemon_addresses,
    daemon_conflicts,
    never_fenced,
)
from cephstack.day2.fencing import refuse_never_fenced
from cephstack.day2.status import ImageFacts, Locker, PoolFacts, StatusFacts, build_status
from cephstack.errors import EXIT_BAD_INPUT, BadTarget
from cephstack.report.fenceviews import fence_json, fence_text, locks_text
from tests.unit.test_status import SPEC, _state

# As a Pacific sandbox's `mon dump`, `mgr dump`, `osd dump`, `fs dump` and `service dump`
# show them (trimmed to what is read).
MONS = {"mons": [{"name": "a", "public_addrs": {"addrvec": [
    {"type": "v2", "addr": "10.0.0.1:3300", "nonce": 0},
    {"type": "v1", "addr": "10.0.0.1:6789", "nonce": 0}]}, "addr": "10.0.0.1:6789/0"}]}
MGRS = {"active_name": "x", "active_addrs": {"addrvec": [
    {"type": "v2", "addr": "10.0.0.2:6808", "nonce": 21407},
    {"type": "v1", "addr": "10.0.0.2:6809", "nonce": 21407}]},
    "active_clients": [{"addrvec": [{"type": "v2", "addr": "10.0.0.2:0", "nonce": 777}]},
                       {"name": "rbd_support", "addrvec": [
                           {"type": "v2", "addr": "10.0.0.2:0", "nonce": 778}]}],
    "standbys": [{"gid": 5, "name": "y"}]}
OSDS = {"osds": [{"osd": 0, "public_addrs": {"addrvec": [
    {"type": "v2", "addr": "10.0.0.3:6800", "nonce": 21455}]}, "cluster_addrs": {"addrvec": [
        {"type": "v2", "addr": "192.168.0.3:6802", "nonce": 21455}]}}]}
FS = {"filesystems": [{"mdsmap": {"info": {"gid_4200": {"name": "a", "addrs": {"addrvec": [
    {"type": "v2", "addr": "10.0.0.4:6800", "nonce": 31}]}}}}}], "standbys": [
    {"name": "b", "addrs": {"addrvec": [{"type": "v2", "addr": "10.0.0.8:6800", "nonce": 9}]}}]}
SERVICES = {"services": {
    "osd": {"daemons": {"summary": "", "0": {"addr": "(unrecognized address family 0)/0"}}},
    "rbd-mirror": {"daemons": {"summary": "", "4111": {
        "addr": "10.0.0.6:0/2944327876", "metadata": {"id": "site-a"}}}},
    "rgw": {"daemons": {"summary": "", "4300": {
        "addr": "[fe80::7]:0/55", "metadata": {"id": "gw1"}}}}}}


def _daemons():
    return daemon_addresses(MONS, MGRS, OSDS, FS, SERVICES)


def test_every_daemon_of_the_maps_is_found():
    found = {(d.daemon, d.address) for d in _daemons()}
    assert ("mon.a", "10.0.0.1:3300/0") in found and ("mon.a", "10.0.0.1:6789/0") in found
    assert ("mgr.x", "10.0.0.2:6808/21407") in found
    assert ("mgr.x (a client of its modules)", "10.0.0.2:0/777") in found
    assert ("mgr.x (its rbd_support module)", "10.0.0.2:0/778") in found
    assert ("osd.0", "10.0.0.3:6800/21455") in found
    assert ("osd.0", "192.168.0.3:6802/21455") in found  # its cluster network too
    assert ("mds.a", "10.0.0.4:6800/31") in found and ("mds.b", "10.0.0.8:6800/9") in found
    assert ("rbd-mirror.site-a", "10.0.0.6:0/2944327876") in found
    assert ("rgw.gw1", "[fe80::7]:0/55") in found
    assert not [d for d in _daemons() if d.daemon.startswith("osd") and "unrecognized"
                in d.address]


def test_missing_or_odd_maps_name_no_daemon():
    assert daemon_addresses(None, None, None, None, None) == ()
    assert daemon_addresses({"mons": "x"}, [], {"osds": [None]}, {"filesystems": [{}]},
                            {"services": {"rgw": {"daemons": {"1": {"addr": 5}}}}}) == ()


@pytest.mark.parametrize("target, daemon", [
    ("10.0.0.2:6808/21407", "mgr.x"),  # the active manager's own address
    ("v1:10.0.0.2:6809/21407", "mgr.x"),
    ("10.0.0.2:0/21407", "mgr.x"),  # another messenger of the same process
    ("10.0.0.3:6800/21455", "osd.0"),
    ("10.0.0.6:0/2944327876", "rbd-mirror.site-a"),
    ("[fe80::7]:0/55", "rgw.gw1"),
    ("10.0.0.1", "mon.a"),  # a host running a daemon
    ("10.0.0.3", "osd.0"),
])
def test_a_daemons_address_or_host_is_refused_naming_it(target, daemon):
    why, = daemon_conflicts((parse_target(target),), _daemons())
    assert daemon in why


@pytest.mark.parametrize("target", ["10.0.0.9", "10.0.0.2:0/5", "10.0.0.3:6800/1",
                                    "10.0.0.33"])
def test_a_client_that_is_no_daemon_may_be_fenced(target):
    assert daemon_conflicts((parse_target(target),), _daemons()) == ()


@pytest.mark.parametrize("text", ["0.0.0.0", "0.0.0.0:0/0", "::", "[::]:0/0",
                                  "0.0.0.0:6800/5", "::ffff:0.0.0.0", "255.255.255.255",
                                  "224.0.0.1"])
def test_no_host_is_never_fenced(text):
    target = parse_target(text)  # unfence takes them (an old entry may hold one)
    assert "--force does not change this" in never_fenced(target)
    with pytest.raises(BadTarget) as e:
        refuse_never_fenced((parse_target("10.0.0.5"), target))
    assert e.value.exit_code == EXIT_BAD_INPUT and target.text in e.value.message


@pytest.mark.parametrize("text, why", [
    ("10.0.0.*", "wildcards are refused"), ("*", "wildcards are refused"),
    ("any", "wildcards are refused"), ("0.0.0.0/0", "CIDR range"), ("::/0", "CIDR range"),
])
def test_wildcards_and_ranges_are_no_target(text, why):
    with pytest.raises(ValueError, match=why):
        parse_target(text)


@pytest.mark.parametrize("address", ["0.0.0.0", "0.0.0.0:0/0", "::"])
def test_fence_refuses_no_host_even_with_force_before_connecting(address, capsys):
    # --conf names nothing: the refusal comes before any connection is tried
    code = main(["fence", address, "--yes", "--force", "--conf", "/nonexistent/ceph.conf"])
    assert code == EXIT_BAD_INPUT
    assert "is the unspecified address, not a host" in capsys.readouterr().err


def test_forced_daemon_addresses_are_shown():
    why = daemon_conflicts((parse_target("10.0.0.3:6800/21455"),), _daemons())
    plan = plan_fence((parse_target("10.0.0.3:6800/21455"),), _hostile_status(), {},
                      forced=why)
    assert f"Fenced anyway (--force): {why[0]}" in fence_text(plan)
    assert fence_json(plan)["forced"] == list(why)
    assert "forced" not in fence_json(plan_fence(plan.targets, _hostile_status(), {}))


ESC = "\x1b"
DEAD = "10.0.0.5:0/3507576585"


def _hostile_status():
    """A pool and an image whose names hold ESC sequences (librados allows them), held
    by a dead client whose lock cookie holds a newline."""
    clean = {"active+clean": 32}
    scanned = (ImageFacts(f"evil{ESC}[2J_disk", watchers=(DEAD,),
                          lockers=(Locker("client.4122", "auto\n1", DEAD),)),)
    facts = StatusFacts(pools={
        "images": PoolFacts("images", pg_states=clean, images=0),
        "vm": PoolFacts("vm", pg_states=clean, images=1, scanned=scanned),
    }, images_opened=1, max_images=1000)
    return build_status(_state(), facts, SPEC)


def test_control_characters_in_names_are_escaped_in_text():
    status = _hostile_status()
    plan = plan_fence((parse_target(DEAD),), status, {})
    text = fence_text(plan)
    assert ESC not in text and "evil\\x1b[2J_disk" in text
    assert "instance evil\\x1b[2J disk" in text
    assert fence_json(plan)["images"][0]["image"] == f"evil{ESC}[2J_disk"  # JSON: as is
    from cephstack.day2.fence import held_images

    shown = locks_text(held_images(status), status)
    assert ESC not in shown and "vm/evil\\x1b[2J_disk" in shown
    assert all(ch.isprintable() for line in (text + shown).split("\n") for ch in line)
