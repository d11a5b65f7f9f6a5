"""Rendering a two-site spec (examples/two-site.yaml, TWO_SITE): files named per cluster, and the
Glance, Cinder and Nova options that select them, read back with oslo.config as the services do."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest
from oslo_config import cfg

from cephstack.keyfiles import Secret
from cephstack.render.bundle import render
from cephstack.render.model import ClusterFacts, secret_uuid
from cephstack.spec.catalog import desired_clients
from cephstack.spec.fleet import split
from cephstack.spec.load import parse_spec
from tests.data import openstack_options as known
from tests.unit.test_clusters import TWO_SITE

SPEC = parse_spec(TWO_SITE, "two-site.yaml")
FSIDS = {"central": "11111111-1111-4111-8111-111111111111",
         "edge1": "22222222-2222-4222-8222-222222222222"}
# The options several clusters add (sources: cinder/volume/drivers/rbd.py rbd_cluster_name;
# cinder/volume/driver.py backend_availability_zone, replication_device (a MultiOpt);
# nova/conf/libvirt.py images_rbd_glance_store_name).
CINDER_BACKEND = known.CINDER["<backend>"] | {"rbd_cluster_name", "backend_availability_zone",
                                              "replication_device"}
NOVA_LIBVIRT = known.NOVA["libvirt"] | {"images_rbd_glance_store_name"}


def facts() -> dict[str, ClusterFacts]:
    return {name: ClusterFacts(FSIDS[name], f"[v2:192.0.2.{i}:3300]",
                               {e: Secret(f"(key of {e} on {name})")
                                for e in desired_clients(part)})
            for i, (name, part) in enumerate(split(SPEC).items(), 1)}


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("two-site")
    for f in render(SPEC, facts(), "plain"):
        (root / f.path).parent.mkdir(parents=True, exist_ok=True)
        (root / f.path).write_text(f.text)
    return root


def read_oslo(path: Path, groups: dict[str | None, dict[str, type]]) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    for group, opts in groups.items():
        conf.register_opts([kind(name) for name, kind in opts.items()], group=group)
    conf(args=[], default_config_files=[str(path)], default_config_dirs=[])
    return conf


def strs(*names: str) -> dict[str, type]:
    return dict.fromkeys(names, cfg.StrOpt)


def test_files_are_named_per_cluster(plain):
    keyrings = {str(p.relative_to(plain)) for p in plain.rglob("*.keyring")}
    assert keyrings == {
        "controller/etc/ceph/central.client.glance.keyring",
        "controller/etc/ceph/edge1.client.glance.keyring",
        "controller/etc/ceph/central.client.cinder-volume.keyring",
        "controller/etc/ceph/edge1.client.cinder-volume.keyring",
        "backup/etc/ceph/edge1.client.cinder-backup.keyring",
        "backup/etc/ceph/central.client.cinder-volume.keyring",
        "backup/etc/ceph/edge1.client.cinder-volume.keyring",
        "compute-central/etc/ceph/central.client.nova.keyring",
        "compute-edge1/etc/ceph/edge1.client.nova.keyring",
        "rbd-mirror-central/etc/ceph/central.client.rbd-mirror.central.keyring",
        "rbd-mirror-edge1/etc/ceph/edge1.client.rbd-mirror.edge1.keyring",
    }
    assert "(key of client.glance on edge1)" in (
        plain / "controller/etc/ceph/edge1.client.glance.keyring").read_text()
    assert not list(plain.rglob("ceph.conf"))
    conf = configparser.ConfigParser()
    conf.read(plain / "compute-edge1/etc/ceph/edge1.conf")
    assert conf["global"]["fsid"] == FSIDS["edge1"]
    manifest = json.loads((plain / "backup/MANIFEST.json").read_text())
    assert {(c["cluster"], c["entity"], c["conf"]) for c in manifest["checks"]} == {
        ("edge1", "client.cinder-backup", "/etc/ceph/edge1.conf"),
        ("central", "client.cinder-volume", "/etc/ceph/central.conf"),
        ("edge1", "client.cinder-volume", "/etc/ceph/edge1.conf")}


def test_glance_has_one_store_per_cluster(plain):
    path = plain / "controller/fragments/glance-api.conf"
    conf = read_oslo(path, {None: strs("enabled_backends"), "glance_store":
                            strs("default_backend"),
                            **{c: strs(*known.GLANCE["<backend>"]) for c in FSIDS}})
    assert conf.enabled_backends == "central:rbd,edge1:rbd"
    assert conf.glance_store.default_backend == "central"
    assert (conf.edge1.rbd_store_pool, conf.edge1.rbd_store_ceph_conf) == (
        "images-edge1", "/etc/ceph/edge1.conf")
    assert conf.central.rbd_store_ceph_conf == "/etc/ceph/central.conf"


def test_cinder_backends_select_their_cluster_zone_secret_and_replica(plain):
    path = plain / "controller/fragments/cinder.conf"
    opts = {n: cfg.StrOpt for n in CINDER_BACKEND} | {"replication_device": cfg.MultiStrOpt}
    conf = read_oslo(path, {None: strs("enabled_backends"), "rbd-volume": opts,
                            "rbd-volume-edge1": opts})
    assert conf.enabled_backends == "rbd-volume,rbd-volume-edge1"
    central, edge = conf["rbd-volume"], conf["rbd-volume-edge1"]
    assert (central.rbd_cluster_name, central.rbd_ceph_conf, central.backend_availability_zone,
            central.rbd_secret_uuid) == ("central", "/etc/ceph/central.conf", "central",
                                         secret_uuid(FSIDS["central"], "client.cinder-volume"))
    assert (edge.rbd_cluster_name, edge.rbd_ceph_conf, edge.backend_availability_zone) == (
        "edge1", "/etc/ceph/edge1.conf", "edge1")
    on_edge = secret_uuid(FSIDS["edge1"], "client.cinder-volume")
    assert central.replication_device == [
        f"backend_id:edge1,conf:/etc/ceph/edge1.conf,user:cinder-volume,secret_uuid:{on_edge}"]
    assert not edge.replication_device
    for section in ("rbd-volume", "rbd-volume-edge1"):
        parser = configparser.ConfigParser(interpolation=None, strict=True)
        parser.read(path)
        assert set(parser[section]) - set(parser.defaults()) <= CINDER_BACKEND
    backup = read_oslo(plain / "backup/fragments/cinder.conf",
                       {None: strs("backup_ceph_conf", "backup_ceph_pool")})
    assert (backup.backup_ceph_conf, backup.backup_ceph_pool) == ("/etc/ceph/edge1.conf",
                                                                  "backups")


def test_nova_per_zone_uses_the_local_glance_store_and_each_cluster_secret(plain):
    for zone in FSIDS:
        path = plain / f"compute-{zone}/fragments/nova.conf"
        conf = read_oslo(path, {"libvirt": strs(*NOVA_LIBVIRT)})
        assert conf.libvirt.images_rbd_glance_store_name == zone
        assert conf.libvirt.images_rbd_ceph_conf == f"/etc/ceph/{zone}.conf"
        assert conf.libvirt.rbd_secret_uuid == secret_uuid(FSIDS[zone], "client.nova")
        # Several Glance stores: Nova refuses an image missing from its zone's store
        # rather than downloading it from another site (nova/conf/workarounds.py).
        refuses = read_oslo(path, {"workarounds": {"never_download_image_if_on_rbd":
                                                   cfg.BoolOpt}})
        assert refuses.workarounds.never_download_image_if_on_rbd is True
    central = json.loads((plain / "compute-central/MANIFEST.json").read_text())
    # One secret per (cluster, user): central's Nova and Cinder, and Cinder on the
    # mirroring secondary for failed-over volumes.
    assert {(s["cluster"], s["entity"]) for s in central["secrets"]} == {
        ("central", "client.nova"), ("central", "client.cinder-volume"),
        ("edge1", "client.cinder-volume")}
    uuids = {s["uuid"] for s in central["secrets"]}
    assert len(uuids) == 3
    assert all((plain / f"compute-central/secrets/{u}.xml").exists() for u in uuids)
    assert "edge1.conf" in {Path(f["host_path"]).name for f in central["files"]}


def test_kolla_variables_name_each_backend_cluster():
    files = {f.path: f.text for f in render(SPEC, facts(), "kolla")}
    import yaml

    globals_ = yaml.safe_load(files["globals.yml"])
    assert [(b["name"], b["cluster"], b["pool"]) for b in globals_["glance_ceph_backends"]] == [
        ("central", "central", "images"), ("edge1", "edge1", "images-edge1")]
    assert [(b["name"], b["cluster"], b["availability_zone"])
            for b in globals_["cinder_ceph_backends"]] == [
        ("rbd-volume", "central", "central"), ("rbd-volume-edge1", "edge1", "edge1")]
    assert globals_["cinder_backup_backend_ceph_name"] == "rbd-volume-edge1"
    assert yaml.safe_load(files["zones/compute-edge1.yml"]) == {
        "ceph_cluster": "edge1", "ceph_nova_pool_name": "vm-edge1"}
    for path in ("config/glance/edge1.conf", "config/glance/edge1.client.glance.keyring",
                 "config/cinder/cinder-volume/central.client.cinder-volume.keyring",
                 "config/cinder/cinder-backup/edge1.client.cinder-backup.keyring",
                 "config/nova/edge1.client.nova.keyring"):
        assert path in files
