"""Secrets: a masked key type, keyring text, and the one writer of files holding keys.

Files are written atomically (temp file in the same directory, fsync, rename) with the
asked mode and owner, so a reader never sees a half-written or world-readable keyring.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cephstack.errors import CephstackError


class Secret:
    """A cephx key. Prints as (sensitive); only reveal() gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "(sensitive)"

    __str__ = __repr__


def keyring_text(entity: str, key: Secret) -> str:
    return f"[{entity}]\n\tkey = {key.reveal()}\n"


_SECTION = re.compile(r"^\s*\[(?P<entity>[^\]]+)\]\s*$")
_KEY = re.compile(r"^\s*key\s*=\s*(?P<key>\S+)\s*$")


def keyring_key(text: str, entity: str) -> Secret | None:
    """The key of `entity` in a keyring file's text, or None."""
    current = None
    for line in text.splitlines():
        if m := _SECTION.match(line):
            current = m.group("entity")
        elif current == entity and (m := _KEY.match(line)):
            return Secret(m.group("key"))
    return None


@dataclass(frozen=True)
class FileState:
    """What is on disk at a path that should hold a keyring."""

    path: str
    exists: bool
    key: Secret | None = None
    mode: int | None = None
    owner: str | None = None
    group: str | None = None


def read_keyring_file(path: str, entity: str) -> FileState:
    try:
        st = os.stat(path)
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return FileState(path, False)
    except OSError as e:
        raise CephstackError(f"cannot read keyring file {path}: {e.strerror}") from None
    return FileState(path, True, keyring_key(text, entity), stat.S_IMODE(st.st_mode),
                     _user_name(st.st_uid), _group_name(st.st_gid))


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def resolve_owner(owner: str | None, group: str | None) -> tuple[int, int]:
    """Names -> (uid, gid); -1 leaves that part unchanged. Raises on unknown names."""
    try:
        uid = pwd.getpwnam(owner).pw_uid if owner else -1
    except KeyError:
        raise CephstackError(f"keyrings.owner: no such user {owner!r} on this host") from None
    try:
        gid = grp.getgrnam(group).gr_gid if group else -1
    except KeyError:
        raise CephstackError(f"keyrings.group: no such group {group!r} on this host") from None
    return uid, gid


def write_atomic(path: str, text: str, mode: int, owner: str | None = None,
                      group: str | None = None) -> None:
    """Atomically replace `path` with `text`, created with `mode` and the given owner.
    Every file cephstack writes goes through here; those holding keys get 0600/0640."""
    target = Path(path)
    uid, gid = resolve_owner(owner, group)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600: the key is never readable by others, even for a moment.
        os.fchmod(fd, mode)
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def set_file_access(path: str, mode: int, owner: str | None, group: str | None) -> None:
    uid, gid = resolve_owner(owner, group)
    if uid != -1 or gid != -1:
        os.chown(path, uid, gid)
    os.chmod(path, mode)
