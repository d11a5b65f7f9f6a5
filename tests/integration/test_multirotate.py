"""`cephstack rotate` for a spec with several clusters, against two real sandboxes (central,
edge1: test_multicluster's fixture): every user rotated on each cluster holding it (keys
differ, caps kept), its <cluster>.client.<user>.keyring and the rendered bundles rewritten
(the new keys authenticate), nothing left to do after; a rotation stopped on one cluster
(or SIGKILLed right after the new keys) finished by a re-run without a second new key;
--cluster limits it; a cluster that is down is reported while the other is rotated, and a
re-run finishes once it is back (central: its files only, without a second new key)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cephstack.ceph.adapter import CephConnection, ClusterAccess
from cephstack.ceph.auth import AUTH_IMPORT, key_stamp, read_marker, rotate_keys, write_marker
from cephstack.ceph.cephx import new_key
from cephstack.keyfiles import Secret, keyring_key
from tests.integration.test_multicluster import admin, cli, two  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

# entity -> (cluster, a pool of it there) for each user of the spec on each cluster
USERS = {("central", "client.glance"): "images", ("edge1", "client.glance"): "images-edge1",
         ("central", "client.cinder-volume"): "volume",
         ("edge1", "client.cinder-volume"): "volume-edge1",
         ("central", "client.cinder-backup"): "backups", ("edge1", "client.nova"): "vm-edge1"}


@pytest.fixture(scope="module")
def applied(two):  # noqa: F811 - test_multicluster's fixture
    root, boxes, spec_path = two
    bundles = root / "bundles"
    spec = root / "rotate.yaml"
    spec.write_text(spec_path.read_text() + f"render: {{directory: {bundles}}}\n")
    done = cli(root, "apply", "-f", str(spec), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    return root, boxes, spec, bundles


def _auth(boxes, cluster: str, entity: str) -> dict:
    with admin(boxes[cluster]) as conn:
        return conn.mon("auth get", entity=entity)[0]


def _keyring(root: Path, cluster: str, entity: str) -> Path:
    return root / "keys" / f"{cluster}.{entity}.keyring"


def _on_disk(root: Path, cluster: str, entity: str) -> str:
    path = _keyring(root, cluster, entity)
    return keyring_key(path.read_text(), entity).reveal()


def _works(root: Path, boxes, cluster: str, entity: str, pool: str) -> None:
    """The keyring file of `entity` authenticates to `cluster` and reaches its pool."""
    access = ClusterAccess(str(boxes[cluster].conf), str(_keyring(root, cluster, entity)),
                           entity, 5)
    with CephConnection(access) as conn, conn.ioctx(pool) as ioctx:
        ioctx.write_full("rotate-probe", b"x")


def _holding(bundles: Path, key: str) -> list[str]:
    return sorted(str(p.relative_to(bundles)) for p in bundles.rglob("*") if p.is_file()
                  and key in p.read_text(errors="replace"))


def _converged(root: Path, boxes, spec: Path) -> None:
    """Nothing left to do: plan has no change (keyrings and bundles hold the cluster's
    keys), and no cluster keeps a rotation record."""
    plan = cli(root, "plan", "-f", str(spec), "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    for box in boxes.values():
        with admin(box) as conn:
            assert read_marker(conn) is None


def test_rotate_all_rotates_each_cluster_and_rewrites_its_files(applied):
    root, boxes, spec, bundles = applied
    before = {u: _auth(boxes, *u) for u in USERS}
    held = {u: _holding(bundles, a["key"]) for u, a in before.items()}
    assert all(held.values()), held
    dry = cli(root, "rotate", "--all", "-f", str(spec), "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "central: record the rotation of" in dry.stdout
    assert "edge1: new keys for" in dry.stdout and "Dry run: nothing was changed." in dry.stdout
    assert {u: _auth(boxes, *u)["key"] for u in USERS} == \
        {u: a["key"] for u, a in before.items()}

    run = cli(root, "rotate", "--all", "-f", str(spec), "--yes", "--output", "json")
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(run.stdout)
    assert doc["failed"] == [] and set(doc["clusters"]) == {"central", "edge1"}
    assert "client.nova" in doc["clusters"]["edge1"]["rotate"]
    assert "client.cinder-backup" not in doc["clusters"]["edge1"]["rotate"]
    assert "compute-edge1" in doc["install_bundles"]
    for (cluster, entity), pool in USERS.items():
        after = _auth(boxes, cluster, entity)
        old = before[(cluster, entity)]
        assert after["key"] != old["key"] and after["caps"] == old["caps"], (cluster, entity)
        assert _on_disk(root, cluster, entity) == after["key"]
        _works(root, boxes, cluster, entity, pool)
        # Every bundle file that held the old key holds the new one, none the old.
        assert _holding(bundles, old["key"]) == []
        assert _holding(bundles, after["key"]) == held[(cluster, entity)]
    # Nova's libvirt secret value of edge1 is a file of its own in the edge compute bundle.
    assert any("secret" in f for f in _holding(bundles, _auth(boxes, "edge1",
                                                              "client.nova")["key"]))
    _converged(root, boxes, spec)


def test_a_rotation_stopped_on_one_cluster_is_finished_by_a_rerun(applied):
    """edge1's glance key changed in the cluster, its files not yet written (a run killed
    there): the next rotate writes them with that key and rotates nothing twice."""
    root, boxes, spec, _ = applied
    entity = "client.glance"
    current = _auth(boxes, "edge1", entity)
    with admin(boxes["edge1"]) as conn:
        write_marker(conn, {entity: key_stamp(Secret(current["key"]))}, AUTH_IMPORT)
        rotate_keys(conn, AUTH_IMPORT, [(entity, new_key(), current["caps"])])
    rotated = _auth(boxes, "edge1", entity)["key"]
    central = _auth(boxes, "central", entity)["key"]
    assert _on_disk(root, "edge1", entity) == current["key"]  # the files lag behind
    dry = json.loads(cli(root, "rotate", "nova", "-f", str(spec), "--dry-run",
                         "--output", "json").stdout)
    assert dry["clusters"]["edge1"]["finish"] == [entity]
    assert any("stopped before it finished" in n for n in dry["clusters"]["edge1"]["notes"])
    run = cli(root, "rotate", "nova", "-f", str(spec), "--yes", "--output", "json")
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(run.stdout)
    assert (doc["clusters"]["edge1"]["finish"], doc["clusters"]["edge1"]["rotate"]) == \
        ([entity], ["client.nova"])
    assert "central" not in doc["clusters"]  # nova has no pool there
    assert _auth(boxes, "edge1", entity)["key"] == rotated == _on_disk(root, "edge1", entity)
    assert _auth(boxes, "central", entity)["key"] == central
    _works(root, boxes, "edge1", entity, "images-edge1")
    _converged(root, boxes, spec)


def test_a_rotation_killed_after_the_new_keys_is_finished_by_a_rerun(applied):
    """SIGKILLed as soon as a cluster's new keys are committed: each cluster whose keys
    changed gets only its files from the re-run, every keyring then holds the key its
    cluster has, and nothing is left to do."""
    root, boxes, spec, _ = applied
    before = {u: _auth(boxes, *u)["key"] for u in USERS}
    proc = subprocess.Popen([sys.executable, "-m", "cephstack", "rotate", "--all", "-f",
                             str(spec), "--yes"], cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    for line in proc.stderr:
        if "auth import: new keys" in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    changed = {c for (c, e), key in before.items() if _auth(boxes, c, e)["key"] != key}
    assert changed, "killed before any cluster's keys changed"
    rerun = cli(root, "rotate", "--all", "-f", str(spec), "--yes", "--output", "json")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    doc = json.loads(rerun.stdout)
    for cluster in changed:  # its record names the users whose keys it changed
        assert doc["clusters"][cluster]["rotate"] == [] and doc["clusters"][cluster]["finish"]
    for (cluster, entity), pool in USERS.items():
        assert _on_disk(root, cluster, entity) == _auth(boxes, cluster, entity)["key"]
        assert _auth(boxes, cluster, entity)["key"] != before[(cluster, entity)]
        _works(root, boxes, cluster, entity, pool)
    _converged(root, boxes, spec)


def test_cluster_choice_limits_the_rotation(applied):
    root, boxes, spec, _ = applied
    before = {c: _auth(boxes, c, "client.glance")["key"] for c in ("central", "edge1")}
    run = cli(root, "rotate", "glance", "--cluster", "central", "-f", str(spec), "--yes")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "central: rotation complete" in run.stdout and "edge1:" not in run.stdout
    assert _auth(boxes, "central", "client.glance")["key"] != before["central"]
    assert _auth(boxes, "edge1", "client.glance")["key"] == before["edge1"]
    bad = cli(root, "rotate", "cinder-backup", "--cluster", "edge1", "-f", str(spec), "--yes")
    assert bad.returncode == 2 and "on none of the clusters chosen (edge1)" in bad.stderr
    _converged(root, boxes, spec)


def test_a_cluster_down_is_reported_the_other_rotated_and_a_rerun_finishes(applied):
    """edge1's monitor and manager stop (its OSD and stores kept), then come back."""
    root, boxes, spec, bundles = applied
    before = {u: _auth(boxes, *u)["key"] for u in USERS}
    for daemon in ("mgr.x", "mon.a"):
        boxes["edge1"].stop_daemon(daemon)
    try:
        run = cli(root, "rotate", "--all", "-f", str(spec), "--yes", "--output", "json")
        assert run.returncode == 3, run.stdout + run.stderr  # edge1's: unreachable
        doc = json.loads(run.stdout)
        assert doc["failed"] == ["edge1"]
        assert doc["clusters"]["edge1"]["error"]["kind"] == "unreachable"
        assert "error: cluster edge1:" in run.stderr
        # central rotated, its keyring files rewritten; the bundles need edge1 too, so
        # central keeps its record for the re-run.
        assert doc["rendered"]["compared"] is False and doc["rendered"]["error"] is None
        assert "rendering needs every cluster, and edge1 failed" in doc["rendered"]["note"]
        for (cluster, entity), pool in USERS.items():
            if cluster == "central":
                assert _auth(boxes, cluster, entity)["key"] != before[(cluster, entity)]
                assert _on_disk(root, cluster, entity) == _auth(boxes, cluster, entity)["key"]
                _works(root, boxes, cluster, entity, pool)
        with admin(boxes["central"]) as conn:
            assert read_marker(conn) is not None
        text = cli(root, "rotate", "glance", "-f", str(spec), "--dry-run")
        assert text.returncode == 3 and "error: edge1:" in text.stdout
        assert "central: finish the rotation of" in text.stdout
    finally:
        for daemon in ("mon.a", "mgr.x"):
            boxes["edge1"].start_daemon(daemon)
    central = {u: _auth(boxes, *u)["key"] for u in USERS if u[0] == "central"}
    rerun = cli(root, "rotate", "--all", "-f", str(spec), "--yes", "--output", "json")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    doc = json.loads(rerun.stdout)
    assert doc["clusters"]["central"]["rotate"] == []  # files only: no second new key
    assert sorted(doc["clusters"]["central"]["finish"]) == sorted(e for _, e in central)
    assert {u: _auth(boxes, *u)["key"] for u in central} == central
    for (cluster, entity), _pool in USERS.items():
        key = _auth(boxes, cluster, entity)["key"]
        assert _on_disk(root, cluster, entity) == key and _holding(bundles, key)
    _converged(root, boxes, spec)
