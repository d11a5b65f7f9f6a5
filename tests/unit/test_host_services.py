"""host install on hosts that run part of a role (issue 19): a storage node with
cinder-volume alone installs the controller bundle's Cinder part only, and after a key
rotation only the services that read the rotated key are named to restart."""

from __future__ import annotations

import base64
import json
import os

import pytest

from cephstack.host.install import install_bundle
from tests.unit.test_host_hostile_bundle import place  # noqa: F401 - the fixture

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installs files owned by others")


def test_a_storage_node_with_cinder_volume_alone(place):  # noqa: F811
    root, bundle = place["root"], place["out"] / "controller"
    (root / "etc/glance/glance-api.conf").unlink()  # no Glance on this host
    (root / "etc/glance").rmdir()
    with pytest.raises(Exception) as refused:
        install_bundle(bundle, root, check=False)
    assert "glance-api.conf does not exist" in str(refused.value)
    assert "--service NAME" in str(refused.value)
    report = install_bundle(bundle, root, check=False, services=("cinder-volume",))
    installed = sorted(os.listdir(root / "etc/ceph"))
    assert installed == ["ceph.client.cinder-volume.keyring", "ceph.conf"]  # no glance key
    assert "rbd-volume" in (root / "etc/cinder/cinder.conf").read_text()
    assert report.restart == ["cinder-volume"]
    with pytest.raises(Exception) as e:
        install_bundle(bundle, root, check=False, services=("nova",))
    assert "serves cinder-volume, glance, not nova" in str(e.value)


def test_after_one_rotation_only_its_readers_restart(place):  # noqa: F811
    root, bundle = place["root"], place["out"] / "controller"
    first = install_bundle(bundle, root, check=False)
    assert first.restart == ["glance-api", "cinder-volume"]
    assert install_bundle(bundle, root, check=False).restart == []  # nothing changed
    new_key = base64.b64encode(b"the rotated key of glance, 32 by").decode()
    keyring = bundle / "etc/ceph/ceph.client.glance.keyring"
    keyring.write_text(keyring.read_text().replace(keyring.read_text().split("key = ")[1]
                                                   .split()[0], new_key))
    manifest = json.loads((bundle / "MANIFEST.json").read_text())
    manifest.pop("sha256", None)
    (bundle / "MANIFEST.json").write_text(json.dumps(manifest))
    assert install_bundle(bundle, root, check=False).restart == ["glance-api"]
