"""Several clusters in one spec, against two real sandboxes: plan and apply both at once,
addresses prefixed by cluster, a second apply with nothing to do, keyring files named per
cluster, and a cluster that is down while the other is applied and reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cephstack.ceph.adapter import CephConnection, ClusterAccess
from cephstack.keyfiles import keyring_key
from cephstack.sandbox.cluster import Sandbox
from cephstack.spec.caps import Caps
from cephstack.spec.catalog import desired_clients
from cephstack.spec.fleet import split
from cephstack.spec.load import load_spec

pytestmark = pytest.mark.slow

SPEC = """\
clusters:
  central: {{conf: {central}/central.conf, keyring: {central}/central.client.admin.keyring}}
  edge1:
    conf: {edge1}/edge1.conf
    keyring: {edge1}/edge1.client.admin.keyring
    connect_timeout: 3
pools:
  images:       {{cluster: central, pg_num: 8}}
  images-edge1: {{cluster: edge1, pg_num: 8}}
  volume:       {{cluster: central, pg_num: 8}}
  volume-edge1: {{cluster: edge1, pg_num: 8}}
  vm-edge1:     {{cluster: edge1, pg_num: 8}}
  backups:      {{cluster: central, pg_num: 8}}
services:
  glance:        {{user: glance, pools: [images, images-edge1]}}
  cinder-volume: {{user: cinder-volume, pools: [volume, volume-edge1]}}
  cinder-backup: {{user: cinder-backup, pool: backups}}
  nova:          {{user: nova, pool: vm-edge1}}
