"""--merge-into on realistic service files, read back with oslo.config (the parser the
services use): other backends kept, existing Ceph backends adopted, legacy Glance stores
migrated, owner/mode/bytes kept, idempotent."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

import pytest
from oslo_config import cfg

from cephstack.errors import CephstackError
from cephstack.host.merge import merge_file
from cephstack.render.bundle import file_sections
from cephstack.render.model import secret_uuid
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import parse_spec

FSID = "7e3ac8e4-0d1c-4b5e-9f2a-3c4d5e6f7a8b"
DEFAULT = parse_spec(DEFAULT_SPEC)


def read_oslo(path: Path, opts: dict[str, list[str]]) -> cfg.ConfigOpts:
    """Load `path` as a service would: options registered per group, then parsed."""
    conf = cfg.ConfigOpts()
    for group, names in opts.items():
        conf.register_opts([cfg.StrOpt(n) for n in names],
                           group=None if group == "DEFAULT" else group)
    conf(args=[], default_config_files=[str(path)], default_config_dirs=[])
    return conf


def merge(tmp_path: Path, name: str, text: str | bytes, service: str, spec=DEFAULT,
          mode: int = 0o644, group: str | None = None) -> tuple[Path, object]:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    os.chmod(path, mode)
    if group:
        os.chown(path, 0, grp.getgrnam(group).gr_gid)
    outcome = merge_file(path, file_sections(spec, FSID, service), service)
    again = merge_file(path, file_sections(spec, FSID, service), service)
    assert not again.changed, "a second merge must change nothing"
    return path, outcome


CINDER_LVM = """\
[DEFAULT]
transport_url = rabbit://openstack:s3cret@controller
enabled_backends = lvm
default_volume_type = lvm
# LVM on the controller's disks
[lvm]
volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver
volume_group = cinder-volumes
target_helper = lioadm"""  # no trailing newline


def test_cinder_lvm_backend_and_default_type_are_kept(tmp_path):
    path, outcome = merge(tmp_path, "cinder.conf", CINDER_LVM, "cinder")
    conf = read_oslo(path, {"DEFAULT": ["enabled_backends", "default_volume_type",
                                        "transport_url", "backup_driver"],
                            "lvm": ["volume_driver", "volume_group", "target_helper"],
                            "rbd-volume": ["volume_driver", "rbd_pool", "rbd_user",
                                           "rbd_secret_uuid", "volume_backend_name"]})
    assert conf.enabled_backends == "lvm,rbd-volume"
    assert conf.default_volume_type == "lvm"
    assert conf.lvm.volume_group == "cinder-volumes"
    assert conf.lvm.volume_driver == "cinder.volume.drivers.lvm.LVMVolumeDriver"
    assert conf["rbd-volume"].rbd_pool == "volume"
    assert conf["rbd-volume"].rbd_secret_uuid == secret_uuid(FSID, "client.cinder-volume")
    assert conf.backup_driver == "cinder.backup.drivers.ceph.CephBackupDriver"
    assert "s3cret" not in outcome.diff  # only changed lines: no context with passwords
    kept = [line for line in CINDER_LVM.splitlines() if not line.startswith("enabled_backends")]
    after = path.read_text().splitlines()
    assert [line for line in after if line in kept] == kept  # every other line, in order


CINDER_CEPH = """\
[DEFAULT]
enabled_backends = ceph
[ceph]
volume_driver = cinder.volume.drivers.rbd.RBDDriver
volume_backend_name = ceph
rbd_pool = volume
rbd_user = cinder-volume
rbd_ceph_conf = /etc/ceph/ceph.conf
rbd_secret_uuid = 457eb676-33da-42ec-9a8c-9293d545c337
"""


def test_an_existing_ceph_backend_is_adopted_never_duplicated(tmp_path):
    path = tmp_path / "cinder.conf"
    path.write_text(CINDER_CEPH)
    with pytest.raises(CephstackError) as e:
        merge_file(path, file_sections(DEFAULT, FSID, "cinder"), "cinder")
    assert "[ceph] is already the Ceph backend of pool volume" in e.value.message
    assert "backends: {volume: {section: ceph, volume_backend_name: ceph}}" in e.value.hint
    assert path.read_text() == CINDER_CEPH  # nothing written
    pinned_section = parse_spec(DEFAULT_SPEC.replace(
        "pools: [volume]}", "pools: [volume], backends: {volume: {section: ceph}}}"))
    with pytest.raises(CephstackError) as e:  # same section, but the secret would change
        merge_file(path, file_sections(pinned_section, FSID, "cinder"), "cinder")
    assert "secret_uuid: 457eb676-33da-42ec-9a8c-9293d545c337" in e.value.hint
    pinned = parse_spec(DEFAULT_SPEC.replace(
        "pools: [volume]}", "pools: [volume], backends: {volume: {section: ceph}}, "
        "secret_uuid: 457eb676-33da-42ec-9a8c-9293d545c337}"))
    path, _ = merge(tmp_path, "cinder.conf", CINDER_CEPH, "cinder", pinned)
    conf = read_oslo(path, {"DEFAULT": ["enabled_backends"],
                            "ceph": ["volume_backend_name", "rbd_secret_uuid", "rbd_pool"]})
    assert conf.enabled_backends == "ceph"
    assert conf.ceph.volume_backend_name == "ceph"
    assert conf.ceph.rbd_secret_uuid == "457eb676-33da-42ec-9a8c-9293d545c337"
    assert path.read_text().count("volume_driver") == 1


GLANCE_LEGACY = """\
[DEFAULT]
bind_port = 9292
[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = /var/lib/glance/images/
"""


@pytest.mark.parametrize("make_default, expected", [(False, "file"), (True, "rbd")])
def test_glance_legacy_stores_become_backends(tmp_path, make_default, expected):
    spec = parse_spec(DEFAULT_SPEC.replace(
        "{user: glance, pool: images}",
        f"{{user: glance, pool: images, default_store: {str(make_default).lower()}}}"))
    path, outcome = merge(tmp_path, "glance-api.conf", GLANCE_LEGACY, "glance", spec)
    conf = read_oslo(path, {"DEFAULT": ["enabled_backends", "show_image_direct_url"],
                            "glance_store": ["default_backend", "stores", "default_store"],
                            "file": ["filesystem_store_datadir"],
                            "rbd": ["rbd_store_pool", "rbd_store_user"]})
    assert conf.enabled_backends == "file:file,http:http,rbd:rbd"
    assert conf.glance_store.default_backend == expected
    assert conf.glance_store.stores is None and conf.glance_store.default_store is None
    assert conf.file.filesystem_store_datadir == "/var/lib/glance/images/"
    assert conf.rbd.rbd_store_user == "glance"
    assert conf.show_image_direct_url == "True"
    assert f"the default store is {expected}" in outcome.notes[0]


def test_owner_group_mode_comments_crlf_and_duplicates(tmp_path):
    text = ("# nova.conf\r\n[DEFAULT]\r\nmy_ip = 10.0.0.5\r\n[libvirt]\r\nvirt_type = kvm\r\n"
            "images_type = qcow2\r\n[libvirt]\r\nimages_type = raw\r\n[ libvirt ]\r\n"
            "rbd_user = nova\r\n")
    # images_type qcow2/raw -> rbd: a replacement the spec must allow (test_brownfield.py)
    replacing = parse_spec(DEFAULT_SPEC.replace("    direct_snapshots: false\n",
                                                "    direct_snapshots: false\n"
                                                "    replace_existing: true\n"))
    path, outcome = merge(tmp_path, "nova.conf", text, "nova", replacing, mode=0o640,
                          group="daemon")
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0
    assert grp.getgrgid(st.st_gid).gr_name == "daemon"
    data = path.read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF stays CRLF
    assert data.count(b"images_type = rbd\r\n") == 2  # duplicated sections kept in step
    assert "[ libvirt ] is not [libvirt] for oslo.config" in outcome.notes[0]
    conf = read_oslo(path, {"libvirt": ["images_type", "rbd_user", "virt_type",
                                        "rbd_secret_uuid", "images_rbd_pool"]})
    assert (conf.libvirt.images_type, conf.libvirt.virt_type) == ("rbd", "kvm")
    assert conf.libvirt.rbd_user == "nova" and conf.libvirt.images_rbd_pool == "vm"
    assert conf.libvirt.rbd_secret_uuid == secret_uuid(FSID, "client.nova")
    assert (tmp_path / "nova.conf.cephstack.bak").read_bytes() == text.encode()


def test_bytes_that_are_not_utf8_are_kept(tmp_path):
    text = b"# caf\xe9 (a Latin-1 byte)\n[libvirt]\nvirt_type = kvm\n"
    path, _ = merge(tmp_path, "nova.conf", text, "nova")
    assert path.read_bytes().startswith(b"# caf\xe9 (a Latin-1 byte)\n[libvirt]\n")


def test_an_existing_nova_secret_is_adopted_not_replaced(tmp_path):
    path = tmp_path / "nova.conf"
    path.write_text("[libvirt]\nrbd_user = nova\n"
                    "rbd_secret_uuid = 11111111-2222-3333-4444-555555555555\n")
    with pytest.raises(CephstackError) as e:
        merge_file(path, file_sections(DEFAULT, FSID, "nova"), "nova")
    assert "nova.secret_uuid: 11111111-2222-3333-4444-555555555555" in e.value.hint


def test_dry_run_and_links_change_nothing(tmp_path):
    path = tmp_path / "cinder.conf"
    path.write_text(CINDER_LVM)
    outcome = merge_file(path, file_sections(DEFAULT, FSID, "cinder"), "cinder", dry_run=True)
    assert outcome.changed and "+enabled_backends = lvm,rbd-volume" in outcome.diff
    assert path.read_text() == CINDER_LVM
    assert not (tmp_path / "cinder.conf.cephstack.bak").exists()
    link = tmp_path / "link.conf"
    link.symlink_to(path)
    with pytest.raises(CephstackError, match="symbolic link"):
        merge_file(link, file_sections(DEFAULT, FSID, "cinder"), "cinder")
    assert path.read_text() == CINDER_LVM


def test_import_pins_what_existing_files_use_and_the_merge_then_adopts_them(tmp_path):
    from cephstack.adopt.describe import _flow
    from cephstack.render.existing import adopted_pins

    nova = "[libvirt]\nrbd_user = nova\nrbd_secret_uuid = 11111111-2222-3333-4444-555555555555\n"
    pins = adopted_pins(CINDER_CEPH, nova, "cinder-volume", "nova")
    assert pins == {
        "cinder-volume": {"backends": {"volume": {"section": "ceph",
                                                  "volume_backend_name": "ceph"}},
                          "secret_uuid": "457eb676-33da-42ec-9a8c-9293d545c337"},
        "nova": {"secret_uuid": "11111111-2222-3333-4444-555555555555"}}
    cinder = ", ".join(f"{k}: {_flow(v)}" for k, v in pins["cinder-volume"].items())
    spec = parse_spec(DEFAULT_SPEC.replace("pools: [volume]}", f"pools: [volume], {cinder}}}")
                      .replace("    direct_snapshots: false", "    direct_snapshots: false\n"
                               "    secret_uuid: 11111111-2222-3333-4444-555555555555"))
    path, outcome = merge(tmp_path, "cinder.conf", CINDER_CEPH, "cinder", spec)
    assert "[rbd-volume]" not in path.read_text()
    merge(tmp_path, "nova.conf", nova, "nova", spec)
    assert adopted_pins(CINDER_CEPH, None, "someone-else", None) == {}
