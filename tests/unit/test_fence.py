"""fence, unfence and locks without a cluster: addresses, OpenStack names, what a fence
touches, and the views."""

from __future__ import annotations

import json

import pytest

from cephstack.cli import main
from cephstack.day2.fence import (
    ALREADY_FREE,
    HOST,
    INSTANCE,
    FenceResult,
    LockOutcome,
    Target,
    blocklist_entries,
    cut_off_by,
    held_images,
    openstack_name,
    own_targets,
    parse_duration,
    parse_target,
    plan_fence,
    plan_unfence,
)
from cephstack.day2.status import STALE, ImageFacts, Locker, PoolFacts, StatusFacts, build_status
from cephstack.report.fenceviews import (
    fence_json,
    fence_text,
    locks_json,
    locks_text,
    unfence_json,
    unfence_text,
)
from cephstack.spec.defaults import DEFAULT_SPEC as SPEC_TEXT
from tests.unit.test_status import SPEC, _state

UUID = "1c11e020-c045-4f77-ab99-6cc28351ae1a"
DEAD = "10.0.0.5:0/3507576585"  # a crashed QEMU on compute 10.0.0.5
OTHER = "10.0.0.5:0/42"  # another client on the same host
ELSEWHERE = "10.0.0.6:0/7"


@pytest.mark.parametrize("text, kind, address", [
    ("10.0.0.5", HOST, "10.0.0.5:0/0"),
    ("10.0.0.5:0/0", HOST, "10.0.0.5:0/0"),  # Ceph's own spelling of a whole host
    (" 10.0.0.5 ", HOST, "10.0.0.5:0/0"),
    ("fe80::1", HOST, "[fe80::1]:0/0"),
    ("[fe80::1]", HOST, "[fe80::1]:0/0"),
    ("10.0.0.5:0/3507576585", INSTANCE, "10.0.0.5:0/3507576585"),
    ("v1:10.0.0.5:0/3507576585", INSTANCE, "10.0.0.5:0/3507576585"),  # messenger prefix
    ("any:10.0.0.5:0/12", INSTANCE, "10.0.0.5:0/12"),
    ("[::1]:0/12", INSTANCE, "[::1]:0/12"),
    ("[0:0::1]:0/12", INSTANCE, "[::1]:0/12"),  # normalised
    ("10.0.0.5:6800/12", INSTANCE, "10.0.0.5:6800/12"),
])
def test_parse_target(text, kind, address):
    target = parse_target(text)
    assert (target.kind, target.address) == (kind, address)


@pytest.mark.parametrize("text, why", [
    ("10.0.0.0/24", "CIDR range"),
    ("10.0.0.5:6789", "no nonce"),
    ("10.0.0.5:6789/0", "has a nonce"),
    ("compute-1", "host names are not resolved"),
    ("10.0.0.5:0/99999999999", "not an IP address"),  # nonce beyond 32 bits
    ("10.0.0.5:70000/1", "not an IP address"),
    ("300.0.0.1", "not an IP address"),
    ("", "expected a host address"),
    ("10.0.0.5\n", "expected a host address"),
])
def test_parse_target_refuses(text, why):
    with pytest.raises(ValueError, match=why):
        parse_target(text)


@pytest.mark.parametrize("target, address, matched", [
    ("10.0.0.5", DEAD, True),
    ("10.0.0.5", OTHER, True),
    ("10.0.0.5", ELSEWHERE, False),
    (DEAD, DEAD, True),
    (DEAD, f"v2:{DEAD}", True),
    (DEAD, OTHER, False),
    ("10.0.0.5", "10.0.0.55:0/1", False),  # a prefix of the IP is not the IP
    ("::1", "[::1]:0/5", True),
    ("10.0.0.5", "garbage", False),
])
def test_target_matches(target, address, matched):
    assert parse_target(target).matches(address) is matched


def test_own_address_is_refused():
    targets = (parse_target("127.0.0.1"), parse_target("127.0.0.1:0/9"))
    assert own_targets(targets, "127.0.0.1:0/384015960") == [targets[0]]
    assert own_targets(targets, "127.0.0.1:0/9") == list(targets)


