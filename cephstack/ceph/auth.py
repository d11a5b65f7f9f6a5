"""Key rotation in the cluster: the new keys in one monitor commit, and the rotation marker.

Pacific and Reef have no `auth rotate`: an `auth import` of a keyring holding every rotated
entity with its new key (of the type the cluster prefers) and its current caps replaces
all of their keys in one auth commit. A cluster that has `auth rotate` (Tentacle; Reef
18.2.7 has only the pending-key commands) lets its monitor make the key instead; it is
found in the monitor's own command table, never assumed from a version number.

The marker (`cephstack/rotate` in the monitors' config-key store) names the entities a
run is rotating with the creation stamp of each one's key before the rotation (the key's
header: when it was made, no secret). It is written before the keys change and removed
once every file holds the new keys, so a run killed anywhere leaves a record a re-run
reads: an entity whose key in the cluster still has the recorded stamp was not rotated
yet; one whose key has another stamp was, and only its files are left to rewrite.
"""

from __future__ import annotations

import base64
import errno
import json
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cephstack.ceph.adapter import CephConnection
from cephstack.ceph.cephx import (
    KEY_TYPES,
    KeyType,
    import_keyring_text,
    key_type_name,
    new_key,
    preferred_key_type,
)
from cephstack.errors import CephCommandError
from cephstack.keyfiles import Secret

MARKER = "cephstack/rotate"
AUTH_IMPORT, AUTH_ROTATE = "auth import", "auth rotate"
_STAMP = struct.Struct("<HII")  # key type, created seconds, created nanoseconds


def key_stamp(key: Secret) -> str:
    """When a key was made, from its header ("<seconds>.<nanoseconds>"): tells two keys of
    one entity apart without keeping any secret. "" for a value without a header."""
    try:
        raw = base64.b64decode(key.reveal(), validate=True)
        _, sec, nsec = _STAMP.unpack_from(raw)
    except (ValueError, struct.error):
        return ""
    return f"{sec}.{nsec:09d}"


@dataclass(frozen=True)
class Marker:
    """An unfinished rotation: entity -> the stamp of the key it had before."""

    entities: dict[str, str]
    started: float  # epoch seconds
    method: str

    def value(self) -> str:
        return json.dumps({"entities": self.entities, "started": self.started,
                           "method": self.method}, sort_keys=True)

    @classmethod
    def parse(cls, data: object) -> Marker | None:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                return None
        try:
            entities = {str(e): str(s) for e, s in dict(data["entities"]).items()}
            return cls(entities, float(data["started"]), str(data.get("method", AUTH_IMPORT)))
        except (TypeError, KeyError, ValueError):
            return None

    def rotated(self, entity: str, key: Secret | None) -> bool:
        """The cluster's `key` for `entity` is no longer the one recorded before."""
        return key is not None and entity in self.entities and \
            key_stamp(key) != self.entities[entity]


def read_marker(conn: CephConnection) -> Marker | None:
    try:
        found = conn.mon("config-key get", key=MARKER)
    except CephCommandError as e:
        if e.errno == errno.ENOENT:
            return None
        raise
    return Marker.parse(found)


def write_marker(conn: CephConnection, entities: Mapping[str, str], method: str) -> Marker:
    marker = Marker(dict(sorted(entities.items())), time.time(), method)
    conn.mon("config-key set", key=MARKER, val=marker.value())
    return marker


def clear_marker(conn: CephConnection) -> None:
    try:
        conn.mon("config-key rm", key=MARKER)
    except CephCommandError as e:
        if e.errno != errno.ENOENT:
            raise


def has_command(descriptions: object, prefix: str) -> bool:
    """Whether `get_command_descriptions` output lists a command of this prefix (its leading
    literal words, e.g. "auth rotate")."""
    if not isinstance(descriptions, dict):
        return False
    for cmd in descriptions.values():
        sig = cmd.get("sig", []) if isinstance(cmd, dict) else []
        words = []
        for part in sig:
            if not isinstance(part, str):
                break  # the arguments start here
            words.append(part)
        if " ".join(words) == prefix:
            return True
    return False


def rotate_method(conn: CephConnection) -> str:
    """`auth rotate` where the monitor has it, else `auth import` (one read, no commit)."""
    return AUTH_ROTATE if has_command(conn.mon("get_command_descriptions"), AUTH_ROTATE) \
        else AUTH_IMPORT


def cluster_key_type(conn: CephConnection) -> KeyType:
    """The key type the cluster gives new keys (its monitor map says; one read)."""
    return preferred_key_type(conn.mon("mon dump") or {})


def rotate_keys(conn: CephConnection, method: str,
                entities: Sequence[tuple[str, Secret, Mapping[str, str]]],
                key_type: str | None = None) -> None:
    """Give each (entity, new key, current caps) its new key: one `auth import` of them all
    (one auth commit, the keys made here; one not of the cluster's preferred type is made
    again of that type), or with `auth rotate` one command per entity, sent at once (the
    monitor makes the keys of its preferred type; the caller's are unused). The caller
    reads the keys back from the cluster."""
    if not entities:
        return
    if method == AUTH_ROTATE:
        extra = {"key_type": key_type} if key_type else {}
        conn.concurrently([lambda e=e: conn.mon(AUTH_ROTATE, entity=e, **extra)
                           for e, _, _ in entities])
        return
    kind = cluster_key_type(conn)
    if key_type and key_type != kind.name:  # the caller checked the cluster allows it
        kind = next(t for t in KEY_TYPES.values() if t.name == key_type)
    conn.import_keyring(import_keyring_text(
        (e, k if key_type_name(k) == kind.name else new_key(key_type=kind), c)
        for e, k, c in entities))


# Pending keys (Reef 18.2 and later; measured on 18.2.7 and 20.2.4): while a user has one,
# its current and its pending key both authenticate; `auth commit-pending` makes the
# pending one the only key. get-or-create-pending is idempotent (the same key again).
STAGE_PENDING, COMMIT_PENDING = "auth get-or-create-pending", "auth commit-pending"


def pending_keys(conn: CephConnection, entities: Sequence[str]) -> dict[str, Secret]:
    """The pending key of each entity that has one (`auth get` shows it; `auth ls` not)."""
    found = conn.concurrently([lambda e=e: conn.mon("auth get", entity=e)
                               for e in entities])
    out = {}
    for entity, answer in zip(entities, found, strict=True):
        key = (answer or [{}])[0].get("pending_key") if isinstance(answer, list) else None
        if key:
            out[entity] = Secret(key)
    return out


def stage_pending(conn: CephConnection, entities: Sequence[str]) -> None:
    conn.concurrently([lambda e=e: conn.mon(STAGE_PENDING, entity=e) for e in entities])


def commit_pending(conn: CephConnection, entities: Sequence[str]) -> None:
    conn.concurrently([lambda e=e: conn.mon(COMMIT_PENDING, entity=e) for e in entities])
