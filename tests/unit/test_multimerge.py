"""--merge-into with several clusters, without a cluster: the role chosen and checked, its
sections exactly its bundle's fragment, the two cinder.conf roles composing (read back
with oslo.config), and the refusals (exit 2 listing the roles; exit 3 naming every cluster
not reached, the file untouched)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from oslo_config import cfg

from cephstack.cli import main
from cephstack.errors import EXIT_BAD_INPUT, EXIT_UNREACHABLE, CephstackError
from cephstack.host.merge import BACKUP_SUFFIX, merge_file
from cephstack.render.bundle import render
from cephstack.render.ini import sections_to_data
from cephstack.render.model import secret_uuid
from cephstack.render.roles import SERVICE_TARGETS, RoleMerge, choose, role_sections
from cephstack.spec.defaults import DEFAULT_SPEC
from tests.unit.test_clusters import TWO_SITE
from tests.unit.test_clusters_render import CINDER_BACKEND, FSIDS, SPEC, facts, read_oslo, strs

ROLES = ("controller, backup, compute-central, compute-edge1, rbd-mirror-central, "
         "rbd-mirror-edge1")
CINDER_LVM = """\
[DEFAULT]
enabled_backends = lvm
default_volume_type = lvm

[lvm]
volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver
volume_group = cinder-volumes
"""


@pytest.mark.parametrize(("role", "service", "clusters"), [
    ("controller", "glance", ("central", "edge1")),
    ("controller", "cinder", ("central", "edge1")),
    ("backup", "cinder", ("edge1", "central")),
    ("compute-edge1", "nova", ("edge1",)),
    # The mirroring primary's computes attach failed-over volumes from the secondary.
    ("compute-central", "nova", ("central", "edge1")),
])
def test_a_role_reaches_only_the_clusters_its_bundle_names(role, service, clusters):
    chosen = choose(SPEC, role, service)
    assert chosen == RoleMerge(role, service, SERVICE_TARGETS[service], clusters)


def test_the_sections_are_exactly_what_the_roles_bundle_merges():
    """Every fragment of every bundle, as `host install` would merge it, and nothing else."""
    files = {f.path: f.text for f in render(SPEC, facts())}
    merged = 0
    for path, text in files.items():
        if not path.endswith("/MANIFEST.json"):
            continue
        manifest = json.loads(text)
        for fragment in manifest["fragments"]:
            chosen = choose(SPEC, manifest["role"], fragment["service_file"])
            assert chosen.target == fragment["merge_into"]
            assert list(chosen.clusters) == list(manifest["clusters"])
            fsids = {c: FSIDS[c] for c in chosen.clusters}  # the role's clusters, no others
            mine = role_sections(SPEC, chosen, fsids)
            assert sections_to_data(mine) == fragment["sections"]  # the manifest has no why
            merged += 1
    assert merged == 5  # glance and cinder (controller), cinder (backup), nova (2 zones)


def test_sections_needing_a_cluster_not_read_are_refused():
    # A guard against a role whose settings would name a cluster it does not list.
    wrong = RoleMerge("controller", "cinder", SERVICE_TARGETS["cinder"], ("central",))
    with pytest.raises(CephstackError, match="depend on a cluster other than central"):
        role_sections(SPEC, wrong, {"central": FSIDS["central"]})


@pytest.mark.parametrize(("role", "service", "message", "hint"), [
    (None, "nova", f"needs --role: the settings depend on the host (roles: {ROLES})",
     "--role controller"),
    ("compute", "nova", f"--role compute: no such role in two-site.yaml (roles: {ROLES})",
     "bundles' directories"),
    ("compute-edge1", "glance", "role compute-edge1 has no glance settings: its bundle merges "
     "into /etc/nova/nova.conf, not /etc/glance/glance-api.conf",
     "roles with glance settings: controller"),
    ("rbd-mirror-edge1", "cinder", "its bundle merges into no service file",
     "roles with cinder settings: controller, backup"),
])
def test_a_missing_unknown_or_unfitting_role_is_bad_input(role, service, message, hint):
    with pytest.raises(CephstackError) as e:
        choose(SPEC, role, service)
    assert e.value.exit_code == EXIT_BAD_INPUT and e.value.kind == "bad-arguments"
    assert message in e.value.message and hint in e.value.hint


def test_controller_and_backup_merges_compose_in_one_cinder_conf(tmp_path):
    path = tmp_path / "cinder.conf"
    path.write_text(CINDER_LVM)
    for role in ("controller", "backup", "controller"):
        chosen = choose(SPEC, role, "cinder")
        sections = role_sections(SPEC, chosen, FSIDS)
        merge_file(path, sections, "cinder")
    assert not merge_file(path, sections, "cinder").changed
    opts = {n: cfg.StrOpt for n in CINDER_BACKEND}
    conf = read_oslo(path, {None: strs("enabled_backends", "default_volume_type",
                                       "backup_ceph_conf"),
                            "lvm": strs("volume_group"), "rbd-volume-edge1": opts})
    assert conf.enabled_backends == "lvm,rbd-volume,rbd-volume-edge1"
    assert (conf.default_volume_type, conf.lvm.volume_group) == ("lvm", "cinder-volumes")
    assert conf.backup_ceph_conf == "/etc/ceph/edge1.conf"
    edge = conf["rbd-volume-edge1"]
    assert (edge.rbd_cluster_name, edge.rbd_secret_uuid) == (
        "edge1", secret_uuid(FSIDS["edge1"], "client.cinder-volume"))


def _merge(capsys, spec_text: str, tmp_path: Path, path: Path, *flags: str) -> tuple[int, dict]:
    """`render --merge-into PATH --role controller` of a two-site spec, and its JSON error."""
    spec = tmp_path / "two-site.yaml"
    spec.write_text(spec_text)
    code = main(["render", "-f", str(spec), "--merge-into", str(path), "--role", "controller",
                 "--output", "json", *flags])
    return code, json.loads(capsys.readouterr().out)["error"]


def test_clusters_not_reached_are_all_named_and_the_file_is_untouched(tmp_path, capsys):
    path = tmp_path / "cinder.conf"
    path.write_text(CINDER_LVM)
    absent = TWO_SITE.replace("/etc/ceph/", f"{tmp_path}/absent/")
    code, error = _merge(capsys, absent, tmp_path, path)
    assert code == EXIT_UNREACHABLE and error["kind"] == "unreachable"
    assert error["message"].splitlines() == [
        f"cluster central: ceph.conf not found: {tmp_path}/absent/central.conf",
        f"cluster edge1: ceph.conf not found: {tmp_path}/absent/edge1.conf",
        f"nothing merged: {path} is unchanged"]
    assert "clusters.central" in error["hint"]
    assert path.read_text() == CINDER_LVM and not Path(f"{path}{BACKUP_SUFFIX}").exists()


def test_one_cluster_flags_for_several_clusters_are_refused(tmp_path, capsys):
    code, error = _merge(capsys, TWO_SITE, tmp_path, tmp_path / "cinder.conf", "--conf", "x.conf")
    assert code == EXIT_BAD_INPUT
    assert re.search("--conf: the spec .* has several clusters", error["message"])


def test_role_flag_misuse_exits_2_before_any_cluster(tmp_path, capsys):
    one = tmp_path / "one.yaml"
    one.write_text(DEFAULT_SPEC)
    target = tmp_path / "nova.conf"
    target.write_text("[libvirt]\n")
    # One cluster: --role names one of its roles (issue 19: it is no longer refused), and a
    # role without settings for the file is still refused before any cluster is reached.
    assert main(["render", "-f", str(one), "--merge-into", str(target), "--role",
                 "controller"]) == 2
    assert "role controller has no nova settings" in capsys.readouterr().err
    two = tmp_path / "two.yaml"
    two.write_text(TWO_SITE)
    assert main(["render", "-f", str(two), "--out", str(tmp_path / "out"), "--role",
                 "controller"]) == 2
    assert "--role goes with --merge-into" in capsys.readouterr().err
    assert main(["render", "-f", str(two), "--merge-into", str(target), "--output",
                 "json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["kind"] == "bad-arguments" and ROLES in error["message"]
    assert target.read_text() == "[libvirt]\n"


GLANCE_LEGACY_RBD = """\
[DEFAULT]
bind_port = 9292
[glance_store]
stores = rbd,http
default_store = rbd
rbd_store_pool = images
"""


def test_legacy_glance_stores_get_a_default_backend_that_exists(tmp_path):
    """An old single-store Glance (stores = rbd,http; default rbd) merged for several
    clusters: the default backend must be one of the backends then enabled (the first
    cluster's store), or Glance refuses to start."""
    path = tmp_path / "glance-api.conf"
    path.write_text(GLANCE_LEGACY_RBD)
    chosen = choose(SPEC, "controller", "glance")
    outcome = merge_file(path, role_sections(SPEC, chosen, FSIDS), "glance")
    conf = read_oslo(path, {None: {"enabled_backends": cfg.StrOpt},
                            "glance_store": {"default_backend": cfg.StrOpt,
                                             "stores": cfg.StrOpt}})
    backends = dict(e.split(":") for e in conf.enabled_backends.split(","))
    assert backends == {"http": "http", "central": "rbd", "edge1": "rbd"}
    assert conf.glance_store.default_backend == "central"
    assert conf.glance_store.stores is None
    assert "became backends http, central, edge1; the default store is central" in \
        outcome.notes[0]
