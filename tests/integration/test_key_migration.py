"""Host-by-host migration to aes256k keys (issue 23) on real sandboxes of each release: a
rotation to aes256k refused while a host whose Ceph client cannot use it (this host's
Pacific librados) holds a session as the user; pending keys staged, rendered into the
bundles (keyrings, libvirt secret values) and committed only once every file holds them;
`host check`; status's insecure keys; a Pacific admin host against a Tentacle cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from cephstack.ceph.adapter import CephConnection, ClusterAccess
from cephstack.ceph.cephx import key_type_name
from cephstack.ceph.libversion import local_version
from cephstack.errors import AuthFailed
from cephstack.sandbox.cluster import Sandbox
from cephstack.spec.defaults import DEFAULT_SPEC
from tests.integration.test_releases import PROJECT, ReleaseCluster, _ok, _skip_unless_available

HOST_READS_AES256K = bool(local_version() and local_version().aes256k)


@pytest.fixture(scope="module", params=("pacific", "reef", "tentacle"))
def applied(request, tmp_path_factory) -> Iterator[ReleaseCluster]:
    """A sandbox of the release with the seed spec applied and rendered (plain bundles)."""
    name = request.param
    _skip_unless_available(name)
    root = tmp_path_factory.mktemp(f"keys-{name}")
    box = Sandbox(root / "sandbox", release=name)
    try:
        box.up()
        c = ReleaseCluster(name, box, root)
        text = (DEFAULT_SPEC.replace("/etc/ceph/ceph.conf", str(box.conf))
                .replace("/etc/ceph/ceph.client.admin.keyring", str(box.admin_keyring))
                .replace("/var/openstack/ceph", str(root / "keys"))
                + f"render: {{directory: {root / 'out'}, format: plain}}\n")
        (root / "cephstack.yaml").write_text(text)
        _ok(c.cli("apply", "-f", str(root / "cephstack.yaml"), "--yes"))
        yield c
    finally:
        box.down()


def _auth(c: ReleaseCluster, entity: str) -> dict:
    return c.mon("auth get", entity=entity)[0]


def _secret_value(c: ReleaseCluster, entity: str) -> str:
    manifest = json.loads((c.workdir / "out/compute/MANIFEST.json").read_text())
    uuid = next(s["uuid"] for s in manifest["secrets"] if s["entity"] == entity)
    return (c.workdir / "out/compute/secrets" / f"{uuid}.key").read_text().strip()


def _rendered_key(c: ReleaseCluster, role: str, entity: str) -> str:
    text = (c.workdir / "out" / role / "etc/ceph" / f"ceph.{entity}.keyring").read_text()
    return next(line.split("=", 1)[1].strip() for line in text.splitlines()
                if line.strip().startswith("key"))


def _spec(c: ReleaseCluster) -> str:
    return str(c.workdir / "cephstack.yaml")


def test_pending_keys_are_staged_rendered_then_committed(applied):
    c = applied
    if c.name == "pacific":
        found = c.cli("rotate", "glance", "--pending", "-f", _spec(c), "--dry-run")
        assert "has no `auth get-or-create-pending`" in _ok(found, 1)
        return
    if c.name == "tentacle":  # a cluster upgraded with aes keys: glance and nova on aes
        c.mon("mon set", name="auth_allowed_ciphers", value="aes,aes256k")
        c.mon("config set", who="mon", name="mon_auth_allow_insecure_key", value="true")
        for entity in ("client.glance", "client.nova"):
            caps = _auth(c, entity)["caps"]
            c.mon("auth rm", entity=entity)
            c.mon("auth get-or-create", entity=entity, key_type="aes",
                  caps=[w for pair in sorted(caps.items()) for w in pair])
        _ok(c.cli("apply", "-f", _spec(c), "--yes"))  # files and bundles take the aes keys
    old = {e: _auth(c, e)["key"] for e in ("client.glance", "client.nova")}
    assert {key_type_name(k) for k in old.values()} == {"aes"}
    old_glance = (c.workdir / "keys/ceph.client.glance.keyring").read_text()

    # This host's librados (Pacific) holds a session as glance: no aes256k for glance.
    with CephConnection(ClusterAccess(str(c.box.conf), str(c.workdir / "keys/ceph.client."
                                                         "glance.keyring"), "client.glance")):
        found = c.cli("rotate", "glance", "nova", "--key-type", "aes256k", "-f", _spec(c),
                      "--dry-run")
        text = _ok(found, 1)
        if c.name == "reef":
            assert "does not allow aes256k keys" in text
        else:
            [refusal] = [line for line in text.splitlines() if line.startswith("Refused")]
            assert "client.glance (glance): 1 host(s) using its key cannot use aes256k" in \
                refusal and "127.0.0.1" in refusal and "upgrade these hosts first" in refusal
            status = json.loads(_ok(c.cli("status", "-f", _spec(c), "--output", "json")))
            by_service = {k["service"]: k for k in status["insecure_keys"]}
            assert set(by_service) == {"glance", "nova"}
            assert by_service["glance"]["hosts_to_upgrade"] and \
                by_service["nova"]["hosts"] == []
            assert "AUTH_INSECURE_CLIENT_KEY_TYPE" in status["auth_checks"]
    assert {e: _auth(c, e)["key"] for e in old} == old  # nothing changed

    _ok(c.cli("rotate", "glance", "nova", "--pending", "-f", _spec(c), "--yes"))
    pending = {e: _auth(c, e).get("pending_key") for e in old}
    assert {e: _auth(c, e)["key"] for e in old} == old  # not committed yet
    kind = "aes256k" if c.name == "tentacle" else "aes"
    assert {key_type_name(k) for k in pending.values()} == {kind}
    assert c.file_key("client.glance") == pending["client.glance"]
    assert _rendered_key(c, "controller", "client.glance") == pending["client.glance"]
    assert _secret_value(c, "client.nova") == pending["client.nova"]  # libvirt's value too

    # A file that lost its pending key (an apply in between): commit refused, nothing done.
    new_glance = (c.workdir / "keys/ceph.client.glance.keyring").read_text()
    (c.workdir / "keys/ceph.client.glance.keyring").write_text(old_glance)
    refused = _ok(c.cli("rotate", "glance", "nova", "--commit", "-f", _spec(c), "--yes"), 1)
    assert "do not hold the pending keys yet" in refused and "client.glance" in refused
    assert {e: _auth(c, e).get("pending_key") for e in old} == pending
    _ok(c.cli("rotate", "glance", "nova", "--pending", "-f", _spec(c), "--yes"))  # same keys
    assert (c.workdir / "keys/ceph.client.glance.keyring").read_text() == new_glance

    _ok(c.cli("rotate", "glance", "nova", "--commit", "-f", _spec(c), "--yes"))
    assert {e: _auth(c, e)["key"] for e in old} == pending
    assert not any(_auth(c, e).get("pending_key") for e in old)
    (c.workdir / "old.keyring").write_text(old_glance)
    with pytest.raises(AuthFailed):  # the old key is refused from now on
        CephConnection(ClusterAccess(str(c.box.conf), str(c.workdir / "old.keyring"),
                                     "client.glance", 5))
    assert "0 failed" in _ok(c.cli("verify", "-f", _spec(c), "--only", "glance"))
    if c.name == "tentacle":
        status = json.loads(_ok(c.cli("status", "-f", _spec(c), "--output", "json")))
        assert status["insecure_keys"] == []


def test_host_check_says_which_keys_this_host_can_use(applied):
    c = applied
    bundle = str(c.workdir / "out/controller")
    here = subprocess.run([sys.executable, "-m", "cephstack", "host", "check", bundle,
                           "--output", "json"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(PROJECT)})
    found = json.loads(here.stdout)
    assert found["key_support"]["aes256k"] is HOST_READS_AES256K
    types = {s["service"]: s["key_type"] for s in found["services"]}
    assert set(types) == {"glance", "cinder-volume"}
    unusable = not HOST_READS_AES256K and "aes256k" in types.values()
    assert here.returncode == (1 if unusable else 0), here.stderr
    if c.box.root is not None:  # the release's own librados, in its root
        text = _ok(c.cli("host", "check", bundle))
        reads = "yes" if c.name == "tentacle" else "NO"
        assert f"can use aes256k keys: {reads}" in text


def test_a_pacific_admin_host_against_aes256k_admin_keys_says_what_to_install(applied):
    c = applied
    if c.name != "tentacle" or HOST_READS_AES256K:
        pytest.skip("needs a Tentacle cluster and a host librados older than aes256k")
    found = subprocess.run([sys.executable, "-m", "cephstack", "status", "--conf",
                            str(c.box.conf), "--keyring", str(c.box.admin_keyring)],
                           capture_output=True, text=True, cwd=c.workdir,
                           env={**os.environ, "PYTHONPATH": str(PROJECT)})
    assert found.returncode == 4, found.stderr
    [error, hint] = found.stderr.strip().splitlines()[:2]
    assert error.startswith("error: this host's librados (Ceph 16.2") and \
        "cannot use the aes256k key of client.admin" in error
    assert "install librados2/python3-rados" in hint and "20.2.4" in hint
    assert found.stdout == ""
