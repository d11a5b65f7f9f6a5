"""rotate across clusters, pure parts: which users are rotated on which cluster, what is
refused as bad input before any cluster is contacted, and the plan shown (cluster-prefixed
steps, no key). No cluster."""

from __future__ import annotations

import pytest

from cephstack.ceph.auth import AUTH_IMPORT
from cephstack.cli import main
from cephstack.commands.fence import chosen as chosen_parts
from cephstack.day2.rotate import BadUsers, plan_rotation
from cephstack.day2.rotating import Rotation, resolve_targets
from cephstack.errors import SeveralClustersUsage
from cephstack.report.rotateviews import document_by_cluster as document
from cephstack.report.rotateviews import plan_text_by_cluster as plan_text
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.spec.fleet import split
from cephstack.spec.load import parse_spec
from tests.unit.test_clusters import TWO_SITE
from tests.unit.test_plan import converged

SPEC = parse_spec(TWO_SITE)
BOTH = ("client.glance", "client.cinder-volume", "client.nova")


def _targets(names=(), every=False, only=None):
    return resolve_targets(SPEC, chosen_parts(SPEC, only), names, every)


def test_all_is_every_user_of_each_cluster_with_its_own_mirror_user():
    got = _targets(every=True)
    assert set(got) == {"central", "edge1"}
    assert set(BOTH) <= set(got["central"]) and set(BOTH) <= set(got["edge1"])
    assert "client.cinder-backup" in got["edge1"] and "client.cinder-backup" not in got["central"]
    assert "client.rbd-mirror.central" in got["central"]
    assert "client.rbd-mirror.edge1" in got["edge1"]


def test_all_on_one_cluster_is_that_clusters_users_only():
    got = _targets(every=True, only=["central"])  # cinder-backup and edge1's mirror: elsewhere
    assert set(got) == {"central"} and "client.cinder-backup" not in got["central"]


@pytest.mark.parametrize("names, only, expected", [
    (["nova"], None, {"central": ("client.nova",), "edge1": ("client.nova",)}),
    (["client.glance"], ["edge1"], {"edge1": ("client.glance",)}),
    (["cinder-backup"], None, {"edge1": ("client.cinder-backup",)}),  # its pool: edge1
    (["rbd-mirror.edge1", "glance"], None,
     {"central": ("client.glance",), "edge1": ("client.glance", "client.rbd-mirror.edge1")}),
])
def test_a_user_is_rotated_where_it_exists(names, only, expected):
    assert _targets(names, only=only) == expected


@pytest.mark.parametrize("names, every, only, error, words", [
    (["nobody"], False, None, BadUsers, "'nobody' is neither a service nor a user"),
    (["cinder-backup"], False, ["central"], BadUsers,
     "on none of the clusters chosen (central)"),
    ([], False, None, BadUsers, "name the users to rotate, or give --all"),
    (["glance"], True, None, BadUsers, "name the users to rotate, or give --all"),
    ([], True, ["edge2"], SeveralClustersUsage, "--cluster edge2: no such cluster"),
])
def test_bad_choices_are_bad_input(names, every, only, error, words):
    with pytest.raises(error) as e:
        _targets(names, every, only)
    assert words in e.value.message and e.value.exit_code == 2


@pytest.mark.parametrize("argv", [
    ["rotate", "--all", "--cluster", "edge2", "--yes"],
    ["rotate", "nobody", "--yes"],
    ["rotate", "--all", "--conf", "/x.conf", "--yes"],
])
def test_the_command_refuses_bad_input_before_any_cluster(argv, capsys, tmp_path):
    path = tmp_path / "two-site.yaml"
    path.write_text(TWO_SITE)
    assert main([*argv, "-f", str(path)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_cluster_choice_needs_a_spec_of_several_clusters(capsys, tmp_path):
    from cephstack.spec.defaults import DEFAULT_SPEC

    path = tmp_path / "one.yaml"
    path.write_text(DEFAULT_SPEC)
    assert main(["rotate", "--all", "--cluster", "central", "-f", str(path), "--yes"]) == 2
    assert "has one cluster" in capsys.readouterr().err


def _rotation() -> Rotation:
    parts = split(SPEC)
    runs = {n: ClusterRun(n, p, state=converged(p)) for n, p in parts.items()}
    targets = _targets(["nova", "cinder-backup"])
    plans = {n: plan_rotation(parts[n], runs[n].state, t, None, AUTH_IMPORT)
             for n, t in targets.items()}
    return Rotation(Fleet(runs), targets, plans, {n: [] for n in targets})


def test_the_plan_shows_cluster_prefixed_steps_and_no_key():
    rotation = _rotation()
    text = plan_text(rotation)
    assert "  1. edge1: record the rotation of client.cinder-backup, client.nova" in text
    assert "  2. central: new keys for client.nova: one `auth import`" in text
    assert "  3. central: ~ keyring /var/openstack/ceph/central.client.nova.keyring" in text
    assert "Then: central: remove the rotation record; edge1: remove the rotation record." \
        in text
    doc = document(rotation, dry_run=True)
    assert doc["clusters"]["central"]["rotate"] == ["client.nova"]
    assert doc["clusters"]["edge1"]["rotate"] == ["client.cinder-backup", "client.nova"]
    assert doc["failed"] == [] and doc["refusals"] == []
    shown = text + repr(doc)
    for run in rotation.multi.runs.values():
        for client in run.state.clients.values():
            assert client.key.reveal() not in shown


def test_a_user_missing_on_a_cluster_is_refused_there():
    rotation = _rotation()
    run = rotation.multi.runs["central"]
    del run.state.clients["client.nova"]
    rotation.plans["central"] = plan_rotation(run.spec, run.state, ("client.nova",), None,
                                              AUTH_IMPORT)
    assert rotation.refusals == ["central: client.nova does not exist in the cluster: nothing "
                                 "to rotate; fix: cephstack apply creates it"]
    assert "Refused: central: client.nova does not exist" in plan_text(rotation)
