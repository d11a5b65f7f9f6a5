"""Trash that empties, on a real sandbox: apply sets the default purge schedule on
Cinder's pool (plan shows it, a second plan finds nothing), a spec's interval replaces it,
and a volume deleted the way Cinder deletes one that has a clone sits in the trash, is kept
while its clone lives and is purged by the manager's schedule once the clone is gone."""

from __future__ import annotations

import pytest

from cephstack.ceph.adapter import CephConnection, ClusterAccess
from cephstack.ceph.extras import purge_schedules
from cephstack.verify.trash import CLONE_V2, trash_drill

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def applied(cluster):
    spec = cluster.write_spec()
    plan = cluster.cli("plan", "-f", str(spec))
    first = cluster.cli("apply", "-f", str(spec), "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    return spec, plan, first


def test_apply_sets_the_default_schedule_on_cinders_pool(cluster, applied):
    spec, plan, first = applied
    assert "~ trash_purge.volume" in plan.stdout, plan.stdout
    assert "interval: (none) -> 1h" in plan.stdout
    assert "trash_purge.images" not in plan.stdout  # only Cinder's pools by default
    with cluster.admin() as conn:
        assert purge_schedules(conn) == {"volume": ("1h",)}
    again = cluster.cli("plan", "-f", str(spec))
    assert "No changes: the cluster matches the spec." in again.stdout, again.stdout


def test_a_clone_dependent_delete_is_purged_by_the_schedule(cluster, applied):
    spec, _, _ = applied
    text = spec.read_text().replace("volume:  {pg_num: 32}",
                                    "volume:  {pg_num: 32, trash_purge: 1m}")
    assert "trash_purge: 1m" in text
    spec.write_text(text)
    plan = cluster.cli("plan", "-f", str(spec))
    assert "interval: 1h -> 1m" in plan.stdout, plan.stdout
    done = cluster.cli("apply", "-f", str(spec), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    with cluster.admin() as conn:
        assert purge_schedules(conn) == {"volume": ("1m",)}
    keyring = str(cluster.workdir / "keys" / "ceph.client.cinder-volume.keyring")
    access = ClusterAccess(str(cluster.box.conf), keyring, "client.cinder-volume", 5,
                           options=CLONE_V2)
    with CephConnection(access) as cinder:
        steps = trash_drill(cinder, "volume", timeout=200)
    assert [s.name for s in steps if s.ok] == [
        "volume with a clone", "delete as Cinder does", "purge keeps a parent",
        "remove the clone", "purged"], steps
    assert "purged by the manager's purge schedule" in steps[-1].detail
    with cluster.admin() as conn:
        assert list(conn.rbd("trash_list", "volume")) == []
        assert list(conn.rbd("list", "volume")) == []


def test_off_removes_the_schedule(cluster, applied):
    spec, _, _ = applied
    spec.write_text(spec.read_text().replace("trash_purge: 1m", "trash_purge: off"))
    done = cluster.cli("apply", "-f", str(spec), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    with cluster.admin() as conn:
        assert purge_schedules(conn) == {}
    audit = cluster.cli("audit", "-f", str(spec))
    assert audit.returncode == 1, audit.stdout + audit.stderr
    assert "trash-not-purged" in audit.stdout and "pool volume" in audit.stdout
