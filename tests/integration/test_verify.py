"""verify against a real sandbox: the default spec passes, the seed's caps fail exactly
where the seed's flaws predict, too much access fails the matrix, nothing is left behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rados

ROOT = Path(__file__).parents[2]
POOLS = ("images", "volume", "backups", "vm")
# librbd's per-pool indexes: created on first use, left empty when the entries go.
RBD_INDEXES = ("rbd_directory", "rbd_children", "rbd_trash")

SEED_CAPS = {
    "glance": ["mon", "allow r", "osd", "allow rwx pool=images"],
    "cinder-volume": ["mon", "allow r", "osd", "allow rwx pool=volume"],
    "cinder-backup": ["mon", "allow r", "osd", "allow rwx pool=volume, allow rwx pool=backups"],
    "nova": ["mon", "allow r", "osd", "allow rwx pool=vm"],
}


def pool_contents(cluster, pools=POOLS) -> dict[str, tuple]:
    """What a pool holds for its users: objects, images, and the entries of librbd's
    indexes (the index objects themselves appear on first use and stay, empty)."""
    out = {}
    with cluster.admin() as conn:
        for pool in pools:
            with conn.ioctx(pool) as ioctx:
                objects = sorted(o.key for o in ioctx.target.list_objects())
                entries = []
                for index in sorted(set(RBD_INDEXES) & set(objects)):
                    with rados.ReadOpCtx() as op:
                        found, _ = ioctx.target.get_omap_vals(op, "", "", 1000)
                        ioctx.target.operate_read_op(op, index)
                        entries += [f"{index}:{k}" for k, _ in found]
                objects = [o for o in objects if o not in RBD_INDEXES]
            images = sorted(conn.rbd("list", pool))
            out[pool] = (tuple(objects), tuple(images), tuple(entries))
    return out


@pytest.fixture(scope="module")
def spec(cluster):
    path = cluster.write_spec()
    done = cluster.cli("apply", "-f", str(path), "--yes")
    assert done.returncode == 0, done.stderr
    return path


def verify(cluster, spec, *args):
    proc = cluster.cli("verify", "-f", str(spec), "--output", "json", *args)
    return proc, json.loads(proc.stdout)


def results(data) -> dict[str, str]:
    return {f"{s['service']}: {s['name']}": s["result"] for s in data["steps"]}


def set_caps(cluster, caps_by_service):
    with cluster.admin() as conn:
        for service, caps in caps_by_service.items():
            conn.mon("auth caps", entity=f"client.{service}", caps=caps)


def test_default_spec_passes_every_step(cluster, spec):
    before = pool_contents(cluster)
    proc, data = verify(cluster, spec)
    failed = {k: v for k, v in results(data).items() if v != "pass"}
    assert failed == {"nova: direct snapshot into the images pool": "skip",
                      "config: rendered configuration agrees with the cluster": "skip"}
    assert proc.returncode == 0 and data["passed"] is True
    # The takeover went the fencing path, as Nova's own user: the dead client's instance
    # blocklisted, then its lock broken (not librbd waiting out the OSD watch timeout).
    assert data["takeover_path"] == "fence" and data["takeover_seconds"] > 0
    evac = next(s for s in data["steps"] if s["name"].startswith("evacuate"))
    assert "fenced as client.nova (blocklisted 127.0.0.1:0/" in evac["detail"]
    names = results(data)
    for must in ("cinder-volume: volume from image (copy-on-write clone) [rbd-volume]",
                 "cinder-volume: evacuate: take over a crashed host's volume [rbd-volume]",
                 "nova: boot from image (copy-on-write clone)",
                 "cinder-backup: restore the incremental backup [rbd-volume]",
                 "nova: evacuate: take over a crashed host's disk",
                 "glance: delete image (unprotect, remove snap, remove)",
                 "nova: must not write to pool images"):
        assert names[must] == "pass"
    assert pool_contents(cluster) == before


def test_text_output_is_a_table_per_service(cluster, spec):
    proc = cluster.cli("verify", "-f", str(spec), "--only", "glance")
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0] == "glance"
    assert "upload image (create, write, snap, protect)" in proc.stdout
    assert "Verify passed:" in proc.stdout
    # Each step's result on stderr as it finishes; no live line in place on a pipe.
    assert "  PASS  glance: upload image (create, write, snap, protect)  " in proc.stderr
    assert "\r" not in proc.stderr


def test_seed_caps_fail_exactly_where_the_seed_is_flawed(cluster, spec):
    before = pool_contents(cluster)
    set_caps(cluster, SEED_CAPS)
    try:
        proc, data = verify(cluster, spec)
    finally:
        apply = cluster.cli("apply", "-f", str(spec), "--yes", "--allow-disruptive")
        assert apply.returncode == 0, apply.stderr
    assert proc.returncode == 1 and data["passed"] is False
    failed = {k for k, v in results(data).items() if v == "fail"}
    assert failed == {
        "nova: evacuate: take over a crashed host's disk",
        # Cinder's user cannot blocklist either: a volume attached to a crashed host stays
        # locked until the OSD watch times out, and then librbd is refused.
        "cinder-volume: evacuate: take over a crashed host's volume [rbd-volume]",
        "cinder-volume: volume from image (copy-on-write clone) [rbd-volume]",
        "nova: boot from image (copy-on-write clone)",
        "glance: delete image (unprotect, remove snap, remove)",
        # The seed also lets the backup user write Cinder's volumes: more than it needs.
        "cinder-backup: must not write to pool volume",
    }
    by_name = {f"{s['service']}: {s['name']}": s for s in data["steps"]}
    evac = by_name["nova: evacuate: take over a crashed host's disk"]
    assert "lacks mon 'profile rbd'" in evac["cause"] and "evacuate will hang" in evac["cause"]
    assert "cephstack apply" in evac["fix"]
    clone = by_name["nova: boot from image (copy-on-write clone)"]
    assert "profile rbd-read-only pool=images" in clone["fix"]
    assert "full download and copy" in clone["cause"]
    assert "errno 1" in clone["error"] or "errno 13" in clone["error"]
    delete = by_name["glance: delete image (unprotect, remove snap, remove)"]
    assert "profile rbd pool=images" in delete["fix"] and "pile up" in delete["cause"]
    assert pool_contents(cluster) == before


def test_too_much_access_fails_the_matrix(cluster, spec):
    set_caps(cluster, {"glance": ["mon", "allow *", "osd", "allow rwx"]})
    try:
        proc, data = verify(cluster, spec, "--only", "glance")
    finally:
        assert cluster.cli("apply", "-f", str(spec), "--yes",
                           "--allow-disruptive").returncode == 0
    failed = {k for k, v in results(data).items() if v == "fail"}
    assert proc.returncode == 1
    assert {"glance: must not write to pool vm", "glance: must not write to pool volume",
            "glance: must not read the key of client.nova", "glance: must not create pools",
            "glance: must not delete pools", "glance: must not change caps"} <= failed
    assert not {k for k in failed if "must not" not in k}  # its workflows still pass


def test_killed_run_leaves_leftovers_that_cleanup_removes(cluster, spec):
    before = pool_contents(cluster)
    proc = subprocess.Popen([sys.executable, "-m", "cephstack", "verify", "-f", str(spec)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=cluster.workdir, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"})
    deadline = time.monotonic() + 120
    for line in proc.stderr:  # wait until backups are being written, then kill it
        if "cinder-backup: incremental backup" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert pool_contents(cluster) != before  # it did leave things behind
    out = cluster.cli("verify", "-f", str(spec), "--cleanup")
    assert out.returncode == 0, out.stderr
    assert "image volume/volume-" in out.stdout
    assert pool_contents(cluster) == before
    again = cluster.cli("verify", "-f", str(spec), "--cleanup")
    assert "nothing to remove" in again.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_cleans_up_after_itself(cluster, spec, sig):
    before = pool_contents(cluster)
    proc = subprocess.Popen([sys.executable, "-m", "cephstack", "verify", "-f", str(spec)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=cluster.workdir, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"})
    for line in proc.stderr:
        if "cinder-backup: full backup" in line:
            break
    proc.send_signal(sig)  # Ctrl-C, or a service manager stopping it
    proc.stderr.read()
    assert proc.wait(timeout=120) == 128 + sig  # 130 for SIGINT, 143 for SIGTERM
    assert pool_contents(cluster) == before


def test_evacuate_wait_proves_librbds_own_takeover(cluster, spec):
    """--evacuate-wait: no fence; librbd on the new host waits until the OSD drops the dead
    client's watch, then blocklists it itself (the watch timeout lowered here to 5 s)."""
    with cluster.admin() as conn:
        conn.mon("config set", who="osd", name="osd_client_watch_timeout", value="5")
    try:
        proc, data = verify(cluster, spec, "--only", "nova", "--evacuate-wait")
    finally:
        with cluster.admin() as conn:
            conn.mon("config rm", who="osd", name="osd_client_watch_timeout")
    assert proc.returncode == 0, data
    assert data["takeover_path"] == "wait"
    evac = results(data)["nova: evacuate: take over a crashed host's disk"]
    assert evac == "pass"


