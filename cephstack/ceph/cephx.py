"""cephx keys and keyrings as the monitors take them, built here so that any number of new
users, and caps changes of existing ones, reach the cluster in one `auth import`: one
monitor commit, where `auth get-or-create` per user costs one commit each (measured on
Pacific, Reef and Tentacle: 7 users, 1 commit against 7).

A key is what `ceph-authtool --gen-print-key` prints: base64 of a 12-byte header (u16
type, u32 seconds, u32 nanoseconds of its creation, u16 secret length) and the secret from
the OS's random source. Its type is the one the cluster prefers: the monitor map names it
(`auth_preferred_cipher`, Tentacle and later: aes256k, 32 bytes); a monitor map without it
is from a release whose only type is aes (16 bytes).

The keyring `auth import` takes is Ceph's documented text keyring format. Every release
accepts it (Reef and Tentacle refuse Pacific's binary KeyRing encoding); each cap value is
quoted with `\\`, `"`, `#` and `;` escaped, which it carries exactly, but for the spaces
around it, which the parser trims (and which carry no meaning in a cap).
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from cephstack.errors import AuthFailed, CephstackError
from cephstack.keyfiles import Secret
from cephstack.plan.keytypes import (  # re-exported: key types are used from here
    AES,
    AES256K,
    HEADER,
    KEY_TYPES,
    KeyType,
    UnknownRelease,
    auth_facts,
)
from cephstack.plan.keytypes import key_type_name as _key_type_name

__all__ = ["AES", "AES256K", "KEY_TYPES", "KeyType", "UnknownKeyType", "import_keyring_text",
           "key_problem", "key_type_name", "new_key", "preferred_key_type",
           "unreadable_key_failure", "unreadable_key_hint"]


class UnknownKeyType(CephstackError):
    kind = "plan-refused"


def new_key(now_ns: int | None = None, key_type: KeyType = AES) -> Secret:
    """A new cephx key of `key_type`, in Ceph's format, its secret from the OS's random
    source."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    header = HEADER.pack(key_type.code, now_ns // 10**9, now_ns % 10**9,
                         key_type.secret_bytes)
    return Secret(base64.b64encode(header + secrets.token_bytes(key_type.secret_bytes))
                  .decode())


def key_problem(key: str) -> str | None:
    """Why `key` is not an encoded cephx key (header and secret of the length it gives),
    or None. An existing user's key is passed on as it is, whatever its type."""
    try:
        raw = base64.b64decode(key, validate=True)
    except ValueError:
        return "not base64"
    if len(raw) < HEADER.size:
        return "shorter than a key's header"
    length = HEADER.unpack_from(raw)[3]
    if length == 0 or len(raw) != HEADER.size + length:
        return f"a {len(raw) - HEADER.size}-byte secret where its header says {length}"
    return None


def key_type_name(key: Secret | str) -> str:
    """The type of a key as the monitors name it ("aes", "aes256k", "none", ...)."""
    return _key_type_name(key.reveal() if isinstance(key, Secret) else key)


def preferred_key_type(monmap: Mapping) -> KeyType:
    """The key type new users get, from the monitor map (`mon dump`): its
    `auth_preferred_cipher`, or aes when it names none (a release that has no other)."""
    try:
        name = auth_facts(monmap).preferred
    except UnknownRelease as e:
        raise UnknownKeyType(f"{e}: no users created, nothing changed",
                             hint="upgrade cephstack (docs/releases.md lists the releases "
                             "it knows)") from None
    return next(t for t in KEY_TYPES.values() if t.name == name)


def _quoted(value: str) -> str:
    for char in "\\\"#;":
        value = value.replace(char, "\\" + char)
    return f'"{value}"'


def import_keyring_text(entities: Iterable[tuple[str, Secret, Mapping[str, str]]]) -> bytes:
    """The text keyring `auth import` takes for (entity, key, caps) of client users. The
    monitors replace an entity's key and caps with what is here: give an existing user its
    current key."""
    out = []
    for entity, key, caps in entities:
        kind, dot, name = entity.partition(".")
        if kind != "client" or not dot or not name:
            raise ValueError(f"not a client entity: {entity!r}")
        if any(c in entity for c in "[]\n\r\0 "):
            raise ValueError(f"a client name the keyring format cannot carry: {entity!r}")
        problem = key_problem(key.reveal())
        if problem:
            raise ValueError(f"the key of {entity} is {problem}")
        out.append(f"[{entity}]\n\tkey = {key.reveal()}\n")
        for daemon, cap in sorted(caps.items()):
            if any(c in cap for c in "\n\r\0"):
                raise ValueError(f"the {daemon} caps of {entity} hold a line break")
            out.append(f"\tcaps {daemon} = {_quoted(cap.strip())}\n")
    return "".join(out).encode()


def unreadable_key_hint(keyring_path: str | None, entity: str) -> str | None:
    """When librados failed to connect at once (EIO) with this keyring: if the key of
    `entity` in it is of a type an older librados cannot read (anything but aes: Pacific's
    and Reef's librados reject aes256k keys as "Malformed input"), what to say and do.
    None when the key is aes, missing or the file unreadable (another cause)."""
    if not keyring_path:
        return None
    kind = _key_type_in(keyring_path, entity)
    if kind in (None, AES.name, "invalid", "none"):
        return None
    return (f"the key of {entity} in {keyring_path} is {kind}, which this host's librados "
            "cannot read (Pacific's and Reef's cannot): install python3-rados of Tentacle "
            "20.2.4 or Squid 19.2.6 or later, or run cephstack where it is installed (a "
            "sandbox's release root: python -m cephstack.sandbox.release run RELEASE -- ...)")


def unreadable_key_failure(keyring_path: str | None, entity: str,
                           code: int | None) -> AuthFailed | None:
    """The error for a connection librados refused at once (EIO) because this host's
    librados cannot read the key's type (a Pacific or Reef admin host, an aes256k key of a
    Tentacle cluster): naming this host's release, the key type and what to install. None
    for any other cause (another errno, an aes key, a librados that reads the type)."""
    import errno

    from cephstack.ceph.libversion import AES256K_ADVICE, local_version

    if code != errno.EIO or unreadable_key_hint(keyring_path, entity) is None:
        return None
    kind = _key_type_in(keyring_path, entity)
    mine = local_version()
    if mine is not None and (kind != AES256K.name or mine.aes256k):
        return None  # this librados reads that type: the cause is elsewhere
    host = mine.label() if mine else "an unknown Ceph release"
    return AuthFailed(
        f"this host's librados ({host}) cannot use the {kind} key of {entity} in "
        f"{keyring_path}: {kind} keys are made by clusters of Squid 19.2.6 / Tentacle "
        "20.2.4 and later, whose clients need that release too; nothing was changed",
        hint=f"{AES256K_ADVICE} on this host, or run cephstack where it is installed (a "
        "release root: python -m cephstack.sandbox.release run tentacle -- ...)")


def _key_type_in(keyring_path: str | None, entity: str) -> str | None:
    try:
        text = Path(keyring_path or "").read_text()
    except OSError:
        return None
    section, kind = "", None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]").strip()
        elif section == entity and line.startswith("key") and "=" in line:
            kind = key_type_name(line.split("=", 1)[1].strip())
    return kind
