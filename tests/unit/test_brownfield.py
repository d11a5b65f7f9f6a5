"""Merging into hosts cephstack did not make (issue 19): a choice the host made that
cephstack's value would silently undo is kept and the merge refused, naming what would be
lost and the spec setting that allows it; the file from before cephstack is kept once."""

from __future__ import annotations

import pytest

from cephstack.errors import CephstackError
from cephstack.host.merge import BACKUP_SUFFIX, ORIGINAL_SUFFIX, merge_file
from cephstack.render.bundle import file_sections
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import parse_spec
from tests.unit.test_merge import CINDER_CEPH, CINDER_LVM, DEFAULT, FSID, read_oslo

# kolla-ansible / OpenStack-Ansible style: backups to NFS, local qcow2 guest disks.
CINDER_NFS_BACKUP = """\
[DEFAULT]
enabled_backends = lvm
backup_driver = cinder.backup.drivers.nfs.NFSBackupDriver
backup_share = 10.0.0.5:/srv/backups
[lvm]
volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver
"""
NOVA_QCOW2 = """\
[DEFAULT]
compute_driver = libvirt.LibvirtDriver
[libvirt]
virt_type = kvm
images_type = qcow2
"""


def _refused(tmp_path, name: str, text: str, service: str, spec=DEFAULT) -> CephstackError:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CephstackError) as e:
        merge_file(path, file_sections(spec, FSID, service), service)
    assert path.read_text() == text  # nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no backup either
    return e.value


def test_a_non_ceph_backup_driver_is_kept_and_the_merge_refused(tmp_path):
    error = _refused(tmp_path, "cinder.conf", CINDER_NFS_BACKUP, "cinder")
    assert "backup_driver is cinder.backup.drivers.nfs.NFSBackupDriver" in error.message
    assert "could no longer be restored" in error.message
    assert "services.cinder-backup.replace_existing: true" in error.hint
    allowed = parse_spec(DEFAULT_SPEC.replace("{user: cinder-backup, pool: backups}",
                                              "{user: cinder-backup, pool: backups, "
                                              "replace_existing: true}"))
    path = tmp_path / "cinder.conf"
    merge_file(path, file_sections(allowed, FSID, "cinder"), "cinder")
    conf = read_oslo(path, {"DEFAULT": ["backup_driver", "backup_share"]})
    assert conf.backup_driver == "cinder.backup.drivers.ceph.CephBackupDriver"


def test_a_qcow2_images_type_is_kept_and_the_merge_refused(tmp_path):
    error = _refused(tmp_path, "nova.conf", NOVA_QCOW2, "nova")
    assert "[libvirt] images_type is qcow2" in error.message
    assert "services.nova.replace_existing: true" in error.hint


def test_the_adopt_hint_for_an_existing_backend_keeps_the_computes_secret(tmp_path):
    error = _refused(tmp_path, "cinder.conf", CINDER_CEPH, "cinder")
    assert "backends: {volume: {section: ceph, volume_backend_name: ceph}}" in error.hint
    assert "services.cinder-volume.secret_uuid: 457eb676-33da-42ec-9a8c-9293d545c337" \
        in error.hint


def test_the_file_from_before_cephstack_is_kept_once(tmp_path):
    # The documented controller-then-backup installs into one cinder.conf: two merges.
    path = tmp_path / "cinder.conf"
    path.write_text(CINDER_LVM)
    backend_only = parse_spec(DEFAULT_SPEC.replace(
        "  cinder-backup: {user: cinder-backup, pool: backups}\n", ""))
    merge_file(path, file_sections(backend_only, FSID, "cinder"), "cinder")
    first = path.read_text()
    merge_file(path, file_sections(DEFAULT, FSID, "cinder"), "cinder")
    assert (tmp_path / f"cinder.conf{ORIGINAL_SUFFIX}").read_text() == CINDER_LVM
    assert (tmp_path / f"cinder.conf{BACKUP_SUFFIX}").read_text() == first
