"""status against a real sandbox holding what an OpenStack cloud leaves in its pools: a
Glance image with a protected snapshot, Cinder volumes and Nova disks cloned from it, a
volume with piling backup snapshots, a trash entry, a quota, a guest disk locked by a live
client and two locked by clients that crashed (one then blocklisted). Text and JSON are
checked field by field against what was made and what Ceph itself reports."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cephstack.report.statusviews import COLUMNS, human_bytes
from cephstack.spec.defaults import DEFAULT_SPEC

ROOT = Path(__file__).parents[2]
MiB = 1 << 20
WATCH_TIMEOUT = 5  # osd_client_watch_timeout here, so a crashed client's watch goes fast
QUOTA = 64 * MiB


class Scene:
    image = str(uuid.uuid4())  # a Glance image id
    clone_volume = f"volume-{uuid.uuid4()}"  # Cinder: volume from the image (COW)
    backed_up = f"volume-{uuid.uuid4()}"  # Cinder: a volume with 3 backup snapshots
    live = f"{uuid.uuid4()}_disk"  # Nova: a running guest (lock held, watching)
    crashed = f"{uuid.uuid4()}_disk"  # its host crashed: lock held, watch expired
    fenced = f"{uuid.uuid4()}_disk"  # its host crashed and was blocklisted
    trashed = f"{uuid.uuid4()}_disk"  # deleted into the trash
    backups = [f"backup.{uuid.uuid4()}.snap.{1700000000 + i}.{i}" for i in range(3)]
    addresses: dict[str, str] = {}


def _hold(cluster, keyring: Path, image: str) -> subprocess.Popen[str]:
    """A guest-disk client as Nova holding the exclusive lock (cephstack.ceph.lockprobe)."""
    proc = subprocess.Popen([sys.executable, "-m", "cephstack.ceph.lockprobe", "hold",
                             str(cluster.box.conf), str(keyring), "client.nova", "vm", image],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline().strip() if ready else ""
    if line != "locked":
        proc.kill()
        proc.wait()
        pytest.fail(f"the lock holder did not start: {line!r}")
    return proc


def _lock_address(conn, image: str) -> str:
    with conn.image("vm", image, read_only=True) as img:
        return img.list_lockers()["lockers"][0][2]


def _watchers(conn, image: str) -> list[str]:
    with conn.image("vm", image, read_only=True) as img:
        return [w["addr"] for w in img.watchers_list()]


def _df(conn) -> dict[str, dict]:
    return {p["name"]: p["stats"] for p in conn.mon("df", detail="detail")["pools"]}


@pytest.fixture(scope="module")
def scene(cluster):
    assert "volume:  {pg_num: 32}" in DEFAULT_SPEC
    spec = cluster.write_spec(text=DEFAULT_SPEC.replace(
        "volume:  {pg_num: 32}", "volume:  {pg_num: 32, quota: {max_bytes: 64M}}"))
    holders: list[subprocess.Popen[str]] = []
    with cluster.admin() as conn:
        conn.mon("config set", who="osd", name="osd_client_watch_timeout",
                 value=str(WATCH_TIMEOUT))
        done = cluster.cli("apply", "-f", str(spec), "--yes")
        assert done.returncode == 0, done.stderr
        features = conn.features("layering", "exclusive_lock")
        conn.rbd("create", "images", Scene.image, 8 * MiB, 23, old_format=False,
                 features=features)
        with conn.image("images", Scene.image) as img:
            img.write(b"\x01" * MiB, 0)
            img.create_snap("snap")
            img.protect_snap("snap")
        conn.clone("images", Scene.image, "snap", "volume", Scene.clone_volume, features)
        for disk in (Scene.live, Scene.crashed, Scene.fenced):
            conn.clone("images", Scene.image, "snap", "vm", disk, features)
        conn.rbd("create", "volume", Scene.backed_up, 32 * MiB, 22, old_format=False,
                 features=features)
        with conn.image("volume", Scene.backed_up) as img:
            img.write(b"\x02" * (16 * MiB), 0)
            for snap in Scene.backups:
                img.create_snap(snap)
        conn.rbd("create", "vm", Scene.trashed, 8 * MiB, 22, old_format=False,
                 features=features)
        conn.rbd("trash_move", "vm", Scene.trashed)
        keyring = cluster.workdir / "keys" / "ceph.client.nova.keyring"
        try:
            holders.append(_hold(cluster, keyring, Scene.live))
            for disk in (Scene.crashed, Scene.fenced):
                crashed = _hold(cluster, keyring, disk)
                crashed.kill()  # SIGKILL: a host crash, no release
                crashed.wait()
            Scene.addresses = {d: _lock_address(conn, d)
                               for d in (Scene.live, Scene.crashed, Scene.fenced)}
            conn.mon("osd blocklist", blocklistop="add", addr=Scene.addresses[Scene.fenced])
            deadline = time.monotonic() + 6 * WATCH_TIMEOUT + 30
            while _watchers(conn, Scene.crashed) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert not _watchers(conn, Scene.crashed), "the crashed client's watch lingers"
            # Pool statistics reach the monitors every few seconds: wait until they hold the
            # writes above and stand still, so status and df can be compared.
            previous, deadline = None, time.monotonic() + 60
            while time.monotonic() < deadline:
                now = _df(conn)
                if now == previous and now["volume"]["stored"] >= 16 * MiB:
                    break
                previous = now
                time.sleep(3)
            yield spec
        finally:
            for proc in holders:
                proc.send_signal(signal.SIGKILL)
                proc.wait()


def _rows(text: str) -> dict[str, dict[str, str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("POOL "))
    assert re.split(r"\s{2,}", lines[start].strip()) == list(COLUMNS)
    out = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        out[cells[0]] = dict(zip(COLUMNS, cells, strict=True))
    return out


def test_status_json_field_by_field(cluster, scene):
    started = time.monotonic()
    proc = cluster.cli("status", "-f", str(scene), "--output", "json")
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    with cluster.admin() as conn:
        df = _df(conn)
    pools = {p["name"]: p for p in data["pools"]}
    assert list(pools) == ["backups", "images", "vm", "volume"]
    assert data["images_pool"] == "images" and data["missing_pools"] == []
    assert data["services"] == {
        "cinder-backup": {"user": "client.cinder-backup", "pools": ["backups"]},
        "cinder-volume": {"user": "client.cinder-volume", "pools": ["volume"]},
        "glance": {"user": "client.glance", "pools": ["images"]},
        "nova": {"user": "client.nova", "pools": ["vm"]}}
    # observe's eight (with one `config diff` per monitor), then status's own.
    assert data["reads"] == {"mon_commands": 11, "images_opened": 6, "max_images": 1000}
    assert data["blocklist_entries"] >= 1 and data["cluster"]["status"]
    assert elapsed < 30 and data["seconds"] < 10
    expected = {  # pool -> images, snapshots, clones, trash entries
        "backups": (0, 0, 0, 0), "images": (1, 1, 0, 0), "vm": (3, 0, 3, 1),
        "volume": (2, 3, 1, 0)}
    for name, pool in pools.items():
        assert pool["services"] == [{"backups": "cinder-backup", "images": "glance",
                                     "vm": "nova", "volume": "cinder-volume"}[name]]
        assert (pool["images"], pool["snapshots"], pool["clones"],
                pool["trash"]["entries"]) == expected[name], name
        assert pool["stored_bytes"] == df[name]["stored"], name
        assert pool["used_bytes"] == df[name]["bytes_used"], name
        assert pool["objects"] == df[name]["objects"], name
        assert pool["max_avail_bytes"] == df[name]["max_avail"] > 0, name
        total = pool["stored_bytes"] + pool["max_avail_bytes"]
        assert pool["fill_ratio"] == round(pool["stored_bytes"] / total, 6)
        assert pool["pgs"] == {"total": 32, "inactive": 0, "by_state": {"active+clean": 32}}
        assert pool["read"] is True and pool["note"] is None
        assert pool["scan"] == {"images_opened": pool["images"], "sampled": False}
        assert pool["clones_complete"] is True
        if name != "volume":
            assert pool["quota"] == {"max_bytes": 0, "max_objects": 0, "bytes_ratio": None,
                                     "objects_ratio": None}
        if name != "vm":
            assert pool["locks"] == [] and pool["watchers"] == []
    volume = pools["volume"]
    assert volume["quota"] == {"max_bytes": QUOTA, "max_objects": 0,
                               "bytes_ratio": round(volume["stored_bytes"] / QUOTA, 6),
                               "objects_ratio": None}
    assert volume["stored_bytes"] >= 16 * MiB
    assert volume["backup_snapshots"] == [{"volume": Scene.backed_up, "count": 3}]
    assert volume["backup_pile_ups"] == 1
    assert pools["images"]["images_with_clones"] == 1
    [trashed] = pools["vm"]["trash"]["images"]
    assert trashed == {"name": Scene.trashed, "source": "USER",
                       "deferred_until": trashed["deferred_until"],
                       "deleted_at": trashed["deleted_at"]}
    assert pools["vm"]["trash"]["oldest_deleted_at"] == trashed["deleted_at"] is not None
    vm = pools["vm"]
    locks = {lock["image"]: lock for lock in vm["locks"]}
    assert set(locks) == {Scene.live, Scene.crashed, Scene.fenced}
    for image, lock in locks.items():
        assert lock["address"] == Scene.addresses[image]
        assert lock["exclusive"] is True and lock["cookie"].startswith("auto ")
        assert re.fullmatch(r"client\.\d+", lock["entity"])
    assert (locks[Scene.live]["state"], locks[Scene.live]["why"]) == (
        "live", "holder watches the image")
    assert (locks[Scene.crashed]["state"], locks[Scene.crashed]["why"]) == (
        "stale", "holder no longer watches the image (librbd breaks this lock)")
    assert (locks[Scene.fenced]["state"], locks[Scene.fenced]["why"]) == (
        "stale", "holder blocklisted")
    assert vm["stale_locks"] == 2 and [lk["state"] for lk in vm["locks"]][:2] == ["stale"] * 2
    assert vm["watched_images"] == 1
    assert vm["watchers"] == [{"image": Scene.live, "address": Scene.addresses[Scene.live]}]
    assert vm["backup_snapshots"] == [] and vm["backup_pile_ups"] == 0
    # two stale locks, one piling volume and the trash's oldest entry
    assert len(data["notes"]) == 4
    assert f"Trash: pool vm holds 1 deleted image(s), the oldest ({Scene.trashed}) since " \
           f"{trashed['deleted_at']}" in data["notes"]
    assert f"Stale lock: vm/{Scene.fenced} held by {locks[Scene.fenced]['entity']} at " \
           f"{Scene.addresses[Scene.fenced]}: holder blocklisted" in data["notes"]


def test_status_text_one_line_per_pool(cluster, scene):
    proc = cluster.cli("status", "-f", str(scene))
    assert proc.returncode == 0, proc.stderr
    with cluster.admin() as conn:
        df = _df(conn)
    rows = _rows(proc.stdout)
    assert list(rows) == ["backups", "images", "vm", "volume"]
    for name, row in rows.items():
        assert row["STORED"] == human_bytes(df[name]["stored"]), name
        assert row["MAX AVAIL"] == human_bytes(df[name]["max_avail"]), name
        assert row["PGS"] == "32 active+clean"
    ratio = df["volume"]["stored"] / QUOTA
    assert rows["volume"] | {"STORED": "", "MAX AVAIL": "", "FULL": ""} == {
        "POOL": "volume", "SERVICE": "cinder-volume", "STORED": "", "MAX AVAIL": "",
        "FULL": "", "QUOTA": f"64.0 MiB ({ratio * 100:.0f}%)", "IMAGES": "2", "SNAPS": "3",
        "CLONES": "1", "TRASH": "0", "WATCHED": "0", "LOCKS": "0", "STALE": "0",
        "BACKUP SNAPS": "3 (1 piling)", "PGS": "32 active+clean"}
    assert rows["vm"] | {"STORED": "", "MAX AVAIL": "", "FULL": ""} == {
        "POOL": "vm", "SERVICE": "nova", "STORED": "", "MAX AVAIL": "", "FULL": "",
        "QUOTA": "-", "IMAGES": "3", "SNAPS": "0", "CLONES": "3", "TRASH": "1",
        "WATCHED": "1", "LOCKS": "3", "STALE": "2", "BACKUP SNAPS": "-",
        "PGS": "32 active+clean"}
    assert (rows["images"]["IMAGES"], rows["images"]["SNAPS"], rows["images"]["CLONES"],
            rows["images"]["SERVICE"]) == ("1", "1", "0", "glance")
    assert (rows["backups"]["IMAGES"], rows["backups"]["SERVICE"]) == ("0", "cinder-backup")
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Cluster: HEALTH_")
    assert f"Backup snapshots piling up: volume/{Scene.backed_up} has 3 (set " \
           "backup_ceph_max_snapshots in cinder.conf)" in lines
    assert sum(line.startswith("Stale lock: vm/") for line in lines) == 2
    # As the JSON's reads: observe's eight (a `config diff` per monitor), then status's own.
    assert re.search(r"^Read in [0-9.]+ s: 11 mon commands, 6 images opened \(at most 1000\)\.$",
                     proc.stdout, re.M)


def test_status_samples_beyond_max_images(cluster, scene):
    proc = cluster.cli("status", "-f", str(scene), "--max-images", "2", "--output", "json")
    data = json.loads(proc.stdout)
    pools = {p["name"]: p for p in data["pools"]}
    assert data["reads"]["images_opened"] == 2
    assert {n: p["scan"]["images_opened"] for n, p in pools.items()} == {
        "backups": 0, "images": 0, "vm": 1, "volume": 1}
    assert pools["vm"]["scan"]["sampled"] and not pools["vm"]["clones_complete"]
    # Counts from the directory and librbd's pool stats stay exact.
    assert (pools["vm"]["images"], pools["volume"]["snapshots"]) == (3, 3)
    text = cluster.cli("status", "-f", str(scene), "--max-images", "2").stdout
    assert "Sampled: pool vm: 1 of 3 images opened" in text
    assert _rows(text)["vm"]["CLONES"].startswith(">=")


def test_status_prometheus_textfile(cluster, scene):
    out = cluster.workdir / "textfile" / "cephstack.prom"
    proc = cluster.cli("status", "-f", str(scene), "--prometheus", "--out", str(out))
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    text = out.read_text()
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    assert 'cephstack_pool_stale_locks{pool="vm",service="nova"} 2\n' in text
    assert f'cephstack_pool_quota_bytes{{pool="volume",service="cinder-volume"}} {QUOTA}\n' \
        in text
    assert 'cephstack_pool_trash_images{pool="vm",service="nova"} 1\n' in text
    assert 'cephstack_pool_clones{pool="vm",service="nova"} 3\n' in text
    assert "# TYPE cephstack_pool_max_avail_bytes gauge\n" in text


def test_status_without_a_spec_recognises_the_services(cluster, scene):
    proc = cluster.cli("status", "--conf", str(cluster.box.conf), "--keyring",
                       str(cluster.box.admin_keyring), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {p["name"]: p["services"] for p in data["pools"]} == {
        "backups": ["cinder-backup"], "images": ["glance"], "vm": ["nova"],
        "volume": ["cinder-volume"]}
    assert {p["name"]: p["clones"] for p in data["pools"]}["vm"] == 3
