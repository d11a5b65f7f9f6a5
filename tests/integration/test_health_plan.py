"""A health-aware plan against a real sandbox (one OSD): what cannot succeed is refused
before anything changes, and a pool whose `rbd pool init` never finished is drift."""

from __future__ import annotations

import json
import time

import pytest

from cephstack.ceph.observe import observe
from cephstack.spec.load import load_spec

pytestmark = pytest.mark.slow

HEAD = ("cluster: {conf: /etc/ceph/ceph.conf, keyring: /etc/ceph/ceph.client.admin.keyring}\n"
        "keyrings: {directory: /var/openstack/ceph}\n")


def _facts(cluster, spec) -> dict:
    """What a refused apply must leave as it was: what it could change, the spec's pools
    (there or not, and their settings), every client, every rule. Not the other pools: the
    manager changes its own (device_health_metrics) whenever it likes."""
    declared = load_spec(spec).pools
    with cluster.admin() as conn:
        state = observe(conn)
    return {"pools": {n: vars(state.pools[n]) if n in state.pools else None for n in declared},
            "clients": {n: c.caps for n, c in state.clients.items()},
            "rules": sorted(state.rules)}


def _refused(cluster, name: str, pools: str, *words: str) -> str:
    """Plan exits 1 naming the refusal; apply --yes changes nothing."""
    spec = cluster.write_spec(f"{name}.yaml", HEAD + pools)
    plan = cluster.cli("plan", "-f", str(spec))
    assert plan.returncode == 1, plan.stdout + plan.stderr
    refusals = [line for line in plan.stdout.splitlines() if line.startswith("Refused: ")]
    for word in words:
        assert any(word in r for r in refusals), (word, plan.stdout, plan.stderr)
    before = _facts(cluster, spec)
    applied = cluster.cli("apply", "-f", str(spec), "--yes")
    assert applied.returncode == 1
    assert "the plan cannot be applied" in applied.stderr
    assert _facts(cluster, spec) == before
    return "\n".join(refusals)


def _wait_active(cluster, pool: str | None = None, timeout: float = 60) -> None:
    """Until every PG of the pool is active (the plan reads rbd_info only then); None: until
    the monitor's summary, which lags the manager by seconds, shows every PG active."""
    deadline = time.monotonic() + timeout
    while True:
        with cluster.admin() as conn:
            health = observe(conn).health
        if health is not None and (health.inactive_pgs(pool) == 0 if pool else
                                   health.all_active and health.pool_pg_states is None):
            return
        assert time.monotonic() < deadline, f"PGs of {pool or 'the cluster'} not active: {health}"
        time.sleep(1)


def test_plan_shows_the_cluster_health_in_one_line(cluster):
    spec = cluster.write_spec("health.yaml", HEAD + "pools: {}\n")
    out = cluster.cli("plan", "-f", str(spec))
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith("Cluster: HEALTH_") and "1 OSD (1 up, 1 in)" in first
    data = json.loads(cluster.cli("plan", "-f", str(spec), "--output", "json").stdout)
    assert data["cluster"]["osds"] == {"total": 1, "up": 1, "in": 1}
    assert "1 OSD (1 up, 1 in)" in data["cluster"]["summary"]  # a moment later: PGs may move


def test_a_rule_that_reaches_no_osd_is_refused(cluster):
    with cluster.admin() as conn:
        conn.mon("osd crush add-bucket", name="empty", type="root")
        conn.mon("osd crush rule create-replicated", name="on-empty", root="empty", type="osd")
    _refused(cluster, "on-empty", "pools: {stranded: {pg_num: 8, crush_rule: on-empty}}\n",
             "pool.stranded: crush rule 'on-empty' reaches no OSD that is up and in",
             "root 'empty': 0 OSD(s)")


def test_a_missing_rule_is_refused(cluster):
    _refused(cluster, "missing-rule", "pools: {fast: {pg_num: 8, crush_rule: ssd-only}}\n",
             "pool.fast: crush_rule 'ssd-only' does not exist", "replicated_rule")


def test_size_beyond_the_failure_domain_and_min_size_beyond_the_default_are_refused(cluster):
    text = _refused(cluster, "size", "pools: {triple: {pg_num: 8, size: 3}, "
                    "strict: {pg_num: 8, min_size: 2}}\n",
                    "pool.triple: size 3 needs 3 distinct OSDs",
                    "'replicated_rule' reaches 1 OSD(s) that are in",
                    "pool.strict: min_size 2 is above size 1 (the cluster's default")
    assert "pool.strict" in text


