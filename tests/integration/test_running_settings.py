"""Plans decide on the values the monitors run with, not only the config database's: a
cluster whose pool defaults live in ceph.conf (as ceph-ansible and hand-made clusters
have them), and one whose limit was set with `ceph tell mon.a config set`."""

from __future__ import annotations

import json
import subprocess

from cephstack.spec.defaults import DEFAULT_SPEC
from tests.integration.conftest import Cluster


def _ceph(cluster: Cluster, *args: str) -> str:
    """The ceph CLI itself, as an operator would run it."""
    return subprocess.run(["ceph", "-c", str(cluster.box.conf), "-k",
                           str(cluster.box.admin_keyring), *args], check=True,
                          capture_output=True, text=True, timeout=60).stdout


def _plan(cluster: Cluster, spec) -> tuple[int, dict]:
    proc = cluster.cli("plan", "-f", str(spec), "--output", "json")
    assert proc.returncode in (0, 1, 2), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_defaults_only_in_ceph_conf_plan_and_apply_cleanly(cluster: Cluster) -> None:
    # The sandbox's ceph.conf says `osd pool default size = 1`; the config database then
    # holds nothing about it, as on a cluster cephstack did not make.
    for name in ("osd_pool_default_size", "osd_pool_default_min_size"):
        _ceph(cluster, "config", "rm", "global", name)
    assert "osd_pool_default_size" not in _ceph(cluster, "config", "dump")
    spec = cluster.write_spec()
    _, plan = _plan(cluster, spec)
    assert plan["refusals"] == []
    assert plan["settings"]["osd_pool_default_size"]["value"] == "1"
    assert plan["settings"]["osd_pool_default_size"]["source"] == "file"
    assert plan["settings"]["mon_max_pg_per_osd"]["source"] == "default"
    applied = cluster.cli("apply", "-f", str(spec), "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    with cluster.admin() as conn:
        sizes = {p["pool_name"]: p["size"] for p in conn.mon("osd pool ls", detail="detail")}
    assert {sizes[p] for p in ("images", "volume", "backups", "vm")} == {1}
    again = cluster.cli("plan", "-f", str(spec))
    assert again.returncode == 0 and "No changes" in again.stdout, again.stdout


def test_a_limit_set_with_tell_is_the_one_planned_with(cluster: Cluster) -> None:
    spec = cluster.write_spec("more.yaml", DEFAULT_SPEC.replace(
        "pools:\n", "pools:\n  extra:   {pg_num: 64}\n", 1))
    _ceph(cluster, "tell", "mon.a", "config", "set", "mon_max_pg_per_osd", "100")
    try:
        code, plan = _plan(cluster, spec)
        text = cluster.cli("plan", "-f", str(spec)).stdout
    finally:
        _ceph(cluster, "tell", "mon.a", "config", "set", "mon_max_pg_per_osd", "250")
    assert plan["settings"]["mon_max_pg_per_osd"] == {"value": "100", "source": "override",
                                                      "monitors": "mon.a"}
    [refusal] = plan["refusals"]
    assert ("mon_max_pg_per_osd 100 x 1 OSD(s) in = 100 (mon_max_pg_per_osd set with "
            "`ceph tell`)") in refusal
    assert code != 0 and "Refused: placement-group budget exceeded" in text
