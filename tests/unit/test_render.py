"""Rendering as pure functions: goldens, valid INI with real option names, stable secrets."""

from __future__ import annotations

import configparser
import json
import os
import re
from pathlib import Path

import pytest

from cephstack.keyfiles import Secret
from cephstack.render.bundle import file_sections, render
from cephstack.render.merge import merge_ini
from cephstack.render.model import ClusterFacts, mon_host_from_monmap, secret_uuid
from cephstack.spec.catalog import desired_clients
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import parse_spec
from tests.data import openstack_options as known

GOLDEN = Path(__file__).parents[1] / "golden"
FSID = "7e3ac8e4-0d1c-4b5e-9f2a-3c4d5e6f7a8b"
MON_HOST = "[v2:192.0.2.10:3300,v1:192.0.2.10:6789] [v2:192.0.2.11:3300,v1:192.0.2.11:6789]"

DEFAULT = parse_spec(DEFAULT_SPEC)
TWO_BACKENDS = parse_spec(DEFAULT_SPEC.replace(
    "vm:      {pg_num: 32}", "vm:      {pg_num: 32}\n  volume-ssd: {pg_num: 32}").replace(
    "pools: [volume]", "pools: [volume, volume-ssd]"))
CASES = {"default-plain": (DEFAULT, "plain"), "default-kolla": (DEFAULT, "kolla"),
         "two-backends-plain": (TWO_BACKENDS, "plain")}


def facts(spec) -> ClusterFacts:
    # Goldens hold no key: every key renders as this marker.
    return ClusterFacts(FSID, MON_HOST, {e: Secret("(redacted)") for e in desired_clients(spec)})


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_files_match_the_goldens(case):
    spec, fmt = CASES[case]
    files = {f.path: f.text for f in render(spec, facts(spec), fmt)}
    root = GOLDEN / case
    if os.environ.get("CEPHSTACK_UPDATE_GOLDEN"):
        for path, text in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
    on_disk = {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}
    assert files == on_disk


def _ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.read_string(text)
    return parser


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_ini_parses_and_uses_only_real_option_names(case):
    spec, fmt = CASES[case]
    for f in render(spec, facts(spec), fmt):
        name = Path(f.path).name
        table = {"glance-api.conf": known.GLANCE, "cinder.conf": known.CINDER,
                 "nova.conf": known.NOVA, "ceph.conf": known.CEPH,
                 "glance.conf": known.GLANCE}.get(name)
        if table is None:
            continue
        parser = _ini(f.text)
        for section in [*parser.sections(), "DEFAULT"]:
            names = set(parser[section]) - (set(parser.defaults()) if section != "DEFAULT"
                                            else set())
            if section == "DEFAULT":
                names = set(parser.defaults())
            allowed = table.get(section) or table.get(
                "<client.name>" if section.startswith("client.") else "<backend>", set())
            assert names <= allowed, f"{f.path} [{section}]: {names - allowed}"


def test_cinder_secret_uuid_is_the_computes_libvirt_secret_for_cinders_user():
    files = {f.path: f.text for f in render(DEFAULT, facts(DEFAULT), "plain")}
    cinder = _ini(files["controller/fragments/cinder.conf"])["rbd-volume"]["rbd_secret_uuid"]
    nova = _ini(files["compute/fragments/nova.conf"])["libvirt"]["rbd_secret_uuid"]
    assert cinder == secret_uuid(FSID, "client.cinder-volume")
    assert nova == secret_uuid(FSID, "client.nova") != cinder
    assert f"compute/secrets/{cinder}.xml" in files and f"compute/secrets/{nova}.xml" in files
    assert "<name>client.cinder-volume secret (ceph cluster " + FSID in files[
        f"compute/secrets/{cinder}.xml"]
    assert secret_uuid(FSID, "client.nova") == secret_uuid(FSID, "client.nova")  # stable
    assert secret_uuid("another-fsid", "client.nova") != nova  # unique per cluster


def test_bundles_hold_exactly_the_keyrings_their_role_needs():
    files = [f.path for f in render(DEFAULT, facts(DEFAULT), "plain")]
    keyrings = {}
    for path in files:
        role, name = path.split("/")[0], Path(path).name
        if name.endswith(".keyring"):
            keyrings.setdefault(role, set()).add(name)
    assert keyrings == {
        "controller": {"ceph.client.glance.keyring", "ceph.client.cinder-volume.keyring"},
        "backup": {"ceph.client.cinder-backup.keyring", "ceph.client.cinder-volume.keyring"},
        "compute": {"ceph.client.nova.keyring"},
    }
    secret_files = [f for f in render(DEFAULT, facts(DEFAULT), "plain") if f.secret]
    assert {Path(f.path).suffix for f in secret_files} == {".keyring", ".key"}


def test_chunk_sizes_come_from_the_spec_with_the_services_defaults():
    files = {f.path: f.text for f in render(DEFAULT, facts(DEFAULT), "plain")}
    glance, cinder = "controller/fragments/glance-api.conf", "controller/fragments/cinder.conf"
    assert _ini(files[glance])["rbd"]["rbd_store_chunk_size"] == "8"
    assert _ini(files[cinder])["rbd-volume"]["rbd_store_chunk_size"] == "4"
    spec = parse_spec(DEFAULT_SPEC.replace("{user: glance, pool: images}",
                                           "{user: glance, pool: images, chunk_size_mib: 16}")
                      .replace("pools: [volume]}", "pools: [volume], chunk_size_mib: 8}"))
    files = {f.path: f.text for f in render(spec, facts(spec), "plain")}
    assert _ini(files[glance])["rbd"]["rbd_store_chunk_size"] == "16"
    assert _ini(files[cinder])["rbd-volume"]["rbd_store_chunk_size"] == "8"


