"""--prune with several clusters, pure: each cluster's part (clusters.split) against that
cluster's own records, its removals and refusals prefixed by the cluster, the mirroring
user kept while mirroring is declared, and entries sharing one Ceph cluster refused."""

from __future__ import annotations

from types import SimpleNamespace

from cephstack.errors import SharedCluster
from cephstack.keyfiles import Secret
from cephstack.plan.fleet import prefixed
from cephstack.plan.make import make_plan
from cephstack.plan.prune import candidates, refuse_shared, shared, shared_error
from cephstack.plan.state import (
    ClientState,
    ClusterState,
    Created,
    PoolContents,
    PoolState,
    PruneFacts,
    RecordedKeyring,
)
from cephstack.report.views import plan_text
from cephstack.spec.catalog import desired_clients
from cephstack.spec.fleet import split
from cephstack.spec.load import parse_spec

TWO = """\
clusters:
  central: {conf: /etc/ceph/central.conf, keyring: /etc/ceph/central.client.admin.keyring}
  edge1: {conf: /etc/ceph/edge1.conf, keyring: /etc/ceph/edge1.client.admin.keyring}
pools:
  images:       {cluster: central, pg_num: 32}
  images-edge1: {cluster: edge1, pg_num: 32}
  volume:       {cluster: central, pg_num: 32}
  backups:      {cluster: edge1, pg_num: 32}
services:
  glance:        {user: glance, pools: [images, images-edge1]}
  cinder-volume: {user: cinder-volume, pool: volume}
  cinder-backup: {user: cinder-backup, pool: backups}
mirroring: {primary: central, secondary: edge1, pools: [volume], schedule: 5m}
keyrings: {directory: /k}
"""
# edge1 no longer holds backups (nor, then, cinder-backup's user and keyring file).
DROPPED = TWO.replace("  backups:      {cluster: edge1, pg_num: 32}\n", "").replace(
    "  cinder-backup: {user: cinder-backup, pool: backups}\n", "")
UNMIRRORED = DROPPED.replace(
    "mirroring: {primary: central, secondary: edge1, pools: [volume], schedule: 5m}\n", "")
POOL_IDS = {"images-edge1": 1, "backups": 2, "volume": 3}
EDGE1_USERS = ("client.glance", "client.cinder-backup", "client.cinder-volume",
               "client.rbd-mirror.edge1")


def edge1_part(text: str):
    return split(parse_spec(text))["edge1"]


def pool(name: str, pool_id: int) -> PoolState:
    return PoolState(name, 32, 1, 1, "replicated_rule", "off", 0.0, ("rbd",), 0, 0,
                     pool_id=pool_id, create_time=f"t{pool_id}")


def edge1_state(prune: PruneFacts | None = None) -> ClusterState:
    """edge1 as the first apply of TWO left it, every pool, user and file recorded."""
    clients = {e: ClientState(e, {"mon": "profile rbd"}, Secret(f"key-of-{e}"))
               for e in EDGE1_USERS}
    files = {f"/k/edge1.{e}.keyring": RecordedKeyring(e, True, f"/k/edge1.{e}.keyring", True)
             for e in EDGE1_USERS}
    created = Created(dict(POOL_IDS), frozenset(EDGE1_USERS), files,
                      {n: f"t{i}" for n, i in POOL_IDS.items()},
                      {e: {"mon": "profile rbd"} for e in EDGE1_USERS}, "/k")
    return ClusterState("fsid-edge1", {n: pool(n, i) for n, i in POOL_IDS.items()}, clients,
                        osds_in=1, default_pool_size=1, created=created, prune=prune)


def test_a_cluster_part_prunes_what_it_no_longer_declares_there():
    part = edge1_part(DROPPED)
    found = candidates(part, edge1_state(), desired_clients(part))
    assert found.pools == ("backups",)
    assert found.users == ("client.cinder-backup",)
    assert found.keyrings == (("/k/edge1.client.cinder-backup.keyring",
                               "client.cinder-backup"),)
    assert not found.stale


def test_the_mirroring_user_and_the_replica_pool_stay_while_mirroring_is_declared():
    part = edge1_part(DROPPED)
    found = candidates(part, edge1_state(), desired_clients(part))
    assert "client.rbd-mirror.edge1" not in found.users
    assert "volume" not in found.pools  # the secondary's copy of the mirrored pool
    assert not any("rbd-mirror" in path for path, _ in found.keyrings)


