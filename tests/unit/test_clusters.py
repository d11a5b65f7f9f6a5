"""Several clusters in one spec: reading `clusters:`, `cluster:` on pools, `mirroring:`,
their errors (file:line: field: what), and the split into one-cluster specs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cephstack.errors import SpecError
from cephstack.plan.fleet import prefixed
from cephstack.plan.make import CreatePool, Plan
from cephstack.plan.mirroring import EnableImageMode
from cephstack.spec.catalog import desired_clients
from cephstack.spec.fleet import availability_zone, split
from cephstack.spec.load import PoolSpec, parse_spec

EXAMPLE = Path(__file__).parents[2] / "examples" / "two-site.yaml"
# examples/two-site.yaml, the README's example (the tests carry the text itself;
# test_the_example_file_is_this_layout keeps the two equal).
TWO_SITE = """\
# cephstack spec for two sites: a central cluster and an edge (DCN) cluster, with Cinder
# volumes of the central site mirrored to the edge cluster for disaster recovery.
# `cephstack plan -f examples/two-site.yaml` plans both clusters at once; addresses are
# prefixed by the cluster: central/pool volume, edge1/client.cinder-volume.
clusters:
  # conf and keyring default to /etc/ceph/<name>.conf and /etc/ceph/<name>.client.admin.keyring
  central: {conf: /etc/ceph/central.conf, keyring: /etc/ceph/central.client.admin.keyring}
  edge1:
    conf: /etc/ceph/edge1.conf
    keyring: /etc/ceph/edge1.client.admin.keyring
    availability_zone: edge1        # Cinder's backend_availability_zone, Nova's zone
    connect_timeout: 10

# Every pool says its cluster. A service's user is created on each cluster holding one
# of its pools, with caps compiled there (Cinder on edge1 reads edge1's Glance pool).
pools:
  images:       {cluster: central, pg_num: 32}
  images-edge1: {cluster: edge1, pg_num: 32}
  volume:       {cluster: central, pg_num: 32}
  volume-edge1: {cluster: edge1, pg_num: 32}
  vm:           {cluster: central, pg_num: 32}
  vm-edge1:     {cluster: edge1, pg_num: 32}
  backups:      {cluster: edge1, pg_num: 32}    # backups on the other site

services:
  glance:        {user: glance, pools: [images, images-edge1]}   # one store per cluster
  cinder-volume: {user: cinder-volume, pools: [volume, volume-edge1]}
  cinder-backup: {user: cinder-backup, pool: backups}
  nova:          {user: nova, pools: [vm, vm-edge1]}              # one pool per zone

# Snapshot-based RBD mirroring for Cinder replication: `volume` also exists on edge1
# (same name, same settings) and an rbd-mirror user is created on both sides.
mirroring: {primary: central, secondary: edge1, pools: [volume], schedule: 5m}

keyrings:
  directory: /var/openstack/ceph    # <cluster>.client.<user>.keyring
  mode: "0600"
"""

ISSUE_SHAPE = """\
clusters:
  central: {conf: /etc/ceph/central.conf, keyring: /etc/ceph/central.client.admin.keyring}
  edge1:   {conf: /etc/ceph/edge1.conf, keyring: /etc/ceph/edge1.client.admin.keyring}
pools:
  images:       {cluster: central, pg_num: 32}
  images-edge1: {cluster: edge1, pg_num: 32}
  volume:       {cluster: central, pg_num: 32}
  volume-edge1: {cluster: edge1, pg_num: 32}
  vm-edge1:     {cluster: edge1, pg_num: 32}
  backups:      {cluster: central, pg_num: 32}
services:
  glance:        {user: glance, pools: [images, images-edge1]}
  cinder-volume: {user: cinder-volume, pools: [volume, volume-edge1]}
  cinder-backup: {user: cinder-backup, pool: backups}
  nova:          {user: nova, pool: vm-edge1}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as e:
        parse_spec(text, "s.yaml")
    return e.value.problems


