"""`cephstack status` for a spec with several clusters, against two real sandboxes (central,
edge1: test_multicluster's fixture): each cluster's pools in its own text section and JSON
document, a cluster label on every Prometheus sample, and a cluster whose monitor is down
shown with its error while the other's status is shown."""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.test_multicluster import cli, two  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

POOLS = {"central": {"images", "volume", "backups"},
         "edge1": {"images-edge1", "volume-edge1", "vm-edge1"}}


@pytest.fixture(scope="module")
def applied(two):  # noqa: F811 - test_multicluster's fixture
    root, boxes, spec = two
    done = cli(root, "apply", "-f", str(spec), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    return root, boxes, spec


def test_status_shows_each_clusters_pools(applied):
    root, _, spec = applied
    text = cli(root, "status", "-f", str(spec))
    assert text.returncode == 0, text.stdout + text.stderr
    central, edge1 = text.stdout.split("== cluster edge1 (")
    assert central.startswith("== cluster central (")
    for section, name in ((central, "central"), (edge1, "edge1")):
        rows = {line.split()[0] for line in section.splitlines() if line.strip()}
        assert POOLS[name] <= rows, section
        assert not (POOLS["edge1" if name == "central" else "central"] & rows), section
    assert "Across 2 clusters: central: 3 pool(s); edge1: 3 pool(s)." in text.stdout

    run = cli(root, "status", "-f", str(spec), "--output", "json", "--max-images", "5")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["failed"] == []
    for name, pools in POOLS.items():
        one = doc["clusters"][name]
        assert one["error"] is None and one["reads"]["max_images"] == 5
        assert {p["name"] for p in one["pools"]} == pools
        assert one["cluster"]["status"].startswith("HEALTH_")


def test_prometheus_labels_every_sample_with_its_cluster(applied, tmp_path):
    root, _, spec = applied
    out = tmp_path / "textfile" / "cephstack.prom"
    run = cli(root, "status", "-f", str(spec), "--prometheus", "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout == "" and out.stat().st_mode & 0o777 == 0o644
    samples = [line for line in out.read_text().splitlines() if not line.startswith("#")]
    assert samples and all(re.match(r'^cephstack_[a-z_]+\{cluster="(central|edge1)"', s)
                           for s in samples), samples
    stored = {re.search(r'cluster="([^"]+)",pool="([^"]+)"', s).groups()
              for s in samples if s.startswith("cephstack_pool_stored_bytes{")}
    assert stored == {(c, p) for c, pools in POOLS.items() for p in pools}
    assert {s.split()[0] for s in samples if s.startswith("cephstack_status_timestamp")} == \
        {'cephstack_status_timestamp_seconds{cluster="central"}',
         'cephstack_status_timestamp_seconds{cluster="edge1"}'}


def test_a_glance_image_missing_from_the_edge_store_is_listed(applied):
    from cephstack.ceph.adapter import CephConnection, ClusterAccess

    root, boxes, spec = applied
    image = "5f0c6a3e-1b2d-4c3e-9f4a-7b8c9d0e1f2a"  # Glance names it after the image id
    box = boxes["central"]
    with CephConnection(ClusterAccess(str(box.conf), str(box.admin_keyring))) as conn:
        conn.rbd("create", "images", image, 4 * 1024 * 1024)
    try:
        text = cli(root, "status", "-f", str(spec))
        assert text.returncode == 0, text.stdout + text.stderr
        [line] = [x for x in text.stdout.splitlines() if x.startswith("Glance store ")]
        assert line.startswith("Glance store edge1 (edge1/images-edge1) lacks 1 image(s)")
        assert image in line and "--stores edge1" in line
        doc = json.loads(cli(root, "status", "-f", str(spec), "--output", "json").stdout)
        assert {s["store"]: s["missing_images"] for s in doc["glance_stores"]} == {
            "central": [], "edge1": [image]}
    finally:
        with CephConnection(ClusterAccess(str(box.conf), str(box.admin_keyring))) as conn:
            conn.rbd("remove", "images", image)


def test_a_cluster_that_is_down_is_shown_with_its_error(applied):
    root, boxes, spec = applied
    for daemon in ("mgr.x", "mon.a"):
        boxes["edge1"].stop_daemon(daemon)
    try:
        text = cli(root, "status", "-f", str(spec))
        assert text.returncode == 3, text.stdout + text.stderr  # edge1's: unreachable
        central, edge1 = text.stdout.split("== cluster edge1 (")
        assert POOLS["central"] <= {line.split()[0] for line in central.splitlines()
                                    if line.strip()}
        assert "error: edge1: cannot reach the cluster" in edge1
        assert "central: 3 pool(s); edge1: FAILED." in text.stdout
        assert "error: failed: edge1" in text.stderr
        run = cli(root, "status", "-f", str(spec), "--output", "json")
        assert run.returncode == 3
        doc = json.loads(run.stdout)
        assert doc["failed"] == ["edge1"]
        assert doc["clusters"]["edge1"]["error"]["kind"] == "unreachable"
        assert {p["name"] for p in doc["clusters"]["central"]["pools"]} == POOLS["central"]
        assert "error: cluster edge1:" in run.stderr
        # Prometheus: edge1 keeps one sample, 0, for the shipped CephstackClusterNotRead.
        prom = cli(root, "status", "-f", str(spec), "--prometheus")
        assert prom.returncode == 3
        lines = prom.stdout.splitlines()
        assert 'cephstack_cluster_read{cluster="edge1"} 0' in lines
        assert 'cephstack_cluster_read{cluster="central"} 1' in lines
        assert not [line for line in lines if 'cluster="edge1",pool=' in line]
    finally:
        for daemon in ("mon.a", "mgr.x"):
            boxes["edge1"].start_daemon(daemon)