def test_once_mirroring_is_no_longer_declared_its_user_is_like_any_other():
    part = edge1_part(UNMIRRORED)
    found = candidates(part, edge1_state(), desired_clients(part))
    assert found.pools == ("backups", "volume")
    # cinder-volume too: the replica pool was its only pool on edge1
    assert found.users == ("client.cinder-backup", "client.cinder-volume",
                           "client.rbd-mirror.edge1")
    assert ("/k/edge1.client.rbd-mirror.edge1.keyring", "client.rbd-mirror.edge1") \
        in found.keyrings


def test_the_other_cluster_part_keeps_what_it_declares():
    central = split(parse_spec(DROPPED))["central"]
    created = Created({"images": 1, "volume": 2}, frozenset({"client.glance"}),
                      {"/k/central.client.glance.keyring": RecordedKeyring("client.glance",
                                                                            True)})
    state = ClusterState("fsid-central", {"images": pool("images", 1), "volume": pool("volume", 2)},
                         {"client.glance": ClientState("client.glance", {}, Secret("k"))},
                         created=created)
    found = candidates(central, state, desired_clients(central))
    assert found.addresses == []


def test_the_plan_shows_removals_and_refusals_prefixed_by_their_cluster():
    part = edge1_part(DROPPED)
    facts = PruneFacts({"backups": PoolContents(2, 0, 0)}, {"client.cinder-backup": 0}, True,
                       {"/k/edge1.client.cinder-backup.keyring": True})
    shown = prefixed("edge1", make_plan(part, edge1_state(facts)))
    removals = sorted(a.address for a in shown.actions if a.symbol == "-")
    assert removals == ["edge1/client.cinder-backup",
                        "edge1/keyring /k/edge1.client.cinder-backup.keyring"]
    assert shown.refusals == (
        "edge1: pool.backups: cephstack created it and the spec no longer declares it, but it "
        "holds 2 image(s), 0 snapshot(s), 0 trash entries; --prune deletes only an empty "
        "pool; fix: move or delete them (or declare the pool again), or apply without "
        "--prune",)
    assert "  - edge1/client.cinder-backup" in plan_text(shown)


def test_without_prune_each_cluster_notes_what_it_would_remove():
    shown = prefixed("edge1", make_plan(edge1_part(DROPPED), edge1_state()))
    assert not [a for a in shown.actions if a.symbol == "-"]
    assert shown.notes == (
        "edge1: 3 things cephstack created are no longer declared: apply --prune removes "
        "them (pool.backups, client.cinder-backup, keyring "
        "/k/edge1.client.cinder-backup.keyring)",)


def test_entries_reaching_one_cluster_are_found():
    assert shared({"a": "f1", "b": "f2"}) == {}
    assert shared({"a": "f1", "b": "f2", "c": "f1", "d": "f1"}) == {
        "a": ["c", "d"], "c": ["a", "d"], "d": ["a", "c"]}


def test_the_shared_cluster_error_names_both_entries_and_the_fix():
    e = shared_error("edge1", ["central"], "f1")
    assert isinstance(e, SharedCluster) and e.exit_code == 2
    assert str(e).startswith("--prune: clusters.edge1 and clusters.central reach the same "
                             "Ceph cluster (fsid f1)")
    assert "nothing planned or removed" in str(e)
    assert "one entry under clusters:" in e.hint


def _run(fsid: str | None):
    """A ClusterRun's shape as refuse_shared reads it: connected (fsid) or already failed."""
    conn = SimpleNamespace(fsid=lambda: fsid)
    return SimpleNamespace(conn=conn, error=None if fsid else OSError("down"),
                           ok=fsid is not None)


def test_only_the_entries_that_share_a_cluster_fail():
    runs = {"a": _run("f1"), "b": _run("f1"), "c": _run("f2"), "d": _run(None)}
    refuse_shared(runs)
    assert isinstance(runs["a"].error, SharedCluster) and "clusters.b" in str(runs["a"].error)
    assert isinstance(runs["b"].error, SharedCluster)
    assert runs["c"].error is None
    assert isinstance(runs["d"].error, OSError)  # its own failure stays
