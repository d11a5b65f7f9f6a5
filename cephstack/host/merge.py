"""Merge cephstack's sections into a service file on disk: nothing else changes, the file
keeps its owner, group and mode, the diff shows only changed lines. The file as it was
before cephstack first changed it stays as <file>.cephstack.orig (never overwritten), the
one before the latest merge as <file>.cephstack.bak."""

from __future__ import annotations

import difflib
import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from cephstack.errors import CephstackError
from cephstack.render.existing import merge_service_file
from cephstack.render.ini import Section
from cephstack.safefiles import read_regular_file, write_atomic

BACKUP_SUFFIX = ".cephstack.bak"  # the file before the latest merge
ORIGINAL_SUFFIX = ".cephstack.orig"  # the file before cephstack first changed it: kept once


@dataclass(frozen=True)
class MergeOutcome:
    path: str
    changed: bool
    diff: str  # changed lines only: context lines of a service file may hold passwords
    notes: tuple[str, ...]


def _name(lookup, ident: int) -> str | None:
    try:
        return lookup(ident)[0]
    except KeyError:
        return None


def merge_file(path: Path, sections: list[Section], service_file: str,
               dry_run: bool = False) -> MergeOutcome:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise CephstackError(f"{path} does not exist: is the service installed here?",
                             hint="cephstack merges into the service's own file") from None
    if stat.S_ISLNK(st.st_mode):
        raise CephstackError(f"{path} is a symbolic link (to {os.readlink(path)}): cephstack "
                             "does not write through links", hint="give the file itself")
    found = read_regular_file(str(path), "service file")  # no link, no FIFO
    before = found[0] if found else ""
    merged = merge_service_file(str(path), before, sections, service_file)
    diff = "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                        merged.text.splitlines(keepends=True),
                                        str(path), f"{path} (cephstack)", n=0))
    changed = merged.text != before
    if changed and not dry_run:
        mode = stat.S_IMODE(st.st_mode)
        owner, group = _name(pwd.getpwuid, st.st_uid), _name(grp.getgrgid, st.st_gid)
        if not os.path.lexists(str(path) + ORIGINAL_SUFFIX):
            write_atomic(str(path) + ORIGINAL_SUFFIX, before, mode, owner, group, secret=False)
        write_atomic(str(path) + BACKUP_SUFFIX, before, mode, owner, group, secret=False)
        write_atomic(str(path), merged.text, mode, owner, group, secret=False)
    return MergeOutcome(str(path), changed, diff, merged.notes)
