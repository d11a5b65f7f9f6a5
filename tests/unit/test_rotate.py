"""Rotation logic without a cluster: which users, which files, what an interrupted run left."""

from dataclasses import replace

import pytest

from cephstack.ceph.auth import (
    AUTH_IMPORT,
    AUTH_ROTATE,
    Marker,
    has_command,
    key_stamp,
)
from cephstack.ceph.cephx import new_key
from cephstack.day2.rotate import BadUsers, plan_rotation, resolve_users
from cephstack.keyfiles import FileState, Secret
from cephstack.plan.state import ClientState, ClusterState
from cephstack.spec.catalog import desired_clients
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import parse_spec

SPEC = parse_spec(DEFAULT_SPEC.replace("/var/openstack/ceph", "/k"))
ALL = ("client.cinder-backup", "client.cinder-volume", "client.glance", "client.nova")


def converged() -> ClusterState:
    clients, files = {}, {}
    for n, (entity, client) in enumerate(desired_clients(SPEC).items()):
        key = new_key(now_ns=1_700_000_000 * 10**9 + n)
        clients[entity] = ClientState(entity, client.caps.rendered(), key)
        files[entity] = FileState(SPEC.keyrings.path_for(entity), True, key, 0o600, "root",
                                  "root")
    return ClusterState("fsid", {}, clients, files, osds_in=1, default_pool_size=1)


@pytest.mark.parametrize("names, entities", [
    (["glance"], ("client.glance",)),
    (["cinder-volume", "client.nova"], ("client.cinder-volume", "client.nova")),
    (["nova", "nova", "client.nova"], ("client.nova",)),
    (["cinder-backup"], ("client.cinder-backup",)),
])
def test_services_and_users_name_entities(names, entities):
    assert resolve_users(SPEC, names, False) == entities


def test_all_is_every_user_of_the_spec():
    assert resolve_users(SPEC, [], True) == ALL


@pytest.mark.parametrize("names, every, words", [
    (["glance", "keystone"], False, "'keystone' is neither a service nor a user"),
    (["client.admin"], False, "'client.admin'"),
    ([], False, "or give --all"),
    (["glance"], True, "not both"),
])
def test_unknown_or_missing_users_are_bad_input(names, every, words):
    with pytest.raises(BadUsers) as e:
        resolve_users(SPEC, names, every)
    assert words in e.value.message and e.value.exit_code == 2


def test_key_stamp_is_the_creation_time_and_no_secret():
    key = new_key(now_ns=1_700_000_123 * 10**9 + 42)
    assert key_stamp(key) == "1700000123.000000042"
    assert key.reveal() not in key_stamp(key)
    assert key_stamp(new_key()) != key_stamp(key)
    assert key_stamp(Secret("not base64!")) == ""


def test_marker_round_trip_and_what_it_tells():
    old = new_key(now_ns=10**18)
    marker = Marker({"client.glance": key_stamp(old)}, 1.5, AUTH_IMPORT)
    again = Marker.parse(marker.value())
    assert again == marker and old.reveal() not in marker.value()
    assert not again.rotated("client.glance", old)  # still the key from before
    assert again.rotated("client.glance", new_key())  # the cluster has another one
    assert not again.rotated("client.nova", new_key())  # not part of that rotation
    assert Marker.parse("garbage") is None and Marker.parse({"entities": 3}) is None


def test_auth_rotate_is_found_in_the_command_table_only():
    table = {"cmd1": {"sig": ["auth", "import"]},
             "cmd2": {"sig": ["auth", "get", {"name": "entity", "type": "CephString"}]}}
    assert not has_command(table, AUTH_ROTATE) and has_command(table, "auth import")
    table["cmd3"] = {"sig": ["auth", "rotate", {"name": "entity", "type": "CephString"}]}
    assert has_command(table, AUTH_ROTATE)
    assert not has_command("not a table", AUTH_ROTATE)


def test_plan_rotates_and_rewrites_the_keyrings_of_the_named_users():
    plan = plan_rotation(SPEC, converged(), ["client.glance", "client.nova"], None,
                         AUTH_IMPORT)
    assert plan.rotate == ("client.glance", "client.nova") and plan.finish == ()
    assert [a.address for a in plan.files] == ["keyring /k/ceph.client.glance.keyring",
                                               "keyring /k/ceph.client.nova.keyring"]
    steps = plan.steps()
    assert steps[0].startswith("record the rotation of client.glance, client.nova")
    assert "one `auth import` of all 2 (one auth commit" in steps[1]
    assert steps[-1] == "remove the rotation record" and not plan.refusals


def test_an_interrupted_rotation_is_finished_or_done_again():
    state = converged()
    before = {e: key_stamp(c.key) for e, c in state.clients.items()}
    marker = Marker({"client.glance": before["client.glance"],
                     "client.nova": before["client.nova"]}, 0.0, AUTH_IMPORT)
    # glance got its new key in the cluster before the run stopped; nova did not.
    clients = dict(state.clients)
    clients["client.glance"] = replace(clients["client.glance"], key=new_key())
    plan = plan_rotation(SPEC, replace(state, clients=clients), ["client.cinder-backup"],
                         marker, AUTH_IMPORT)
    assert plan.finish == ("client.glance",)
    assert plan.rotate == ("client.nova", "client.cinder-backup")
    assert any("stopped before it finished" in n for n in plan.notes)
    assert {a.entity for a in plan.files} == {"client.glance", "client.nova",
                                              "client.cinder-backup"}
    assert any(s.startswith("finish the rotation of client.glance") for s in plan.steps())


def test_a_user_missing_from_the_cluster_is_refused():
    state = converged()
    clients = {e: c for e, c in state.clients.items() if e != "client.nova"}
    plan = plan_rotation(SPEC, replace(state, clients=clients), ["client.nova"], None,
                         AUTH_IMPORT)
    assert plan.refusals and "client.nova does not exist" in plan.refusals[0]
