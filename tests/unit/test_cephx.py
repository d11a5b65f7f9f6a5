"""cephx keys made by cephstack and the binary keyring `auth import` takes."""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess
import time

import pytest

from cephstack.ceph.cephx import key_problem, keyring_blob, new_key
from cephstack.keyfiles import Secret


def _header(key: str) -> tuple[int, int, int, int, bytes]:
    raw = base64.b64decode(key)
    kind, sec, nsec, length = struct.unpack_from("<HIIH", raw)
    return kind, sec, nsec, length, raw[12:]


def test_a_new_key_has_cephs_format():
    before = time.time()
    key = new_key().reveal()
    kind, sec, nsec, length, secret = _header(key)
    assert (kind, length, len(secret)) == (1, 16, 16)  # AES, a 16-byte secret
    assert int(before) <= sec <= time.time() and nsec < 10**9
    assert key_problem(key) is None
    assert len({new_key().reveal() for _ in range(100)}) == 100


@pytest.mark.skipif(not shutil.which("ceph-authtool"), reason="ceph-authtool not installed")
def test_a_new_key_looks_like_ceph_authtools():
    theirs = subprocess.run(["ceph-authtool", "--gen-print-key"], capture_output=True,
                            text=True, check=True).stdout.strip()
    mine = new_key().reveal()
    assert len(mine) == len(theirs) and mine[:2] == theirs[:2] == "AQ"
    assert _header(mine)[0::3][:2] == _header(theirs)[0::3][:2] == (1, 16)


@pytest.mark.parametrize("key, problem", [
    ("not base64!", "not base64"),
    ("AQAA", "shorter than a key's header"),
    (base64.b64encode(struct.pack("<HIIH", 1, 0, 0, 16) + b"x" * 8).decode(),
     "a 8-byte secret where its header says 16"),
])
def test_key_problems(key, problem):
    assert key_problem(key) == problem


def _decode(blob: bytes) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Ceph's KeyRing::decode (v1 map of EntityName -> EntityAuth v2), for the test."""
    pos = 0

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from(fmt, blob, pos)
        pos += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string() -> bytes:
        nonlocal pos
        n = take("<I")
        pos += n
        return blob[pos - n:pos]

    assert take("<B") == 1
    out = {}
    for _ in range(take("<I")):
        kind, name = take("<I"), string().decode()
        assert kind == 8  # client
        assert take("<B") == 2 and take("<Q") == 2**64 - 1
        start = pos
        take("<HIIH")
        pos += blob[pos - 2] | blob[pos - 1] << 8
        key = blob[start:pos]
        caps = {}
        for _ in range(take("<I")):
            daemon = string().decode()
            inner = string()
            assert struct.unpack_from("<I", inner)[0] == len(inner) - 4
            caps[daemon] = inner[4:].decode()
        out[f"client.{name}"] = (key, caps)
    assert pos == len(blob)
    return out


ODD_CAPS = {"mon": 'allow command "osd pool ls"', "osd": "allow r pool=x # y; z",
            "mgr": " allow r "}


def test_the_keyring_carries_keys_and_caps_exactly():
    a, b = new_key(), new_key()
    blob = keyring_blob([("client.a", a, {"mon": "profile rbd"}), ("client.b-c", b, ODD_CAPS)])
    decoded = _decode(blob)
    assert decoded["client.a"] == (base64.b64decode(a.reveal()), {"mon": "profile rbd"})
    assert decoded["client.b-c"] == (base64.b64decode(b.reveal()), ODD_CAPS)


@pytest.mark.skipif(not shutil.which("ceph-authtool"), reason="ceph-authtool not installed")
def test_ceph_authtool_reads_the_keyring(tmp_path):
    key = new_key()
    path = tmp_path / "import.keyring"
    path.write_bytes(keyring_blob([("client.odd", key, ODD_CAPS)]))
    listed = subprocess.run(["ceph-authtool", "-l", str(path)], capture_output=True,
                            text=True, check=True).stdout
    assert f"[client.odd]\n\tkey = {key.reveal()}\n" in listed
    for daemon, cap in ODD_CAPS.items():  # it prints them quoted, quotes escaped
        assert f'\tcaps {daemon} = "{cap.replace(chr(34), chr(92) + chr(34))}"' in listed


@pytest.mark.parametrize("entity", ["osd.0", "client.", "mon."])
def test_only_client_users_are_imported(entity):
    with pytest.raises(ValueError, match="not a client entity"):
        keyring_blob([(entity, new_key(), {"mon": "allow r"})])


def test_a_broken_key_is_never_imported():
    with pytest.raises(ValueError, match="the key of client.x is not base64"):
        keyring_blob([("client.x", Secret("(sensitive)"), {"mon": "allow r"})])
