"""cephx keys made by cephstack and the text keyring `auth import` takes."""

from __future__ import annotations

import base64
import re
import shutil
import struct
import subprocess
import time

import pytest

from cephstack.ceph.cephx import (
    AES,
    AES256K,
    UnknownKeyType,
    import_keyring_text,
    key_problem,
    key_type_name,
    new_key,
    preferred_key_type,
    unreadable_key_hint,
)
from cephstack.keyfiles import Secret
from cephstack.plan.keytypes import AuthFacts, UnknownRelease, auth_facts


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


def test_an_aes256k_key_is_tentacles_format():
    kind, _, _, length, secret = _header(new_key(key_type=AES256K).reveal())
    assert (kind, length, len(secret)) == (2, 32, 32)  # as Tentacle 20.2.4's own keys


@pytest.mark.parametrize("key, name", [
    (lambda: new_key(), "aes"), (lambda: new_key(key_type=AES256K), "aes256k"),
    (lambda: "", "none"), (lambda: "AAAAAAAAAAAAAAAA", "none"),  # Ceph's empty key
    (lambda: base64.b64encode(struct.pack("<HIIH", 9, 0, 0, 4) + b"abcd").decode(),
     "unknown (9)"), (lambda: "not base64!", "invalid")])
def test_key_type_names(key, name):
    found = key()
    assert key_type_name(found if isinstance(found, str) else found) == name


# `mon dump` as Tentacle 20.2.4 prints it (fields that matter here), and Reef's: no cipher.
TENTACLE_MONMAP = {"min_mon_release": 20, "min_mon_release_name": "tentacle",
                   "auth_allowed_ciphers": [{"name": "aes256k", "value": 2}],
                   "auth_preferred_cipher": {"name": "aes256k", "value": 2}}
REEF_MONMAP = {"min_mon_release": 18, "min_mon_release_name": "reef"}


def test_the_cluster_says_which_key_type_new_users_get():
    assert preferred_key_type(TENTACLE_MONMAP) is AES256K
    assert preferred_key_type(REEF_MONMAP) is AES
    assert auth_facts(TENTACLE_MONMAP) == AuthFacts("tentacle", "aes256k", ("aes256k",))
    assert auth_facts(REEF_MONMAP) == AuthFacts("reef", "aes", ("aes",))


def test_insecure_key_types_are_the_clusters_word():
    upgraded = {**TENTACLE_MONMAP, "auth_allowed_ciphers": [
        {"name": "aes", "value": 1}, {"name": "aes256k", "value": 2}]}
    flagged = auth_facts(upgraded, {"AUTH_INSECURE_CLIENT_KEY_TYPE": {}})
    assert flagged.insecure("aes") and not flagged.insecure("aes256k")
    assert not auth_facts(upgraded, {}).insecure("aes")  # allowed, and not flagged
    assert auth_facts(TENTACLE_MONMAP).insecure("aes")  # it could not even authenticate
    assert not auth_facts(REEF_MONMAP).insecure("aes")  # Reef has no other type
    assert not AuthFacts().insecure("aes")  # not observed: no judgement


def test_a_key_type_cephstack_cannot_make_is_refused():
    future = {**TENTACLE_MONMAP, "auth_preferred_cipher": {"name": "aes512q", "value": 7}}
    with pytest.raises(UnknownKeyType, match=r"\(tentacle\) prefers cephx key type .*aes512q"):
        preferred_key_type(future)


@pytest.mark.parametrize("number, name", [(21, "umbrella"), (15, "octopus"), (None, "?")])
def test_a_release_cephstack_does_not_know_is_refused(number, name):
    monmap = {"min_mon_release": number, "min_mon_release_name": name}
    with pytest.raises(UnknownRelease, match=f"release {re.escape(name)} .* does not know"):
        auth_facts(monmap)


def _parse(text: str) -> dict[str, tuple[str, dict[str, str]]]:
    """The text keyring as Ceph's KeyRing::decode_plaintext reads it (quoted values,
    backslash escapes, spaces around a value trimmed), for the test."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    entity = ""
    for line in text.splitlines():
        if line.startswith("["):
            entity = line[1:-1]
            out[entity] = ("", {})
            continue
        name, _, value = line.strip().partition(" = ")
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1]).strip()
        if name == "key":
            out[entity] = (value, out[entity][1])
        else:
            out[entity][1][name.removeprefix("caps ")] = value
    return out


ODD_CAPS = {"mon": 'allow command "osd pool ls"', "osd": "allow r pool=x # y; z",
            "mgr": " allow r pool=a\\b "}


def test_the_keyring_carries_keys_and_caps():
    a, b = new_key(), new_key(key_type=AES256K)
    text = import_keyring_text([("client.a", a, {"mon": "profile rbd"}),
                                ("client.b-c", b, ODD_CAPS)]).decode()
    parsed = _parse(text)
    assert parsed["client.a"] == (a.reveal(), {"mon": "profile rbd"})
    # Spaces around a cap carry no meaning, and the format trims them: sent without.
    assert parsed["client.b-c"] == (b.reveal(), {d: c.strip() for d, c in ODD_CAPS.items()})
    assert re.search(r"[^\\][#;]", text) is None  # a bare # or ; would end the value


@pytest.mark.skipif(not shutil.which("ceph-authtool"), reason="ceph-authtool not installed")
def test_ceph_authtool_reads_the_keyring(tmp_path):
    key = new_key(key_type=AES)  # the host's own ceph-authtool: Pacific reads aes only
    path = tmp_path / "import.keyring"
    path.write_bytes(import_keyring_text([("client.odd", key, ODD_CAPS)]))
    listed = subprocess.run(["ceph-authtool", "-l", str(path)], capture_output=True,
                            text=True, check=True).stdout
    assert f"[client.odd]\n\tkey = {key.reveal()}\n" in listed
    for daemon, cap in ODD_CAPS.items():  # it prints them quoted, quotes escaped
        cap = cap.strip().replace("\\\\", "\\")
        assert f'\tcaps {daemon} = "{cap.replace(chr(34), chr(92) + chr(34))}"' in listed


@pytest.mark.parametrize("entity", ["osd.0", "client.", "mon.", "client.a]b"])
def test_only_client_users_are_imported(entity):
    with pytest.raises(ValueError, match="not a client entity|cannot carry"):
        import_keyring_text([(entity, new_key(), {"mon": "allow r"})])


def test_a_broken_key_or_a_line_break_is_never_imported():
    with pytest.raises(ValueError, match="the key of client.x is not base64"):
        import_keyring_text([("client.x", Secret("(sensitive)"), {"mon": "allow r"})])
    with pytest.raises(ValueError, match="the osd caps of client.x hold a line break"):
        import_keyring_text([("client.x", new_key(), {"osd": "allow r\n[client.admin]"})])


def test_a_key_type_the_local_librados_cannot_read_is_named(tmp_path):
    path = tmp_path / "ceph.client.admin.keyring"
    key = new_key(key_type=AES256K).reveal()
    path.write_text(f"[client.admin]\n\tkey = {key}\n")
    hint = unreadable_key_hint(str(path), "client.admin")
    assert hint is not None and "client.admin" in hint and "is aes256k" in hint
    assert key not in hint
    path.write_text(f"[client.admin]\n\tkey = {new_key().reveal()}\n")
    assert unreadable_key_hint(str(path), "client.admin") is None  # aes: another cause
    assert unreadable_key_hint(str(tmp_path / "missing"), "client.admin") is None