def test_mon_host_from_the_monitor_map():
    monmap = {"mons": [{"public_addrs": {"addrvec": [
        {"type": "v2", "addr": "10.0.0.1:3300"}, {"type": "v1", "addr": "10.0.0.1:6789"}]}}]}
    assert mon_host_from_monmap(monmap) == "[v2:10.0.0.1:3300,v1:10.0.0.1:6789]"


NOVA_CONF = """\
# nova.conf of a running compute host
[DEFAULT]
debug = false
  # an indented comment
my_ip=10.0.0.5

[libvirt]
# operators' notes stay
virt_type = kvm
images_type=qcow2
rbd_user =  nova
\t# tab comment

[vnc]
enabled = true
"""


def test_merge_changes_only_owned_options_and_is_idempotent():
    sections = file_sections(DEFAULT, FSID, "nova")
    merged = merge_ini(NOVA_CONF, sections)
    assert merge_ini(merged, sections) == merged
    before, after = NOVA_CONF.splitlines(), merged.splitlines()
    owned = {o.key for s in sections for o in s.options}

    def key(line):
        return line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith(
            "#") else None
    assert [line for line in before if key(line) not in owned] == [
        line for line in after if key(line) not in owned]  # every other line, in order
    assert "images_type = rbd" in after and "images_type=qcow2" not in after
    assert "rbd_user =  nova" in after  # same value: the operator's spacing is kept
    libvirt = after[after.index("[libvirt]"):after.index("[vnc]")]
    assert f"rbd_secret_uuid = {secret_uuid(FSID, 'client.nova')}" in libvirt


def test_merge_adds_missing_sections_at_the_end():
    merged = merge_ini("[DEFAULT]\ndebug = true", file_sections(DEFAULT, FSID, "glance"))
    assert merged.startswith("[DEFAULT]\ndebug = true\nshow_image_direct_url = True\n")
    assert re.search(r"\n\n\[rbd\]\nrbd_store_pool = images\n", merged)


def _manifest(spec, role):
    files = {f.path: f.text for f in render(spec, facts(spec), "plain")}
    return json.loads(files[f"{role}/MANIFEST.json"]), files


def test_bundles_mirror_the_host_and_say_where_everything_goes():
    manifest, files = _manifest(DEFAULT, "controller")
    assert {f["host_path"]: (f["owner"], f["group"], f["mode"]) for f in manifest["files"]} == {
        "/etc/ceph/ceph.conf": ("root", "root", "0644"),
        "/etc/ceph/ceph.client.glance.keyring": ("root", "glance", "0640"),
        "/etc/ceph/ceph.client.cinder-volume.keyring": ("root", "cinder", "0640")}
    assert manifest["restart"] == ["glance-api", "cinder-volume"]
    assert manifest["volume_types"] == [
        "openstack volume type create rbd-volume --property volume_backend_name=rbd-volume"]
    assert {f["merge_into"] for f in manifest["fragments"]} == {
        "/etc/glance/glance-api.conf", "/etc/cinder/cinder.conf"}
    for path, text in files.items():
        if path.endswith("/etc/ceph/ceph.conf"):  # keys at their default path only
            assert "keyring" not in text
            assert ("admin socket" in text) == path.startswith("compute/")
    backup, _ = _manifest(DEFAULT, "backup")
    assert {(c["unix_user"], c["entity"], c["pool"]) for c in backup["checks"]} == {
        ("cinder", "client.cinder-backup", "backups"), ("cinder", "client.cinder-volume", "volume")}


def test_keyring_access_and_unix_users_come_from_the_spec():
    spec = parse_spec(DEFAULT_SPEC.replace(
        "{user: glance, pool: images}", "{user: glance, pool: images, unix_user: gl, "
        "keyring: {owner: gl, group: ops, mode: '0600'}}"))
    manifest, _ = _manifest(spec, "controller")
    glance = next(f for f in manifest["files"] if "glance" in f["host_path"])
    assert (glance["owner"], glance["group"], glance["mode"]) == ("gl", "ops", "0600")
    assert {c["unix_user"] for c in manifest["checks"] if c["service"] == "glance"} == {"gl"}


def test_direct_snapshots_say_what_glance_needs_and_its_caveat():
    manifest, _ = _manifest(DEFAULT, "compute")
    assert manifest["notes"] == []
    spec = parse_spec(DEFAULT_SPEC.replace("direct_snapshots: false", "direct_snapshots: true"))
    manifest, files = _manifest(spec, "compute")
    [note] = manifest["notes"]
    assert "show_multiple_locations" in note and "OSSN-0065" in note
    assert "show_multiple_locations" in files["compute/README.txt"]


def test_kolla_globals_name_every_cinder_backend_and_every_keyring():
    files = {f.path: f.text for f in render(TWO_BACKENDS, facts(TWO_BACKENDS), "kolla")}
    text = files["globals.yml"]
    for pool in ("volume", "volume-ssd"):
        assert f'    pool: "{pool}"' in text
    assert 'ceph_nova_keyring: "client.nova.keyring"' in text  # not kolla's Cinder default
    assert 'cinder_backup_backend_ceph_name: "rbd-volume"' in text
    assert "show_image_direct_url = True" in files["config/glance.conf"]
    for path, text in files.items():
        if path.endswith(".conf"):
            assert not any(line[:1] in (" ", "\t") for line in text.splitlines())