def test_direct_snapshots_write_into_images(cluster, spec):
    text = spec.read_text().replace("direct_snapshots: false", "direct_snapshots: true")
    direct = cluster.write_spec("direct.yaml", text)
    assert cluster.cli("apply", "-f", str(direct), "--yes").returncode == 0
    try:
        proc, data = verify(cluster, direct, "--only", "nova")
        assert results(data)["nova: direct snapshot into the images pool"] == "pass"
        assert proc.returncode == 0
    finally:
        assert cluster.cli("apply", "-f", str(spec), "--yes",
                           "--allow-disruptive").returncode == 0


# -- several Cinder backends ------------------------------------------------------------

CINDER_STEPS = ("create volume", "snapshot (create, protect)", "volume from snapshot (clone)",
                "clone of a volume (.clone_snap)", "volume from image (copy-on-write clone)",
                "extend", "evacuate: take over a crashed host's volume")
BACKUP_STEPS = ("full backup (source as Cinder's user)",
                "incremental backup (diff since the last backup)",
                "restore the full backup", "restore the incremental backup")


def test_every_cinder_backend_is_verified_and_a_broken_one_is_named(cluster, spec):
    """A spec with two Cinder backends (pools volume and fast: cinder.conf sections
    rbd-volume and rbd-fast): each backend's workflows run on its own pool with its
    rbd_user; with that user's caps on `fast` taken away, exactly rbd-fast's steps fail."""
    text = spec.read_text().replace("  vm:      {pg_num: 32}",
                                    "  vm:      {pg_num: 32}\n  fast:    {pg_num: 16}")
    text = text.replace("pools: [volume]", "pools: [volume, fast]")
    two = cluster.write_spec("two-backends.yaml", text)
    assert cluster.cli("apply", "-f", str(two), "--yes").returncode == 0
    try:
        before = pool_contents(cluster, (*POOLS, "fast"))
        proc, data = verify(cluster, two)
        assert proc.returncode == 0 and data["passed"] is True, proc.stderr
        steps = {f"{s['service']}: {s['name']}": s for s in data["steps"]}
        for section, pool in (("rbd-volume", "volume"), ("rbd-fast", "fast")):
            for service, names in (("cinder-volume", CINDER_STEPS),
                                   ("cinder-backup", BACKUP_STEPS)):
                for name in names:
                    step = steps[f"{service}: {name} [{section}]"]
                    assert step["result"] == "pass" and step["backend"] == section
            # ...on that backend's pool, as Cinder's user (the backend's rbd_user)
            assert steps[f"cinder-volume: create volume [{section}]"]["detail"].startswith(
                f"{pool}/volume-")
            assert steps[f"cinder-backup: full backup (source as Cinder's user) "
                         f"[{section}]"]["detail"].startswith(f"{pool}/volume-")
            takeover = steps[f"cinder-volume: evacuate: take over a crashed host's volume "
                             f"[{section}]"]["detail"]
            assert takeover.startswith(f"{pool}/volume-")
            assert "fenced as client.cinder-volume (blocklisted 127.0.0.1:0/" in takeover
            # each step's result reached stderr as it finished; stdout is the JSON alone
            assert f"  PASS  cinder-volume: create volume [{section}]  " in proc.stderr
        assert pool_contents(cluster, (*POOLS, "fast")) == before

        with cluster.admin() as conn:
            caps = conn.mon("auth get", entity="client.cinder-volume")[0]["caps"]
        osd = ", ".join(g for g in caps["osd"].split(", ") if g != "profile rbd pool=fast")
        assert osd != caps["osd"]
        set_caps(cluster, {"cinder-volume": [
            word for daemon, cap in {**caps, "osd": osd}.items() for word in (daemon, cap)]})
        proc, data = verify(cluster, two)
        assert proc.returncode == 1 and data["passed"] is False
        failed = {k for k, v in results(data).items() if v == "fail"}
        assert failed == {
            "cinder-volume: create volume [rbd-fast]",
            "cinder-volume: volume from image (copy-on-write clone) [rbd-fast]",
            "cinder-volume: evacuate: take over a crashed host's volume [rbd-fast]",
            "cinder-backup: full backup (source as Cinder's user) [rbd-fast]"}
        by_name = {f"{s['service']}: {s['name']}": s for s in data["steps"]}
        create = by_name["cinder-volume: create volume [rbd-fast]"]
        assert "backend rbd-fast" in create["cause"] and "pool fast" in create["cause"]
        assert "profile rbd pool=fast" in create["fix"]
        assert "rbd-fast" in by_name["cinder-backup: full backup (source as Cinder's user) "
                                     "[rbd-fast]"]["cause"]
        for name in CINDER_STEPS:  # the other backend still works
            assert by_name[f"cinder-volume: {name} [rbd-volume]"]["result"] == "pass"
        assert "  FAIL  cinder-volume: create volume [rbd-fast]  " in proc.stderr
        assert pool_contents(cluster, (*POOLS, "fast")) == before
    finally:
        assert cluster.cli("apply", "-f", str(spec), "--yes",
                           "--allow-disruptive").returncode == 0
        with cluster.admin() as conn:
            conn.mon("osd pool rm", pool="fast", pool2="fast",
                     yes_i_really_really_mean_it=True)