def test_the_issue_shape_reads_and_splits_per_cluster():
    spec = parse_spec(ISSUE_SHAPE, "s.yaml")
    assert list(spec.clusters) == ["central", "edge1"]
    assert spec.pools["images-edge1"].cluster == "edge1"
    parts = split(spec)
    assert {n: list(p.pools) for n, p in parts.items()} == {
        "central": ["images", "volume", "backups"],
        "edge1": ["images-edge1", "volume-edge1", "vm-edge1"]}
    central, edge = parts["central"], parts["edge1"]
    assert central.cluster.conf == "/etc/ceph/central.conf" and not central.clusters
    assert set(central.services) == {"glance", "cinder-volume", "cinder-backup"}
    assert set(edge.services) == {"glance", "cinder-volume", "nova"}
    assert edge.services["glance"].pools == ("images-edge1",)
    # Caps compiled per cluster: Cinder on edge1 reads edge1's Glance pool, not central's.
    caps = desired_clients(edge)["client.cinder-volume"].text
    assert caps["osd"] == "profile rbd pool=volume-edge1, profile rbd-read-only pool=images-edge1"
    assert desired_clients(central)["client.cinder-volume"].text["osd"] == \
        "profile rbd pool=volume, profile rbd-read-only pool=images"
    assert edge.keyrings.path_for("client.nova") == "/var/openstack/ceph/edge1.client.nova.keyring"
    assert availability_zone(spec, "edge1") == "edge1"


def test_one_cluster_spec_is_unchanged():
    spec = parse_spec("pools: {images: {}}\nservices: {glance: {user: g, pool: images}}\n")
    assert spec.clusters == {} and spec.mirroring is None
    assert spec.pools["images"] == PoolSpec("images")
    assert spec.keyrings.path_for("client.g") == "/var/openstack/ceph/ceph.client.g.keyring"


def test_defaults_follow_the_cluster_name_and_a_single_cluster_needs_no_pool_cluster():
    spec = parse_spec("clusters: {dr: {client: client.boss, availability_zone: az2}}\n"
                      "pools: {volume: {}}\n")
    dr = spec.clusters["dr"]
    assert (dr.conf, dr.keyring, dr.client) == ("/etc/ceph/dr.conf",
                                                "/etc/ceph/dr.client.boss.keyring", "client.boss")
    assert spec.pools["volume"].cluster == "dr"
    assert availability_zone(spec, "dr") == "az2"
    with pytest.raises(SpecError) as e:  # the connecting user is never managed
        parse_spec("clusters: {dr: {client: client.boss}}\nclients: {boss: {caps: {mon: "
                   "'allow r'}}}\n", "s.yaml")
    assert "cephstack never manages it" in e.value.problems[0]


@pytest.mark.parametrize(("text", "where"), [
    (ISSUE_SHAPE.replace("{cluster: edge1, pg_num: 32}\n  volume:",
                         "{cluster: edge2, pg_num: 32}\n  volume:"),
     r"s\.yaml:6: pools\.images-edge1\.cluster: unknown cluster 'edge2' \(declared under "
     r"clusters: central, edge1\)"),
    (ISSUE_SHAPE.replace("  backups:      {cluster: central, pg_num: 32}",
                         "  backups:      {pg_num: 32}"),
     r"s\.yaml:10: pools\.backups: missing 'cluster': which of central, edge1 holds this pool"),
    (ISSUE_SHAPE.replace("pools: [images, images-edge1]", "pools: [images, backups]"),
     r"s\.yaml:12: services\.glance\.pools: glance uses one pool per cluster: 'backups' and "
     r"'images' are both on cluster 'central'"),
    (ISSUE_SHAPE.replace("edge1.conf", "central.conf"),
     r"s\.yaml:3: clusters\.edge1\.conf: /etc/ceph/central\.conf is already the conf of "
     r"cluster 'central'"),
    ("cluster: {}\nclusters: {a: {}}\n",
     r"s\.yaml:2: clusters: give 'cluster' \(one cluster\) or 'clusters'"),
    ("pools: {images: {cluster: a}}\n",
     r"s\.yaml:1: pools\.images\.cluster: a pool names its cluster only in a spec with"),
    ("clusters: {}\n", r"s\.yaml:1: clusters: no cluster declared"),
    ("clusters: {'a b': {}}\n", r"s\.yaml:1: clusters\.'a b': invalid cluster name"),
    ("clusters: {a: {zone: x}}\n", r"s\.yaml:1: clusters\.a\.zone: unknown key"),
    ("clusters:\n  DEFAULT: {}\n", r"s\.yaml:2: clusters\.DEFAULT: 'DEFAULT' is a section of "
     r"glance-api\.conf"),
    ("pools: {vm: {}, vm2: {}}\nservices: {nova: {user: n, pools: [vm, vm2]}}\n",
     r"s\.yaml:2: services\.nova\.pools: nova uses one pool per cluster: 'vm2' and 'vm' are "
     r"both on the cluster"),
    (ISSUE_SHAPE.replace("pool: vm-edge1}", "pool: vm-edge1, secret_uuid: "
                         "'00000000-0000-0000-0000-000000000000'}"),
     r"s\.yaml:15: services\.nova\.secret_uuid: a pinned secret is for a one-cluster spec"),
])
def test_bad_several_cluster_specs_say_where(text, where):
    found = problems(text)
    assert any(re.match(where, p) for p in found), found


