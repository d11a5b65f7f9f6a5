"""The planner as tables: (spec, observed state) -> actions."""

from dataclasses import replace

import pytest

from cephstack.keyfiles import FileState, Secret
from cephstack.plan.make import (
    CreateClient,
    CreatePool,
    FixKeyringAccess,
    InitPool,
    UpdateCaps,
    UpdatePool,
    make_plan,
)
from cephstack.plan.state import ClientState, ClusterState, PoolState
from cephstack.spec.catalog import desired_clients
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import parse_spec

SPEC = parse_spec(DEFAULT_SPEC.replace("/var/openstack/ceph", "/k"))


def pool(name, pg=32, size=1, apps=("rbd",), **kw):
    return PoolState(name, pg, size, kw.pop("min_size", 1), kw.pop("crush_rule",
                     "replicated_rule"), kw.pop("autoscale_mode", "off"),
                     kw.pop("target_size_ratio", 0.0), tuple(apps), kw.pop("qb", 0),
                     kw.pop("qo", 0))


def converged(spec=SPEC) -> ClusterState:
    """The state right after a successful apply of `spec`."""
    clients, files = {}, {}
    for entity, client in desired_clients(spec).items():
        key = Secret(f"key-of-{entity}")
        clients[entity] = ClientState(entity, client.caps.rendered(), key)
        files[entity] = FileState(spec.keyrings.path_for(entity), True, key, 0o600, "root",
                                  "root")
    pools = {n: pool(n, p.pg_num) for n, p in spec.pools.items()}
    return ClusterState("fsid", pools, clients, files, osds_in=1, default_pool_size=1)


def kinds(plan):
    return [(a.kind, a.address) for a in plan.actions]


def test_empty_cluster_gets_everything():
    plan = make_plan(SPEC, ClusterState("fsid", osds_in=1, default_pool_size=1))
    assert kinds(plan) == (
        [("create_pool", f"pool.{p}") for p in ("images", "volume", "backups", "vm")]
        + [("create_client", f"client.{u}") for u in
           ("cinder-backup", "cinder-volume", "glance", "nova")]
        + [("write_keyring", f"keyring /k/ceph.client.{u}.keyring") for u in
           ("cinder-backup", "cinder-volume", "glance", "nova")])
    assert not plan.disruptive and not plan.refusals


def test_converged_cluster_plans_nothing():
    plan = make_plan(SPEC, converged())
    assert plan.empty and plan.actions == ()


def test_caps_written_in_another_order_are_not_a_change():
    state = converged()
    nova = state.clients["client.nova"]
    reordered = {"osd": "profile rbd-read-only pool=images,profile rbd  pool=vm",
                 "mgr": nova.caps["mgr"], "mon": "profile rbd"}
    state.clients["client.nova"] = replace(nova, caps=reordered)
    assert make_plan(SPEC, state).empty


def test_unmanaged_things_are_listed_not_touched():
    state = converged()
    state.pools["rbd"] = pool("rbd")
    state.clients["client.other"] = ClientState("client.other", {"mon": "allow r"}, Secret("k"))
    state.clients["client.bootstrap-osd"] = ClientState("client.bootstrap-osd", {}, Secret("k"))
    plan = make_plan(SPEC, state)
    assert plan.empty
    assert plan.unmanaged_pools == ("rbd",)
    assert plan.unmanaged_clients == ("client.other",)


@pytest.mark.parametrize("have, field, disruptive", [
    (dict(pg=16), "pg_num", False),
    (dict(pg=64), "pg_num", True),  # shrinking merges PGs: data moves
    (dict(autoscale_mode="on"), "autoscale", False),
    (dict(qb=5), "quota_max_bytes", False),
])
def test_pool_drift(have, field, disruptive):
    state = converged()
    state.pools["images"] = pool("images", **have)
    plan = make_plan(SPEC, state)
    [action] = plan.actions
    assert isinstance(action, UpdatePool)
    [change] = action.changes()
    assert (change.field, change.disruptive) == (field, disruptive)


def test_size_and_crush_rule_changes_are_disruptive():
    spec = parse_spec("pools: {a: {size: 3, crush_rule: fast}}")
    state = ClusterState("f", {"a": pool("a", size=1)}, osds_in=3)
    [action] = make_plan(spec, state).actions
    assert {c.field: c.disruptive for c in action.changes()} == {"size": True, "crush_rule": True}


def test_autoscaled_pool_ignores_pg_num_drift():
    spec = parse_spec("pools: {a: {autoscale: true, target_size_ratio: 0.5}}")
    state = ClusterState("f", {"a": pool("a", pg=128, autoscale_mode="on",
                                         target_size_ratio=0.5)}, osds_in=1)
    assert make_plan(spec, state).empty