def test_a_pool_of_another_application_is_refused(cluster):
    with cluster.admin() as conn:
        conn.mon("osd pool create", pool="fsdata", pg_num=8, pgp_num=8, autoscale_mode="off")
        conn.mon("osd pool application enable", pool="fsdata", app="cephfs")
    _refused(cluster, "cephfs", "pools: {fsdata: {pg_num: 8}}\n",
             "pool.fsdata exists with application cephfs", "cannot also become an RBD pool")
    with cluster.admin() as conn:
        [fsdata] = [p for p in conn.mon("osd pool ls", detail="detail")
                    if p["pool_name"] == "fsdata"]
        assert list(fsdata["application_metadata"]) == ["cephfs"]


def test_pg_num_over_the_monitors_pool_limit_is_refused(cluster):
    with cluster.admin() as conn:
        conn.mon("config set", who="mon", name="mon_max_pool_pg_num", value="2048")
    try:
        _refused(cluster, "pg-limit", "pools: {wide: {pg_num: 4096}}\n",
                 "pool.wide: pg_num 4096 is over the monitor's limit mon_max_pool_pg_num 2048")
    finally:
        with cluster.admin() as conn:
            conn.mon("config rm", who="mon", name="mon_max_pool_pg_num")


def test_a_pg_num_increase_is_counted_in_the_budget(cluster):
    spec = cluster.write_spec("grow.yaml", HEAD + "pools: {grow: {pg_num: 8}}\n")
    done = cluster.cli("apply", "-f", str(spec), "--yes")
    assert done.returncode == 0, done.stderr
    _refused(cluster, "grow-more", "pools: {grow: {pg_num: 512}}\n",
             "placement-group budget exceeded", "grow 8 x 1 -> 512 x 1",
             "mon_max_pg_per_osd 250 x 1 OSD(s) in = 250")


def test_an_unfinished_pool_init_is_drift_that_apply_completes(cluster):
    with cluster.admin() as conn:  # `rbd pool init` interrupted before and after it began
        for name in ("half-none", "half-started"):
            conn.mon("osd pool create", pool=name, pg_num=8, pgp_num=8, autoscale_mode="off")
            conn.mon("osd pool application enable", pool=name, app="rbd")
    for name in ("half-none", "half-started"):
        _wait_active(cluster, name)
    with cluster.admin() as conn, conn.ioctx("half-started") as ioctx:
        ioctx.write_full("rbd_info", b"validate")
    spec = cluster.write_spec("half.yaml", HEAD + "pools: {half-none: {pg_num: 8}, "
                              "half-started: {pg_num: 8}}\n")
    plan = cluster.cli("plan", "-f", str(spec), "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "~ pool.half-none" in plan.stdout and "~ pool.half-started" in plan.stdout
    assert 'rbd pool init: "not finished: no rbd_info object" -> validated' in plan.stdout
    assert ('rbd pool init: "not finished: validation started, never finished" -> validated'
            in plan.stdout)
    applied = cluster.cli("apply", "-f", str(spec), "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    with cluster.admin() as conn:
        for name in ("half-none", "half-started"):
            with conn.ioctx(name) as ioctx:
                assert ioctx.read("rbd_info") == b"overwrite validated"
    again = cluster.cli("plan", "-f", str(spec), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout
    assert "No changes: the cluster matches the spec." in again.stdout


def test_observe_costs_six_mon_commands_and_one_read_per_pool_asked(cluster):
    spec = cluster.write_spec("cost.yaml", HEAD + "pools: {cost-a: {pg_num: 8}, "
                              "cost-b: {pg_num: 8}}\n")
    assert cluster.cli("apply", "-f", str(spec), "--yes").returncode == 0
    _wait_active(cluster)
    with cluster.admin() as conn:
        state = observe(conn, validate=["cost-a", "cost-b"])
        # Seven reads (`mon dump` among them), then one `config diff` per monitor (one
        # here); every PG active: no per-pool PG read.
        assert conn.commands_sent == 7 + 1
    assert {state.pools[n].pool_init for n in ("cost-a", "cost-b")} == {"validated"}