def test_mirroring_declares_the_secondary_pool_and_the_mirror_user():
    spec = parse_spec(TWO_SITE, "two-site.yaml")
    m = spec.mirroring
    assert (m.primary, m.secondary, m.pools, m.schedule, m.user) == (
        "central", "edge1", ("volume",), "5m", "rbd-mirror")
    parts = split(spec)
    assert parts["edge1"].pools["volume"] == PoolSpec("volume", cluster="edge1")
    assert "volume" in parts["edge1"].services["cinder-volume"].pools  # failover target
    for name, part in parts.items():
        assert part.clients[f"rbd-mirror.{name}"].caps == {"mon": "profile rbd-mirror",
                                                           "osd": "profile rbd"}


@pytest.mark.parametrize(("block", "where"), [
    ("{primary: central, secondary: central, pools: [volume]}",
     r"s\.yaml:\d+: mirroring\.secondary: the secondary must be another cluster"),
    ("{primary: central, secondary: dr, pools: [volume]}",
     r"s\.yaml:\d+: mirroring\.secondary: unknown cluster 'dr'"),
    ("{primary: central, secondary: edge1, pools: [volume-edge1]}",
     r"s\.yaml:\d+: mirroring\.pools: pool 'volume-edge1' is on cluster 'edge1', not on the "
     r"primary 'central'"),
    ("{primary: central, secondary: edge1, pools: [images]}",
     r"s\.yaml:\d+: mirroring\.pools: pool 'images' is not a cinder-volume pool"),
    ("{primary: central, secondary: edge1, pools: [volume], schedule: 5x}",
     r"s\.yaml:\d+: mirroring\.schedule: expected minutes, hours or days"),
    ("{primary: central, secondary: edge1, pools: [volume], user: glance}",
     r"s\.yaml:\d+: mirroring\.user: 'glance' is a service's user"),
    ("{primary: central, secondary: edge1}", r"s\.yaml:\d+: mirroring: missing 'pools'"),
])
def test_bad_mirroring_says_where(block, where):
    found = problems(ISSUE_SHAPE + f"mirroring: {block}\n")
    assert any(re.match(where, p) for p in found), found


def test_mirroring_needs_several_clusters():
    found = problems("pools: {volume: {}}\nservices: {cinder-volume: {user: c, pool: volume}}"
                     "\nmirroring: {primary: a, secondary: b, pools: [volume]}\n")
    assert found == ["s.yaml:3: mirroring: mirroring needs two clusters under 'clusters:'"]


def test_plan_addresses_are_prefixed_by_cluster():
    plan = Plan((CreatePool(PoolSpec("images")),), unmanaged_pools=("old",),
                refusals=("no OSD",))
    shown = prefixed("edge1", plan)
    assert [a.address for a in shown.actions] == ["edge1/pool.images"]
    assert shown.actions[0].symbol == "+" and shown.actions[0].changes()
    assert shown.unmanaged_pools == ("edge1/old",) and shown.refusals == ("edge1: no OSD",)
    assert EnableImageMode("volume", "site-a", "disabled").kind == "mirroring"


@pytest.mark.parametrize("argv", [["report", "--html", "/nonexistent/r.html", "--conf",
                                   "/x.conf"],
                                  ["status", "--conf", "/x.conf"],
                                  ["verify", "--conf", "/x.conf"],
                                  ["plan", "--conf", "/x.conf"],
                                  ["apply", "--id", "client.boss", "--yes"],
                                  ["render", "--out", "/nonexistent", "--keyring", "/k"]])
def test_one_cluster_commands_and_overrides_refuse_several_clusters(argv, capsys, tmp_path):
    from cephstack.cli import main

    path = tmp_path / "two-site.yaml"
    path.write_text(TWO_SITE)
    assert main([*argv, "-f", str(path)]) == 2  # before any cluster is contacted
    err = capsys.readouterr().err
    assert "several clusters" in err and "central, edge1" in err


def test_the_example_file_is_this_layout():
    assert EXAMPLE.read_text() == TWO_SITE
