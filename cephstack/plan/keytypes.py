"""cephx key types: which one a key is (its header says), which the cluster gives new keys
and lets authenticate (its monitor map says), and which releases cephstack knows.

A key is base64 of a 12-byte header (u16 type, u32 seconds, u32 nanoseconds, u16 secret
length) and the secret. Measured (docs/releases.md): Pacific 16.2.15 and Reef 18.2.7 make
aes keys (type 1, 16 bytes) and their monitor map names no cipher; Tentacle 20.2.4 makes
aes256k (type 2, 32 bytes), its monitor map names `auth_preferred_cipher` and
`auth_allowed_ciphers`, and its health has AUTH_INSECURE_CLIENT_KEY_TYPE for client keys of
an insecure type (aes since CVE-2025-30156, or none).
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Mapping
from dataclasses import dataclass

HEADER = struct.Struct("<HIIH")  # type, created (sec, nsec), secret length
# min_mon_release of the releases cephstack knows: Pacific, Reef and Tentacle measured;
# Quincy and Squid, between them, read the same way (untested).
KNOWN_RELEASES = {16: "pacific", 17: "quincy", 18: "reef", 19: "squid", 20: "tentacle"}
INSECURE_CHECK = "AUTH_INSECURE_CLIENT_KEY_TYPE"


@dataclass(frozen=True)
class KeyType:
    name: str  # as the monitors name it ("aes", "aes256k")
    code: int  # CEPH_CRYPTO_*
    secret_bytes: int


AES = KeyType("aes", 1, 16)  # every release; insecure since CVE-2025-30156
AES256K = KeyType("aes256k", 2, 32)  # Tentacle 20.2.4 (and Squid 19.2.6) and later
KEY_TYPES = {t.code: t for t in (AES, AES256K)}


def key_type_name(key: str) -> str:
    """The type of an encoded key as the monitors name it: "aes", "aes256k", "none" (an
    empty key), "unknown (N)" or "invalid". Reads the header only, never the secret."""
    if not key:
        return "none"
    try:
        code = HEADER.unpack_from(base64.b64decode(key, validate=True))[0]
    except (binascii.Error, ValueError, struct.error):
        return "invalid"
    if code == 0:
        return "none"
    known = KEY_TYPES.get(code)
    return known.name if known else f"unknown ({code})"


@dataclass(frozen=True)
class AuthFacts:
    """What the monitors say about cephx keys. Empty (release "") when not observed."""

    release: str = ""  # min_mon_release_name: "pacific", "reef", "tentacle", ...
    preferred: str = ""  # the type new keys get ("aes" where the map names none)
    allowed: tuple[str, ...] = ()  # the types that may authenticate
    insecure_flagged: bool = False  # the cluster's own AUTH_INSECURE_CLIENT_KEY_TYPE is on

    def insecure(self, key_type: str) -> bool:
        """A client key of this type is one the cluster itself calls insecure (or one it
        would not let authenticate): a newer type is preferred."""
        return bool(self.release) and key_type != self.preferred and (
            self.insecure_flagged or key_type not in self.allowed)


class UnknownRelease(ValueError):
    """A monitor map cephstack cannot read with confidence (what is said in the message)."""


def auth_facts(monmap: Mapping, health_checks: Mapping | None = None) -> AuthFacts:
    """AuthFacts from `mon dump` (and `status`'s health checks). Raises UnknownRelease for a
    release or a preferred key type cephstack does not know: never a guess."""
    number = monmap.get("min_mon_release")
    name = str(monmap.get("min_mon_release_name", "?"))
    if not isinstance(number, int) or number not in KNOWN_RELEASES:
        raise UnknownRelease(
            f"the cluster runs Ceph release {name} (min_mon_release {number}), which this "
            f"cephstack does not know (it knows {', '.join(KNOWN_RELEASES.values())})")
    preferred = monmap.get("auth_preferred_cipher")
    if preferred is None:  # a release whose only type is aes
        return AuthFacts(name, AES.name, (AES.name,))
    code = preferred.get("value") if isinstance(preferred, Mapping) else None
    if KEY_TYPES.get(code) is None:
        raise UnknownRelease(f"the cluster ({name}) prefers cephx key type {preferred!r}, "
                             "which this cephstack cannot make")
    allowed = monmap.get("auth_allowed_ciphers")
    names = tuple(str(c.get("name")) for c in allowed if isinstance(c, Mapping)) \
        if isinstance(allowed, list) else (KEY_TYPES[code].name,)
    return AuthFacts(name, KEY_TYPES[code].name, names,
                     INSECURE_CHECK in (health_checks or {}))