@pytest.mark.parametrize("text, seconds", [
    ("3600", 3600), ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1w", 604800),
    ("1.5h", 5400), (" 2H ", 7200),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "0.5s", "-1", "1y", "h", "", "inf", "nan"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("image, services, glance, name", [
    (f"{UUID}_disk", ("nova",), False, f"instance {UUID} disk"),
    (f"{UUID}_disk.local", ("nova",), False, f"instance {UUID} disk.local"),
    (f"{UUID}_disk.eph0", ("nova",), False, f"instance {UUID} disk.eph0"),
    (f"{UUID}_disk.config", ("nova",), False, f"instance {UUID} disk.config"),
    (f"volume-{UUID}", ("cinder-volume",), False, f"volume {UUID}"),
    (f"volume-{UUID}.deleted", ("cinder-volume",), False,
     f"volume {UUID} (deleted, kept for its clones)"),
    (f"volume-{UUID}.backup.base", ("cinder-backup",), False, f"backups of volume {UUID}"),
    (f"volume-{UUID}.backup.77", ("cinder-backup",), False, f"backup 77 of volume {UUID}"),
    (UUID, ("glance",), True, f"image {UUID}"),
    # A pool shared by Nova and Cinder: each name as its service makes it.
    (f"volume-{UUID}", ("cinder-volume", "nova"), False, f"volume {UUID}"),
    (f"{UUID}_disk", ("cinder-volume", "nova"), False, f"instance {UUID} disk"),
    # Not an OpenStack name for that pool: shown as it is.
    (f"{UUID}_disk", ("cinder-volume",), False, ""),
    (f"volume-{UUID}", ("nova",), False, ""),
    ("scratch", (), False, ""),
    (f"{UUID}_disk", ("glance",), True, ""),
])
def test_openstack_name(image, services, glance, name):
    assert openstack_name(image, services, glance) == name


def test_blocklist_entries_and_what_cuts_a_target_off():
    out = ('[{"addr":"10.0.0.5:0/0","until":"2026-11-25T19:00:00"},'
           f'{{"addr":"v1:{DEAD}","until":"u2"}}][{{"addr":"10.9.0.0:0/16","until":"u3"}}]')
    entries, ranges = blocklist_entries(out)
    assert entries == {"10.0.0.5:0/0": "2026-11-25T19:00:00", DEAD: "u2"}
    assert ranges == ("10.9.0.0/16",)
    assert blocklist_entries(None) == ({}, ())
    assert blocklist_entries("garbage") == ({}, ())
    assert cut_off_by(parse_target(OTHER), entries, ranges) == "10.0.0.5:0/0"  # its host's
    assert cut_off_by(parse_target(DEAD), entries, ranges) == DEAD
    assert cut_off_by(parse_target("10.9.3.4:0/1"), entries, ranges) == "10.9.0.0/16"
    assert cut_off_by(parse_target(ELSEWHERE), entries, ranges) == ""


def _status(vm_images=3, vm_scanned=None, blocklist=()):
    """The Nova pool: a disk locked by the dead client (still watching: its watch lingers),
    a disk another host holds, a disk watched only; a Cinder volume the dead host's
    cinder-volume watches."""
    scanned = vm_scanned if vm_scanned is not None else (
        ImageFacts(f"{UUID}_disk", watchers=(DEAD,),
                   lockers=(Locker("client.4122", "auto 1", DEAD),)),
        ImageFacts("aaaa_disk", watchers=(ELSEWHERE,),
                   lockers=(Locker("client.9", "auto 2", ELSEWHERE),)),
        ImageFacts("bbbb_disk.config", watchers=(OTHER,)),
    )
    clean = {"active+clean": 32}
    facts = StatusFacts(pools={
        "images": PoolFacts("images", pg_states=clean, images=0),
        "volume": PoolFacts("volume", pg_states=clean, images=1, scanned=(
            ImageFacts("volume-v1", watchers=(OTHER,)),)),
        "backups": PoolFacts("backups", pg_states=clean, images=0),
        "vm": PoolFacts("vm", pg_states=clean, images=vm_images, scanned=scanned),
    }, blocklist=blocklist, images_opened=len(scanned) + 1, max_images=1000)
    return build_status(_state(), facts, SPEC)


def test_plan_fence_of_an_instance_lists_its_disk_in_openstack_terms():
    plan = plan_fence((parse_target(DEAD),), _status(), {})
    assert [(h.pool, h.image, h.openstack) for h in plan.hits] == [
        ("vm", f"{UUID}_disk", f"instance {UUID} disk")]
    (hit, lock), = plan.locks
    assert (lock.entity, lock.cookie, lock.state) == ("client.4122", "auto 1", "live")
    assert hit.watchers == (DEAD,)
    text = fence_text(plan)
    assert f"Fence client instance {DEAD}" in text
    assert f"instance {UUID} disk (vm/{UUID}_disk)" in text
    assert "Dry run: nothing changed" in text and "break 1 lock(s)" in text
    assert "Caution: 1 lock holder(s) above still watch" in text
    assert "mon_osd_blocklist_default_expire" in text


def test_plan_fence_of_a_host_covers_every_client_on_it():
    plan = plan_fence((parse_target("10.0.0.5"),), _status(), {}, expire=600)
    assert sorted((h.pool, h.image, h.openstack) for h in plan.hits) == [
        ("vm", f"{UUID}_disk", f"instance {UUID} disk"),
        ("vm", "bbbb_disk.config", "instance bbbb disk.config"),
        ("volume", "volume-v1", "volume v1"),
    ]
    assert len(plan.locks) == 1  # only the dead host's lock, never 10.0.0.6's
    data = fence_json(plan)
    assert data["dry_run"] is True and data["expire_seconds"] == 600
    assert data["targets"] == [{"target": "10.0.0.5", "kind": "host",
                                "blocklist_entry": "10.0.0.5:0/0", "cut_off_before_by": None,
                                "blocklisted_until": None}]
    assert "expiring after 10m" in fence_text(plan)
    json.dumps(data)


def test_plan_fence_when_already_blocklisted_and_nothing_held():
    entries = {DEAD: "2026-11-25T19:00:00"}
    plan = plan_fence((parse_target(DEAD), parse_target("10.0.0.7:0/1")),
                      _status(blocklist=(DEAD,)), entries)
    assert plan.covered == {DEAD: DEAD}
    text = fence_text(plan)
    assert "(already blocklisted until 2026-11-25T19:00:00)" in text
    assert "no image of the scanned pools is watched or locked by it" in text
    # The lock of a blocklisted holder is stale.
    assert plan.locks[0][1].state == STALE


def test_sampled_pools_say_how_many_images_were_checked():
    plan = plan_fence((parse_target(DEAD),), _status(vm_images=5000), {})
    text = fence_text(plan)
    assert "vm 3/5000" in text
    assert "Not every image was checked (vm: 3 of 5000)" in text
    assert "raise --max-images" in text
    pools = {p["pool"]: p for p in fence_json(plan)["scanned"]["pools"]}
    assert pools["vm"] == {"pool": "vm", "images": 5000, "opened": 3, "complete": False,
                           "note": None}


def test_fence_result_views():
    plan = plan_fence((parse_target("10.0.0.5"),), _status(), {})
    result = FenceResult(
        blocklisted={"10.0.0.5:0/0": "2026-11-25T19:00:00"},
        locks=[LockOutcome("vm", f"{UUID}_disk", "client.4122", "auto 1", DEAD, freed=True)])
    text = fence_text(plan, result)
    assert "Blocklisted 10.0.0.5:0/0 until 2026-11-25T19:00:00" in text
    assert f"Freed instance {UUID} disk (vm/{UUID}_disk): lock of client.4122" in text
    assert "Fenced 1 address(es); freed 1 image(s)." in text
    data = fence_json(plan, result)
    assert data["dry_run"] is False and data["freed"] == [f"vm/{UUID}_disk"]
    lock = next(i for i in data["images"] if i["image"] == f"{UUID}_disk")["locks"][0]
    assert lock["freed"] is True and lock["state"] == "live"
    gone = FenceResult(locks=[LockOutcome("vm", "x_disk", "client.1", "auto 1", DEAD,
                                          note=ALREADY_FREE)])
    assert gone.failed == []
    broken = FenceResult(locks=[LockOutcome("vm", "x_disk", "client.1", "auto 1", DEAD,
                                            note="errno 5")])
    assert len(broken.failed) == 1
    assert "1 lock(s) could not be broken" in fence_text(plan, broken)


def test_unfence_removes_only_the_targets_own_entries():
    entries = {"10.0.0.5:0/0": "u1", DEAD: "u2", OTHER: "u3"}
    host, = plan_unfence((parse_target("10.0.0.5"),), entries)
    assert host.until == "u1" and host.still_cut_off_by == ""
    assert host.instance_entries == (DEAD, OTHER)  # single clients: left in place
    inst, = plan_unfence((parse_target(DEAD),), entries)
    assert inst.until == "u2" and inst.still_cut_off_by == "10.0.0.5:0/0"
    none, = plan_unfence((parse_target(ELSEWHERE),), entries, ("10.0.0.0/8",))
    assert none.until is None and none.still_cut_off_by == "10.0.0.0/8"
    text = unfence_text((host, inst, none), done=False)
    assert "Would remove blocklist entry 10.0.0.5:0/0 (until u1)" in text
    assert "left in place: 2 entr(ies) for single clients of 10.0.0.5" in text
    assert "still cut off by 10.0.0.5:0/0" in text
    assert f"{ELSEWHERE}: not in the blocklist" in text
    assert "Dry run: nothing changed. With --yes: remove 2 blocklist entr(ies)" in text
    data = unfence_json((host, inst, none), done=True)
    assert [t["removed"] for t in data["targets"]] == [True, True, False]
    assert "Unfenced: removed 2" in unfence_text((host, inst, none), done=True)


def test_locks_view_names_images_in_openstack_terms_stale_first():
    status = _status(vm_scanned=(
        ImageFacts(f"{UUID}_disk", watchers=(DEAD,),
                   lockers=(Locker("client.4122", "auto 1", DEAD),)),
        ImageFacts("zzzz_disk", lockers=(Locker("client.5", "auto 3", OTHER),)),  # no watch
    ), blocklist=(DEAD,))
    held = held_images(status, (DEAD,))
    assert [(h.image, h.openstack) for h in held] == [
        (f"{UUID}_disk", f"instance {UUID} disk"),  # blocklisted holder: stale
        ("zzzz_disk", "instance zzzz disk"),  # holder no longer watches: stale
        ("volume-v1", "volume v1"),  # watched, no lock
    ]
    assert held[0].watchers == ((DEAD, True),)
    text = locks_text(held, status)
    assert f"vm/{UUID}_disk  instance {UUID} disk" in text
    assert f"lock   client.4122 at {DEAD}: STALE (holder blocklisted)" in text
    assert f"watch  {DEAD}  (blocklisted)" in text
    assert "3 image(s) locked or watched, 2 stale lock(s)" in text
    data = locks_json(held, status)
    assert data["images"][0]["locks"][0]["state"] == "stale"
    assert data["images"][2]["watchers"] == [{"address": OTHER, "blocklisted": False}]


def test_target_properties():
    assert Target(HOST, "10.0.0.5").text == "10.0.0.5"
    assert Target(INSTANCE, "::1", 0, 5).text == "[::1]:0/5"
    assert "every Ceph client" in Target(HOST, "10.0.0.5").describe()


@pytest.mark.parametrize("argv", [["fence", "--help"], ["unfence", "--help"],
                                  ["locks", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out
    if argv[0] != "locks":
        assert "--yes" in out and "--dry-run" in out and "IP:PORT/NONCE" in out


@pytest.mark.parametrize("argv", [
    ["fence", "10.0.0.0/24"], ["fence", "compute-1"], ["unfence", "10.0.0.5:6789"],
    ["fence", "10.0.0.5", "--yes", "--dry-run"], ["fence", "10.0.0.5", "--expire", "0"],
    ["fence"],
])
def test_bad_arguments_exit_2_before_any_connection(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def test_verify_reports_which_takeover_path_it_took():
    from cephstack.report.views import verify_json, verify_text
    from cephstack.verify.model import VerifyReport

    report = VerifyReport("abcd1234", takeover_seconds=0.9, takeover_path="fence")
    assert verify_json(report)["takeover_path"] == "fence"
    assert "Evacuate takeover: 0.9 s (fenced: dead client blocklisted, its lock broken)" \
        in verify_text(report)
    report.takeover_path, report.takeover_seconds = "wait", 30.9
    assert "(librbd's own, after the OSD watch timeout)" in verify_text(report)


def test_evacuate_failure_explains_blocklist_or_lock_break():
    from cephstack.errors import PermissionDenied
    from cephstack.spec.load import parse_spec
    from cephstack.verify.evacuate import explain
    from cephstack.verify.model import RunNames
    from cephstack.verify.workflows import Context, Identity

    spec = parse_spec(SPEC_TEXT)
    ctx = Context(spec, RunNames(), {"nova": Identity("nova", "client.nova", "k", ("vm",))},
                  "images")
    blocklist = explain(ctx, PermissionDenied("osd blocklist", 13, "denied"))
    assert "lacks mon 'profile rbd'" in blocklist.cause and "evacuate will hang" in blocklist.cause
    lock = explain(ctx, PermissionDenied("break_lock on image vm/x_disk", 1, "denied"))
    assert "cannot break a dead host's lock" in lock.cause
    assert "profile rbd pool=vm" in lock.fix