def test_pool_without_rbd_application_is_initialised():
    state = converged()
    state.pools["vm"] = pool("vm", apps=())
    assert [type(a) for a in make_plan(SPEC, state).actions] == [InitPool]


def test_added_access_is_not_disruptive_removed_access_is():
    state = converged()
    glance = state.clients["client.glance"]
    state.clients["client.glance"] = replace(glance, caps={"mon": "allow r",
                                                           "osd": "allow rwx pool=images"})
    [grow] = make_plan(SPEC, state).actions
    assert isinstance(grow, UpdateCaps) and not grow.disruptive

    state.clients["client.glance"] = replace(glance, caps={
        "mon": "profile rbd", "osd": "profile rbd pool=images, profile rbd pool=volume",
        "mgr": "profile rbd pool=images"})
    [shrink] = make_plan(SPEC, state).actions
    assert shrink.disruptive
    assert shrink.removes == ("osd 'profile rbd pool=volume'",)


def test_keyring_files():
    state = converged()
    path = state.keyring_files["client.glance"].path
    state.keyring_files["client.glance"] = FileState(path, False)
    state.keyring_files["client.nova"] = replace(state.keyring_files["client.nova"],
                                                 key=Secret("stale"))
    state.keyring_files["client.cinder-volume"] = replace(
        state.keyring_files["client.cinder-volume"], mode=0o644)
    actions = make_plan(SPEC, state).actions
    assert sorted((type(a).__name__, a.path) for a in actions) == sorted([
        ("FixKeyringAccess", "/k/ceph.client.cinder-volume.keyring"),
        ("WriteKeyring", "/k/ceph.client.glance.keyring"),
        ("WriteKeyring", "/k/ceph.client.nova.keyring"),
    ])
    by_path = {a.path: a for a in actions}
    assert by_path["/k/ceph.client.glance.keyring"].reason == "missing"
    assert by_path["/k/ceph.client.nova.keyring"].reason == "key differs from the cluster's"
    fix = by_path["/k/ceph.client.cinder-volume.keyring"]
    assert isinstance(fix, FixKeyringAccess)
    assert [(c.field, c.before, c.after) for c in fix.changes()] == [("mode", "0644", "0600")]


def test_new_client_and_new_pool_after_spec_edit():
    state = converged()
    edited = parse_spec(DEFAULT_SPEC.replace("/var/openstack/ceph", "/k")
                        .replace("vm:      {pg_num: 32}", "vm:      {pg_num: 32}\n  ssd: {}")
                        .replace("pools: [volume]", "pools: [volume, ssd]"))
    plan = make_plan(edited, state)
    assert kinds(plan) == [("create_pool", "pool.ssd"), ("update_caps", "client.cinder-volume")]
    [_, caps] = plan.actions
    assert caps.after["osd"] == ("profile rbd pool=ssd, profile rbd pool=volume, "
                                 "profile rbd-read-only pool=images")
    assert not caps.disruptive


def test_pg_budget_refuses_before_anything_is_created():
    spec = parse_spec("pools: {a: {pg_num: 512}, b: {pg_num: 512}}")
    plan = make_plan(spec, ClusterState("f", {"x": pool("x", pg=1)}, osds_in=1,
                                        max_pg_per_osd=250, default_pool_size=1))
    [refusal] = plan.refusals  # the OSDs in, counted as the audit counts them (not >= 3)
    assert "1025 PG replicas" in refusal and "250 x 1 OSD(s) in = 250" in refusal
    assert all(isinstance(a, CreatePool) for a in plan.actions)


def test_pg_budget_allows_what_fits():
    spec = parse_spec("pools: {a: {pg_num: 256, size: 2}}")
    assert not make_plan(spec, ClusterState("f", {}, osds_in=3)).refusals


def test_pg_budget_assumes_the_default_size_3_when_unknown():
    spec = parse_spec("pools: {a: {pg_num: 256}}")  # 256 x 3 = 768 > 750
    assert make_plan(spec, ClusterState("f", {}, osds_in=3)).refusals


def test_creating_a_client_needs_no_key_in_the_plan():
    plan = make_plan(SPEC, ClusterState("f", osds_in=1))
    create = next(a for a in plan.actions if isinstance(a, CreateClient))
    assert ("key", None, "(sensitive)") in [(c.field, c.before, c.after)
                                            for c in create.changes()]


def test_mon_settings_come_from_the_config_database_or_defaults():
    from cephstack.ceph.running import from_database

    config = [{"section": "global", "name": "osd_pool_default_size", "value": "2"},
              {"section": "mon", "name": "osd_pool_default_size", "value": "1"},
              {"section": "osd", "name": "mon_max_pg_per_osd", "value": "9"}]
    assert from_database(config, "osd_pool_default_size").value == "1"  # mon beats global
    # osd section: not the mon's
    assert from_database(config, "mon_max_pg_per_osd") == from_database([], "mon_max_pg_per_osd")
