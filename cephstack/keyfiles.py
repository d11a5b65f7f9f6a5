"""Keys: a masked key type, keyring text, and what a keyring file holds, read the way Ceph
reads it (the last section for an entity wins). Files themselves: safefiles.py."""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cephstack.errors import CephstackError
from cephstack.safefiles import (  # re-exported: the writer of key files is imported from here
    account_facts,
    directory_problem,
    lstat_mode,
    open_dir,
    read_regular_file,
    remove_stale_temps,
    resolve_owner,
    set_file_access,
    write_atomic,
)

__all__ = ["FileState", "Secret", "account_facts", "directory_problem", "keyring_dir_problem",
           "keyring_key", "keyring_text", "read_keyring_file", "read_keyring_files",
           "read_regular_file",
           "resolve_owner", "set_file_access", "write_atomic"]


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


def _entity_keys(text: str, entity: str) -> tuple[list[str], int]:
    """Every key line of `entity`, in file order, and how many sections it has."""
    keys: list[str] = []
    sections = 0
    current = None
    for line in text.splitlines():
        if m := _SECTION.match(line):
            current = m.group("entity").strip()
            sections += current == entity
        elif current == entity and (m := _KEY.match(line)):
            keys.append(m.group("key"))
    return keys, sections


def keyring_key(text: str, entity: str) -> Secret | None:
    """The key Ceph uses for `entity` in a keyring file's text, or None. Ceph merges the
    sections of one entity and the last `key` wins, so this is the last one."""
    keys, _ = _entity_keys(text, entity)
    return Secret(keys[-1]) if keys else None


@dataclass(frozen=True)
class FileState:
    """What is on disk at a path that should hold a keyring."""

    path: str
    exists: bool
    key: Secret | None = None  # the key Ceph would use (the last one for the entity)
    mode: int | None = None
    owner: str | None = None
    group: str | None = None
    several_sections: bool = False  # more than one section or key line for the entity
    dir_mode: int | None = None  # lstat st_mode of its directory (type bits too); None: missing


def keyring_dir_problem(directory: str, dir_mode: int | None) -> str | None:
    """The refusal for a keyring directory, with its fix, or None."""
    problem = directory_problem(dir_mode)
    if problem is None:
        return None
    fix = (f"chmod go-w {directory}" if dir_mode is not None and stat.S_ISDIR(dir_mode)
           else "point keyrings.directory at a real directory")
    return f"keyring directory {directory} {problem}; fix: {fix}"


def read_keyring_file(path: str, entity: str) -> FileState:
    """What is at `path` for `entity`, read as Ceph reads it. A link, FIFO or device there
    is a CephstackError naming it. Stale temp files of this keyring are removed."""
    return read_keyring_files({entity: path})[entity]


def read_keyring_files(paths: dict[str, str]) -> dict[str, FileState]:
    """read_keyring_file for each entity -> path, each directory looked at once: its mode
    read and its stale temp files (of every keyring in it) removed in one listing, not one
    per keyring (a directory of 1,000 keyrings would otherwise be listed 1,000 times)."""
    dir_modes: dict[str, int | None] = {}
    for path in paths.values():
        directory = os.path.dirname(path)
        if directory not in dir_modes:
            dir_modes[directory] = _clean_directory(Path(directory))
    return {entity: _read_keyring(path, entity, dir_modes[os.path.dirname(path)])
            for entity, path in paths.items()}


def _clean_directory(directory: Path) -> int | None:
    """The directory's lstat mode (None: missing), after removing stale temp files of the
    keyrings in it (a cleanup only: the reads report what matters)."""
    dir_mode = lstat_mode(directory)
    if dir_mode is not None and stat.S_ISDIR(dir_mode):
        try:
            dir_fd = open_dir(directory)
            try:
                remove_stale_temps(dir_fd, None)
            finally:
                os.close(dir_fd)
        except (OSError, CephstackError):
            pass
    return dir_mode


def _read_keyring(path: str, entity: str, dir_mode: int | None) -> FileState:
    found = read_regular_file(path, "keyring file")
    if found is None:
        return FileState(path, False, dir_mode=dir_mode)
    text, st = found
    keys, sections = _entity_keys(text, entity)
    return FileState(path, True, Secret(keys[-1]) if keys else None,
                     stat.S_IMODE(st.st_mode), _user_name(st.st_uid), _group_name(st.st_gid),
                     several_sections=sections > 1 or len(keys) > 1, dir_mode=dir_mode)


@lru_cache(maxsize=64)
def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@lru_cache(maxsize=64)
def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