keyrings: {{directory: {keys}}}
"""


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    boxes = {name: Sandbox(root / name, cluster=name) for name in ("central", "edge1")}
    try:
        for box in boxes.values():
            box.up()
            RUNNING.append(box)
        spec = root / "two.yaml"
        spec.write_text(SPEC.format(central=root / "central", edge1=root / "edge1",
                                    keys=root / "keys"))
        yield root, boxes, spec
    finally:
        RUNNING.clear()
        for box in boxes.values():
            box.down()


RUNNING: list[Sandbox] = []  # the sandboxes whose keys must never be printed


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI as a process; no cephx key of a running sandbox in its output."""
    proc = subprocess.run([sys.executable, "-m", "cephstack", *args], capture_output=True,
                          text=True, cwd=root, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    for box in RUNNING:
        if box.status().up:
            with admin(box) as conn:
                for entry in conn.mon("auth ls")["auth_dump"]:
                    assert entry["key"] not in proc.stdout + proc.stderr, "a key was printed"
    return proc


def admin(box: Sandbox) -> CephConnection:
    return CephConnection(ClusterAccess(str(box.conf), str(box.admin_keyring)))


def test_apply_both_clusters_then_nothing_to_do(two):
    root, boxes, spec_path = two
    plan = cli(root, "plan", "-f", str(spec_path), "--output", "json")
    assert plan.returncode == 0, plan.stderr
    doc = json.loads(plan.stdout)
    addresses = {a["address"] for a in doc["actions"]}
    assert {"central/pool.images", "edge1/pool.images-edge1", "edge1/pool.vm-edge1",
            "central/client.cinder-backup"} <= addresses
    assert not any(a.startswith("edge1/pool.backups") for a in addresses)

    first = cli(root, "apply", "-f", str(spec_path), "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "central/pool.volume" in first.stdout and "edge1/pool.volume-edge1" in first.stdout
    for part in split(load_spec(spec_path)).values():
        box = boxes[part.cluster_name]
        with admin(box) as conn:
            pools = set(conn.mon("osd pool ls"))
            auth = {e["entity"]: e for e in conn.mon("auth ls")["auth_dump"]}
        assert set(part.pools) <= pools
        for entity, want in desired_clients(part).items():
            assert Caps.parse(auth[entity]["caps"]) == want.caps
            keyring = root / "keys" / f"{part.cluster_name}.{entity}.keyring"
            assert keyring_key(keyring.read_text(), entity).reveal() == auth[entity]["key"]
    # Cinder on edge1 reads edge1's Glance pool, and nothing of central's.
    with admin(boxes["edge1"]) as conn:
        caps = {e["entity"]: e["caps"] for e in conn.mon("auth ls")["auth_dump"]}
    assert "profile rbd-read-only pool=images-edge1" in caps["client.cinder-volume"]["osd"]
    assert "client.cinder-backup" not in caps

    again = cli(root, "apply", "-f", str(spec_path), "--yes", "--output", "json")
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["changes"] is False and doc["actions"] == [] and doc["failed"] == []
    assert set(doc["clusters"]) == {"central", "edge1"}


def test_a_cluster_down_is_reported_and_the_other_applied(two):
    root, boxes, spec_path = two
    extra = spec_path.read_text().replace(
        "  backups:", "  more-central: {cluster: central, pg_num: 8}\n"
        "  more-edge1: {cluster: edge1, pg_num: 8}\n  backups:")
    changed = root / "more.yaml"
    changed.write_text(extra)
    boxes["edge1"].down()
    try:
        run = cli(root, "apply", "-f", str(changed), "--yes", "--output", "json")
        assert run.returncode == 3, run.stdout + run.stderr  # the unreachable cluster's code
        doc = json.loads(run.stdout)  # one JSON document, both clusters in it
        assert doc["failed"] == ["edge1"]
        assert doc["clusters"]["edge1"]["error"]["kind"] == "unreachable"
        assert "edge1.conf" in doc["clusters"]["edge1"]["error"]["message"]
        assert "central: + pool more-central" in doc["applied"]
        assert doc["clusters"]["central"]["converged"] is True
        with admin(boxes["central"]) as conn:
            assert "more-central" in conn.mon("osd pool ls")
        text = cli(root, "plan", "-f", str(changed))
        assert text.returncode == 3
        assert "error: edge1:" in text.stdout and "cannot reach the cluster" in text.stdout
        assert "No changes" in text.stdout  # central's part, still shown
    finally:
        boxes["edge1"].up()


def test_overrides_for_one_cluster_are_refused(two):
    root, _, spec_path = two
    run = cli(root, "plan", "-f", str(spec_path), "--conf", "/etc/ceph/ceph.conf")
    assert run.returncode == 2
    assert "--conf" in run.stderr and "several clusters" in run.stderr


def test_render_names_files_per_cluster_and_each_works(two):
    root, boxes, spec_path = two
    assert cli(root, "apply", "-f", str(spec_path), "--yes").returncode == 0
    out = root / "rendered"
    run = cli(root, "render", "-f", str(spec_path), "--out", str(out), "--output", "json")
    assert run.returncode == 0, run.stderr
    written = {str(Path(f["path"]).relative_to(out)) for f in json.loads(run.stdout)["files"]}
    assert {"controller/etc/ceph/central.conf", "controller/etc/ceph/edge1.conf",
            "controller/etc/ceph/edge1.client.glance.keyring",
            "compute-edge1/etc/ceph/edge1.client.nova.keyring",
            "backup/etc/ceph/central.client.cinder-backup.keyring"} <= written
    assert not any(p.endswith("/ceph.conf") for p in written)
    # Each rendered conf and keyring reaches its own cluster, as the service would.
    etc = out / "controller/etc/ceph"
    for cluster, pool in (("central", "images"), ("edge1", "images-edge1")):
        access = ClusterAccess(str(etc / f"{cluster}.conf"),
                               str(etc / f"{cluster}.client.glance.keyring"), "client.glance", 5)
        with CephConnection(access) as conn, conn.ioctx(pool) as ioctx:
            ioctx.write_full("probe", cluster.encode())
            assert ioctx.read("probe") == cluster.encode()
    assert cli(root, "render", "-f", str(spec_path), "--out", str(out)).stdout.count(
        "unchanged") >= len(written)


def test_audit_covers_every_cluster(two):
    root, _, spec_path = two
    assert cli(root, "apply", "-f", str(spec_path), "--yes").returncode == 0
    run = cli(root, "audit", "-f", str(spec_path), "--output", "json")
    doc = json.loads(run.stdout)
    assert set(doc["clusters"]) == {"central", "edge1"} and doc["failed"] == []
    assert run.returncode in (0, 1), run.stderr  # clean, or warnings (the sandbox's own)


MIRRORED = """\
clusters:
  site-a: {{conf: {a.conf}, keyring: {a.admin_keyring}}}
  site-b: {{conf: {b.conf}, keyring: {b.admin_keyring}}}
pools:
  volume: {{cluster: site-a, pg_num: 8}}
  images: {{cluster: site-a, pg_num: 8}}
services:
  glance: {{user: glance, pool: images}}
  cinder-volume: {{user: cinder-volume, pool: volume}}
mirroring: {{primary: site-a, secondary: site-b, pools: [volume], schedule: 1m}}
keyrings: {{directory: {keys}}}
"""


def test_mirroring_declared_in_the_spec_is_applied_once(two_clusters, tmp_path):
    from cephstack.ceph.mirror import mirroring_changes

    a, b = two_clusters
    RUNNING[:] = [a.box, b.box]
    spec = tmp_path / "mirrored.yaml"
    spec.write_text(MIRRORED.format(a=a.box, b=b.box, keys=tmp_path / "keys"))
    plan = cli(tmp_path, "plan", "-f", str(spec), "--output", "json")
    assert plan.returncode == 0, plan.stderr
    doc = json.loads(plan.stdout)
    assert "site-b/volume" in doc["mirroring"]["pending"]  # the secondary's pool, implicit
    assert "site-b/pool.volume" in {x["address"] for x in doc["actions"]}
    assert "site-b/pool.images" not in {x["address"] for x in doc["actions"]}

    first = cli(tmp_path, "apply", "-f", str(spec), "--yes", "--output", "json")
    assert first.returncode == 0, first.stdout + first.stderr
    doc = json.loads(first.stdout)
    assert any("peer site-b" in step for step in doc["mirroring_applied"])
    with a.admin() as pa, b.admin() as pb:
        assert mirroring_changes(pa, pb, ["volume"], primary_site="site-a",
                                 secondary_site="site-b", schedule="1m") == []
        for conn, site in ((pa, "site-a"), (pb, "site-b")):
            caps = {e["entity"]: e["caps"] for e in conn.mon("auth ls")["auth_dump"]}
            assert caps[f"client.rbd-mirror.{site}"] == {"mon": "profile rbd-mirror",
                                                          "osd": "profile rbd"}
        # Cinder's user on the secondary can use the replica pool after a failover.
        caps = {e["entity"]: e["caps"] for e in pb.mon("auth ls")["auth_dump"]}
        assert "profile rbd pool=volume" in caps["client.cinder-volume"]["osd"]
    assert (tmp_path / "keys" / "site-b.client.rbd-mirror.site-b.keyring").exists()

    again = cli(tmp_path, "apply", "-f", str(spec), "--yes", "--output", "json")
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["changes"] is False and doc["mirroring"]["changes"] == []
    # The mirroring users' mon profiles may blocklist a dead client: no finding on them.
    audit = cli(tmp_path, "audit", "-f", str(spec), "--output", "json")
    found = {(f["id"], f["entity"]) for c in json.loads(audit.stdout)["clusters"].values()
             for f in c["findings"]}
    assert not [f for f in found if f[0] == "mon-cannot-blocklist"], found

    out = tmp_path / "rendered"
    assert cli(tmp_path, "render", "-f", str(spec), "--out", str(out)).returncode == 0
    cinder = (out / "controller/fragments/cinder.conf").read_text()
    assert "replication_device = backend_id:site-b,conf:/etc/ceph/site-b.conf,user:cinder-volume" \
        in cinder
    assert (out / "rbd-mirror-site-b/etc/ceph/site-b.client.rbd-mirror.site-b.keyring").exists()
    assert (out / "controller/etc/ceph/site-b.client.cinder-volume.keyring").exists()


def test_a_saved_plan_applies_or_refuses_per_cluster(two):
    root, boxes, spec_path = two
    assert cli(root, "apply", "-f", str(spec_path), "--yes").returncode == 0
    changed = root / "saved.yaml"
    changed.write_text(spec_path.read_text().replace(
        "  backups:", "  saved-central: {cluster: central, pg_num: 8}\n"
        "  saved-edge1: {cluster: edge1, pg_num: 8}\n  backups:"))
    out = root / "two.plan.json"
    plan = cli(root, "plan", "-f", str(changed), "--out", str(out))
    assert plan.returncode == 0, plan.stderr
    assert "Saved to" in plan.stdout
    with admin(boxes["edge1"]) as conn:  # edge1 changes behind the saved plan's back
        conn.mon("osd pool create", pool="saved-edge1", pg_num=8)
    stale = cli(root, "apply", "--plan", str(out), "--output", "json")
    assert stale.returncode != 0
    assert json.loads(stale.stdout)["error"]["kind"] == "stale-plan"
    assert "edge1 changed" in json.loads(stale.stdout)["error"]["message"]
    with admin(boxes["central"]) as conn:
        assert "saved-central" not in conn.mon("osd pool ls")  # nothing applied
    assert cli(root, "plan", "-f", str(changed), "--out", str(out), "--force").returncode == 0
    applied = cli(root, "apply", "--plan", str(out))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    with admin(boxes["central"]) as conn:
        assert "saved-central" in conn.mon("osd pool ls")


def test_render_directory_in_the_spec_is_planned_written_and_kept(two):
    root, _, spec_path = two
    bundles = root / "bundles"
    spec = root / "rendered.yaml"
    spec.write_text(spec_path.read_text() + f"render: {{directory: {bundles}}}\n")
    plan = cli(root, "plan", "-f", str(spec), "--output", "json")
    assert plan.returncode == 0, plan.stderr
    doc = json.loads(plan.stdout)
    files = {a["address"] for a in doc["rendered"]["actions"]}
    assert f"file {bundles}/controller/etc/ceph/edge1.client.glance.keyring" in files
    assert doc["changes"] is True
    first = cli(root, "apply", "-f", str(spec), "--yes", "--output", "json")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"rendered: + file {bundles}/compute-edge1/etc/ceph/edge1.conf" in \
        json.loads(first.stdout)["applied"]
    assert (bundles / "RENDERED.json").exists()
    clean = cli(root, "plan", "-f", str(spec), "--output", "json")
    assert json.loads(clean.stdout)["changes"] is False, clean.stdout
    cinder = bundles / "controller/fragments/cinder.conf"
    cinder.write_text(cinder.read_text().replace("rbd_cluster_name = edge1", "# lost"))
    drift = cli(root, "plan", "-f", str(spec))
    assert f"~ file {cinder}" in drift.stdout
    assert cli(root, "apply", "-f", str(spec), "--yes").returncode == 0
    assert "rbd_cluster_name = edge1" in cinder.read_text()
