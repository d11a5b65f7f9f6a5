"""RBD mirroring between two real sandboxes, each with its rbd-mirror daemon: converging
the pools' mirroring, a mirrored volume arriving byte-equal, and the failover drill
(orderly and forced, with the primary's daemons stopped) with failback."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cephstack.ceph import mirror
from cephstack.ceph.adapter import CephConnection, ClusterAccess
from cephstack.errors import CephCommandError, OpTimedOut
from cephstack.verify.drill import DrillSite, failover_drill
from tests.integration.conftest import Cluster

POOL = "volumes"
MiB = 1024 * 1024


def _admin(c: Cluster) -> CephConnection:
    return c.admin()


@pytest.fixture(scope="module")
def sites(two_clusters):
    """Both clusters with pool `volumes` (same name on both, as Cinder needs) and a
    Cinder user on each, and admin connections."""
    a, b = two_clusters
    conns = []
    for c in (a, b):
        conn = c.admin()
        conns.append(conn)
        conn.mon("osd pool create", pool=POOL, pg_num=8)
        conn.mon("osd pool application enable", pool=POOL, app="rbd")
        key = conn.mon("auth get-or-create", entity="client.cinder",
                       caps=["mon", "profile rbd", "osd", f"profile rbd pool={POOL}"])[0]["key"]
        keyring = c.workdir / "cinder.keyring"
        keyring.write_text(f"[client.cinder]\n\tkey = {key}\n")
        keyring.chmod(0o600)
    yield (a, conns[0]), (b, conns[1])
    for conn in conns:
        conn.close()


def _cinder(c: Cluster) -> ClusterAccess:
    return ClusterAccess(str(c.box.conf), str(c.workdir / "cinder.keyring"), "client.cinder",
                         10, 30)


def test_rbd_mirror_daemons_run_as_their_own_users(two_clusters):
    for c, site in zip(two_clusters, ("site-a", "site-b"), strict=True):
        status = c.box.status()
        assert status.up and status.running[f"client.rbd-mirror.{site}"]
        assert c.box.conf.name == f"{site}.conf"
        with c.admin() as conn:
            entity = conn.mon("auth get", entity=f"client.rbd-mirror.{site}")[0]
        assert entity["caps"] == mirror.mirror_user_caps()


KW = {"primary_site": "site-a", "secondary_site": "site-b", "schedule": "60m"}


@pytest.fixture(scope="module")
def mirrored(sites):
    """Pool `volumes` mirrored both ways (whichever test comes first)."""
    (a, ca), (b, cb) = sites
    mirror.ensure_mirroring(ca, cb, [POOL], **KW)
    return sites


def test_sandbox_cli_runs_and_stops_an_rbd_mirror_daemon(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "cephstack", "sandbox", *args, "--dir",
                               str(tmp_path / "c")], capture_output=True, text=True, timeout=120)

    up = cli("up", "--cluster", "site-c", "--rbd-mirror", "--output", "json")
    try:
        assert up.returncode == 0, up.stderr
        shown = json.loads(up.stdout)
        assert shown["cluster"] == "site-c" and shown["conf"].endswith("/site-c.conf")
        pid = shown["daemons"]["client.rbd-mirror.site-c"]
        assert pid and b"rbd-mirror" in Path(f"/proc/{pid}/cmdline").read_bytes()
        status = cli("status")  # the cluster name found from the directory
        assert status.returncode == 0 and f"client.rbd-mirror.site-c: pid {pid}" in status.stdout
        keys = [line.split("=", 1)[1].strip() for k in (tmp_path / "c").glob("*.keyring")
                for line in k.read_text().splitlines() if "key =" in line]
        assert len(keys) >= 3 and not any(k in up.stdout + status.stdout for k in keys)
    finally:
        down = cli("down")
    assert down.returncode == 0 and "client.rbd-mirror.site-c" in down.stdout
    assert not Path(f"/proc/{pid}").exists() or b"rbd-mirror" not in Path(
        f"/proc/{pid}/cmdline").read_bytes()


def test_ensure_mirroring_converges_then_changes_nothing(sites):
    (a, ca), (b, cb) = sites
    before = mirror.mirroring_changes(ca, cb, [POOL], **KW)
    addresses = [c.address for c in before]
    assert addresses == ["mirror site@site-a", "mirror site@site-b",
                         f"mirror {POOL}@site-a: mode image", f"mirror {POOL}@site-a: peer site-b",
                         f"mirror {POOL}@site-b: mode image", f"mirror {POOL}@site-b: peer site-a",
                         f"mirror {POOL}@site-a: schedule 1h"]
    assert before[0].detail == f"site name {ca.fsid()!r} -> 'site-a'"  # the default: fsid
    lines: list[str] = []
    changed = mirror.ensure_mirroring(ca, cb, [POOL], progress=lines.append, **KW)
    assert changed == before
    assert mirror.mirroring_changes(ca, cb, [POOL], **KW) == []
    assert mirror.ensure_mirroring(ca, cb, [POOL], **KW) == []
    # Peers both ways, rx-tx, through the bootstrap user; the schedule on the primary.
    for conn, other in ((ca, "site-b"), (cb, "site-a")):
        peers = mirror.peer_list(conn, POOL)
        assert [(p["site_name"], p["direction"], p["client_name"]) for p in peers] == [
            (other, 2, mirror.PEER_CLIENT)]
    assert mirror.schedules(ca, POOL) == ["1h"]
    assert mirror.schedules(cb, POOL) == []
    # A peer lost on one side is bootstrapped again; the other side's is kept.
    ca.rbd("mirror_peer_remove", POOL, mirror.peer_list(ca, POOL)[0]["uuid"])
    lost = mirror.mirroring_changes(ca, cb, [POOL], **KW)
    assert [c.address for c in lost] == [f"mirror {POOL}@site-a: peer site-b"]
    assert mirror.ensure_mirroring(ca, cb, [POOL], **KW) == lost
    assert mirror.mirroring_changes(ca, cb, [POOL], **KW) == []
    assert [len(mirror.peer_list(conn, POOL)) for conn in (ca, cb)] == [1, 1]
    # A peer whose attributes no longer reach its site (the site's cluster rebuilt on other
    # ports, or its bootstrap user's key changed) has the right name and direction, yet is
    # bootstrapped again, in place.
    good = {}
    for conn in (ca, cb):
        uuid = mirror.peer_list(conn, POOL)[0]["uuid"]
        good[conn] = conn.rbd("mirror_peer_get_attributes", POOL, uuid)
    uuid_a = mirror.peer_list(ca, POOL)[0]["uuid"]
    ca.rbd("mirror_peer_set_attributes", POOL, uuid_a,
           {**good[ca], "mon_host": "[v2:127.0.0.1:1/0]"})
    uuid_b = mirror.peer_list(cb, POOL)[0]["uuid"]
    cb.rbd("mirror_peer_set_attributes", POOL, uuid_b, {**good[cb], "key": good[ca]["key"]})
    stale = mirror.mirroring_changes(ca, cb, [POOL], **KW)
    assert [(c.address, c.detail) for c in stale] == [
        (f"mirror {POOL}@site-a: peer site-b",
         "peer site-b bootstrapped again: its monitor addresses are not site-b's"),
        (f"mirror {POOL}@site-b: peer site-a",
         f"peer site-a bootstrapped again: its key is not the one {mirror.PEER_CLIENT} has "
         "on site-a")]
    changed += mirror.ensure_mirroring(ca, cb, [POOL], progress=lines.append, **KW)
    assert mirror.mirroring_changes(ca, cb, [POOL], **KW) == []
    for conn in (ca, cb):
        [peer] = mirror.peer_list(conn, POOL)
        assert conn.rbd("mirror_peer_get_attributes", POOL, peer["uuid"]) == good[conn]
    assert [p["uuid"] for p in mirror.peer_list(ca, POOL)] == [uuid_a]  # the same peer
    # No key in what it reports.
    keys = [e["key"] for conn in (ca, cb) for e in conn.mon("auth ls")["auth_dump"]]
    text = "\n".join(lines + [f"{c.address} {c.detail}" for c in changed])
    assert not any(key in text for key in keys)


def test_a_missing_pool_is_refused_before_any_change(mirrored):
    (a, ca), (b, cb) = mirrored
    with pytest.raises(mirror.MirrorError, match="no pool 'nope' on site-a, 'nope' on site-b"):
        mirror.ensure_mirroring(ca, cb, [POOL, "nope"], primary_site="site-a",
                                secondary_site="site-b", schedule="1m")
    assert mirror.schedules(ca, POOL) == ["1h"]  # the 1m schedule was not added


def test_a_written_volume_arrives_byte_equal_after_a_mirror_snapshot(mirrored):
    (a, ca), (b, cb) = mirrored
    data = os.urandom(2 * MiB)
    ca.rbd("create", POOL, "byte-equal", 4 * MiB, old_format=False,
           features=ca.features("layering", "exclusive_lock"))
    try:
        with ca.image(POOL, "byte-equal") as img:
            img.write(data, MiB)
        mirror.enable_image(ca, POOL, "byte-equal")
        mirror.enable_image(ca, POOL, "byte-equal")  # idempotent
        mirror.create_snapshot(ca, POOL, "byte-equal")
        waited = mirror.wait_replicated(ca, cb, POOL, "byte-equal", timeout=60)
        assert waited < 60
        with cb.image(POOL, "byte-equal", read_only=True) as img:
            assert img.read(MiB, 2 * MiB) == data
        status = mirror.image_status(cb, POOL, "byte-equal")
        assert status["primary"] is False and status["enabled"] is True
        assert mirror.image_status(ca, POOL, "byte-equal")["primary"] is True
    finally:
        ca.rbd("remove", POOL, "byte-equal")


def test_the_schedule_takes_mirror_snapshots_that_arrive_byte_equal(mirrored):
    """Within the schedule, without an explicit snapshot: slow by nature (the manager
    picks up a new image at its next refresh, every 60 s, then the 1m schedule fires)."""
    (a, ca), (b, cb) = mirrored
    data = os.urandom(MiB)
    ca.rbd("create", POOL, "scheduled", 4 * MiB, old_format=False,
           features=ca.features("layering", "exclusive_lock"))
    spec = f"{POOL}/scheduled"
    try:
        mirror.enable_image(ca, POOL, "scheduled")  # its first mirror snapshot, empty
        with ca.image(POOL, "scheduled") as img:
            img.write(data, 0)
            first = max(s["id"] for s in img.list_snaps())
        mirror.mgr_command(ca, "rbd mirror snapshot schedule add", level_spec=spec,
                           interval="1m")
        deadline = time.monotonic() + 180
        while True:
            with ca.image(POOL, "scheduled", read_only=True) as img:
                if max(s["id"] for s in img.list_snaps()) > first:
                    break
            assert time.monotonic() < deadline, "no scheduled mirror snapshot in 180 s"
            time.sleep(1)
        mirror.wait_replicated(ca, cb, POOL, "scheduled", timeout=60)
        with cb.image(POOL, "scheduled", read_only=True) as img:
            assert img.read(0, MiB) == data
    finally:
        mirror.mgr_command(ca, "rbd mirror snapshot schedule remove", level_spec=spec)
        ca.rbd("remove", POOL, "scheduled")


def test_wait_replicated_times_out_clearly(mirrored, two_clusters):
    (a, ca), (b, cb) = mirrored
    b.box.stop_daemon("client.rbd-mirror.site-b")
    ca.rbd("create", POOL, "stuck", 4 * MiB, old_format=False,
           features=ca.features("layering", "exclusive_lock"))
    try:
        mirror.enable_image(ca, POOL, "stuck")
        with pytest.raises(mirror.ReplicationTimedOut, match="did not reach the other cluster "
                           "within 3 s"):
            mirror.wait_replicated(ca, cb, POOL, "stuck", timeout=3)
    finally:
        ca.rbd("remove", POOL, "stuck")
        b.box.start_rbd_mirror()


def _drill(sites, outage=None):
    (a, ca), (b, cb) = sites
    lines: list[str] = []
    steps = failover_drill(DrillSite("site-a", ca, _cinder(a)),
                           DrillSite("site-b", cb, _cinder(b)), POOL, timeout=90,
                           outage=outage, progress=lines.append)
    print("\n".join(lines))  # the drill's own report, with -s
    failed = [s for s in steps if not s.ok]
    assert not failed, "\n".join(lines)
    assert len(lines) == len(steps)
    return steps


def test_failover_drill_orderly(mirrored):
    steps = _drill(mirrored)
    names = [s.name for s in steps]
    assert names[:5] == ["create and write the volume on site-a", "enable snapshot mirroring",
                         "take a mirror snapshot", "replicated to site-b", "byte-equal on site-b"]
    assert "promote on site-b" in names and "promote on site-a" in names
    assert names[-3:] == ["replicated to site-b again", "byte-equal on site-b again",
                          "clean up"]
    assert "forced promote" not in steps[-1].detail  # site-b's copy went with the volume


def test_failover_drill_forced_with_the_primary_down(mirrored):
    (a, ca), (b, cb) = mirrored
    steps = _drill(mirrored, a.outage())
    names = [s.name for s in steps]
    assert "forced promote on site-b" in names and "resync on site-a" in names
    assert "site-a serves the volume read-write again" in names
    assert "forced promote" not in steps[-1].detail
    assert a.box.status().up


def test_manager_commands_are_bounded_and_typed(mirrored):
    (a, ca), (b, cb) = mirrored
    with pytest.raises(CephCommandError, match="Invalid level spec nope/") as e:
        mirror.schedules(ca, "nope")
    assert e.value.errno == errno.EINVAL
    b.box.stop_daemon("mgr.x")
    try:
        access = ClusterAccess(str(b.box.conf), str(b.box.admin_keyring), op_timeout=2)
        with CephConnection(access) as conn:
            start = time.monotonic()
            with pytest.raises(OpTimedOut, match="waiting for the manager") as e:
                mirror.schedules(conn, POOL)
            assert time.monotonic() - start < 5
            assert "ceph mgr stat" in e.value.hint
    finally:
        b.box.start_daemon("mgr.x")
