"""cephx keys and keyrings as the monitors take them, built here so that any number of new
users, and caps changes of existing ones, reach the cluster in one `auth import`: one
monitor commit, where `auth get-or-create` per user costs one commit each.

A key is what `ceph-authtool --gen-print-key` prints: base64 of a 12-byte header (u16 type
1 = AES, u32 seconds, u32 nanoseconds of its creation, u16 length 16) and 16 bytes from the
OS's random source. The keyring `auth import` takes is Ceph's binary KeyRing encoding
(what `ceph auth export` holds before it is printed): every cap string travels exactly as
written, where the text keyring format cuts a value at '#' or ';' and trims its spaces.
"""

from __future__ import annotations

import base64
import secrets
import struct
import time
from collections.abc import Iterable, Mapping

from cephstack.keyfiles import Secret

_CRYPTO_AES = 1  # CEPH_CRYPTO_AES
_SECRET_BYTES = 16  # AES-128, as Ceph creates them
_HEADER = struct.Struct("<HIIH")  # type, created (sec, nsec), secret length
_ENTITY_TYPE_CLIENT = 8  # CEPH_ENTITY_TYPE_CLIENT
_AUID_DEFAULT = 2**64 - 1  # CEPH_AUTH_UID_DEFAULT: EntityAuth v2 still carries the old auid


def new_key(now_ns: int | None = None) -> Secret:
    """A new cephx key, in Ceph's format, its secret from the OS's random source."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    header = _HEADER.pack(_CRYPTO_AES, now_ns // 10**9, now_ns % 10**9, _SECRET_BYTES)
    return Secret(base64.b64encode(header + secrets.token_bytes(_SECRET_BYTES)).decode())


def key_problem(key: str) -> str | None:
    """Why `key` is not an encoded cephx key (header and secret of the length it gives),
    or None. An existing user's key is passed on as it is, whatever its type."""
    try:
        raw = base64.b64decode(key, validate=True)
    except ValueError:
        return "not base64"
    if len(raw) < _HEADER.size:
        return "shorter than a key's header"
    length = _HEADER.unpack_from(raw)[3]
    if length == 0 or len(raw) != _HEADER.size + length:
        return f"a {len(raw) - _HEADER.size}-byte secret where its header says {length}"
    return None


def _string(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data


def keyring_blob(entities: Iterable[tuple[str, Secret, Mapping[str, str]]]) -> bytes:
    """The binary keyring `auth import` decodes (KeyRing v1: a map of EntityName ->
    EntityAuth v2) for (entity, key, caps) of client users. The monitors replace an
    entity's key and caps with what is here: give an existing user its current key."""
    entries = list(entities)
    out = bytearray(b"\x01") + struct.pack("<I", len(entries))
    for entity, key, caps in entries:
        kind, dot, name = entity.partition(".")
        if kind != "client" or not dot or not name:
            raise ValueError(f"not a client entity: {entity!r}")
        problem = key_problem(key.reveal())
        if problem:
            raise ValueError(f"the key of {entity} is {problem}")
        out += struct.pack("<I", _ENTITY_TYPE_CLIENT) + _string(name.encode())
        out += b"\x02" + struct.pack("<Q", _AUID_DEFAULT) + base64.b64decode(key.reveal())
        out += struct.pack("<I", len(caps))
        for daemon, cap in sorted(caps.items()):
            # Each cap is a bufferlist holding an encoded string.
            out += _string(daemon.encode()) + _string(_string(cap.encode()))
    return bytes(out)
