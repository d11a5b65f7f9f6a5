"""Files as root, safely: nothing is opened through a link or as anything but a regular
file (a FIFO would block, a device or a link would redirect the write); files are written
atomically (temp file in the same directory, fsync, rename) with the asked mode and owner;
keys never go into a directory others may write (they could swap the file). Every file
cephstack writes goes through write_atomic.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import os
import pwd
import re
import secrets
import stat
import time
from pathlib import Path

from cephstack.errors import CephstackError

# -- what is at a path ------------------------------------------------------------

_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"),
          (stat.S_ISREG, "a regular file"))


def _kind(st_mode: int, path: str | None = None) -> str:
    for test, name in _KINDS:
        if test(st_mode):
            if name == "a symbolic link" and path is not None:
                try:
                    return f"{name} to {os.readlink(path)}"
                except OSError:
                    pass
            return name
    return "of an unknown file type"


def _not_regular(path: str, st_mode: int, what: str = "file") -> CephstackError:
    return CephstackError(f"{what} {path} is {_kind(st_mode, path)}, not a regular file: "
                          "cephstack reads and writes it only as a regular file, never "
                          "through a link", hint=f"remove {path} (cephstack then writes a regular "
                          "file there), or point the spec at another path")


def directory_problem(dir_mode: int | None) -> str | None:
    """Why a directory whose lstat mode is `dir_mode` must not hold keys, or None.
    Pure: the planner and the audit use it on observed modes."""
    if dir_mode is None:  # missing: cephstack creates it with a safe mode
        return None
    if not stat.S_ISDIR(dir_mode):
        return f"is {_kind(dir_mode)}, not a directory"
    if stat.S_IMODE(dir_mode) & 0o022:
        return (f"is writable by group or others (mode {stat.S_IMODE(dir_mode):04o}): "
                "another user could replace a keyring in it")
    return None


def lstat_mode(path: str | os.PathLike[str]) -> int | None:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return None


_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _open_regular(name: str, path: str, dir_fd: int | None = None, what: str = "file") -> int:
    """Open `name` read-only, refusing anything but a regular file. Checked before opening
    (opening a device can act on it) and after (the open never follows a link; O_NONBLOCK:
    a FIFO swapped in meanwhile does not block)."""
    before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISREG(before.st_mode):
        raise _not_regular(path, before.st_mode, what)
    try:
        fd = os.open(name, _OPEN_READ, dir_fd=dir_fd)
    except OSError:
        mode = lstat_mode(path)
        if mode is not None and not stat.S_ISREG(mode):
            raise _not_regular(path, mode, what) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _not_regular(path, st.st_mode, what)
    return fd


def open_dir(directory: Path, create_mode: int | None = None) -> int:
    """An fd of `directory`, which must be a directory and not a symbolic link. With
    `create_mode`, missing directories are created with exactly that mode whatever the
    umask, and each one created is entered without following links."""
    missing: list[str] = []
    existing = directory
    while not os.path.lexists(existing):
        if create_mode is None:
            raise CephstackError(f"directory {directory} does not exist")
        missing.append(existing.name)
        existing = existing.parent
    # Above the directories cephstack creates, links are the host's business (/var -> ...).
    fd = _enter(existing, None if missing else -1)
    try:
        for name in reversed(missing):
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
                created = True
            except FileExistsError:  # made meanwhile: entered as it is, checked below
                created = False
            sub = _enter(existing / name, fd)
            os.close(fd)
            fd = sub
            if created and create_mode is not None:
                os.fchmod(fd, create_mode)  # exactly this mode, whatever the umask
    except BaseException:
        os.close(fd)
        raise
    return fd


def _enter(path: Path, parent_fd: int | None) -> int:
    """Open a directory: `parent_fd` -1 opens `path` without following a link, another fd
    opens `path`'s last component in it without following a link, None follows links."""
    try:
        if parent_fd is None:
            return os.open(path, _DIR_FLAGS)
        if parent_fd == -1:
            return os.open(path, _DIR_FLAGS | os.O_NOFOLLOW)
        return os.open(path.name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError:
        mode = lstat_mode(path)
        if mode is None or stat.S_ISDIR(mode):
            raise  # not about what it is (permissions, ...): reported as it is
        raise CephstackError(f"directory {path} is {_kind(mode, str(path))}: cephstack "
                             "writes files only into real directories, never through a link",
                             hint="point the spec at the real directory") from None


# -- stale temp files -------------------------------------------------------------

_TEMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
_TEMP = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")
_FRESH_SECONDS = 60


def _temp_name(target: str) -> str:
    return f".{target}.{''.join(secrets.choice(_TEMP_CHARS) for _ in range(8))}.tmp"


def remove_stale_temps(dir_fd: int, target: str | None) -> None:
    """Remove temp files a killed writer left in the directory: those of `target` and of
    any keyring or key file (they hold keys; `target` None: only those). Only cephstack's
    exact temp names, only regular files, and never a live writer's: a writer locks its
    temp file before writing into it, so an unlocked one holding data is stale; an unlocked
    empty one may be a writer's that is about to lock it, and is left alone until it is a
    minute old."""
    for name in os.listdir(dir_fd):
        if not name.startswith("."):  # every temp name does: skip the rest cheaply
            continue
        m = _TEMP.match(name)
        if not m or (m.group("target") != target
                     and not m.group("target").endswith((".keyring", ".key"))):
            continue
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                continue
            fd = os.open(name, _OPEN_READ, dir_fd=dir_fd)
            try:
                now = os.fstat(fd)
                if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a running writer's
                now = os.fstat(fd)
                if now.st_size == 0 and time.time() - now.st_mtime < _FRESH_SECONDS:
                    continue
                os.unlink(name, dir_fd=dir_fd)
            finally:
                os.close(fd)
        except OSError:
            continue


# -- reading ----------------------------------------------------------------------

_MAX_BYTES = 1 << 20


def read_regular_file(path: str, what: str = "file",
                      limit: int = _MAX_BYTES) -> tuple[str, os.stat_result] | None:
    """The text and stat of the regular file at `path`, None when missing. A link, FIFO,
    device or directory there is a CephstackError naming it and what it is (checked before
    opening, and the open neither follows a link nor blocks); so is a file over `limit`."""
    try:
        fd = _open_regular(path, path, what=what)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CephstackError(f"cannot read {what} {path}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        # One read for a file that does not change while read (a keyring: ~70 bytes); a
        # read that fills the request may have more behind it.
        want = min(st.st_size, limit) + 1
        chunks = [os.read(fd, want)]
        size = len(chunks[0])
        while size == want and size <= limit and (chunk := os.read(fd, 65536)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise CephstackError(f"cannot read {what} {path}: {e.strerror}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise CephstackError(f"{what} {path} is larger than {limit} bytes: not what cephstack "
                             "keeps there", hint=f"remove {path} or point the spec elsewhere")
    return b"".join(chunks).decode("utf-8", "surrogateescape"), st


# -- owners -----------------------------------------------------------------------


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


def account_facts(owner: str | None, group: str | None) -> dict[str, bool]:
    """Whether the named accounts exist on this host: {"user NAME": bool, "group NAME": bool}
    for the names given (what the planner checks before anything is written)."""
    facts = {}
    for kind, name, lookup in (("user", owner, pwd.getpwnam), ("group", group, grp.getgrnam)):
        if name:
            try:
                lookup(name)
                facts[f"{kind} {name}"] = True
            except KeyError:
                facts[f"{kind} {name}"] = False
    return facts


# -- writing ----------------------------------------------------------------------


def write_atomic(path: str, text: str, mode: int, owner: str | None = None,
                 group: str | None = None, *, dir_mode: int = 0o750,
                 secret: bool | None = None, clean_temps: bool = True) -> None:
    """Atomically replace `path` with `text`, created with `mode` and the given owner.
    Every file cephstack writes goes through here; those holding keys get 0600/0640.

    Missing parent directories are created with `dir_mode` (whatever the umask). Refused:
    a parent directory that is a symbolic link, a target that exists and is not a regular
    file (a link included), and a `secret` file (default: one others may not read) in a
    directory writable by group or others. `clean_temps` False: the caller has just removed
    the directory's stale temp files (many files written into one directory)."""
    target = Path(path)
    secret = not mode & 0o004 if secret is None else secret
    uid, gid = resolve_owner(owner, group)
    try:
        dir_fd = open_dir(target.parent, dir_mode)
        try:
            _write_in(dir_fd, target, text, mode, uid, gid, secret, clean_temps)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise CephstackError(f"cannot write {path}: {e.strerror or e}") from None


def _check_target(dir_fd: int, target: Path) -> None:
    try:
        st = os.stat(target.name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(str(target), st.st_mode)


def _write_in(dir_fd: int, target: Path, text: str, mode: int, uid: int, gid: int,
              secret: bool, clean_temps: bool = True) -> None:
    if secret and (problem := directory_problem(os.fstat(dir_fd).st_mode)):
        raise CephstackError(f"refusing to write {target}: its directory {target.parent} "
                             f"{problem}", hint=f"chmod go-w {target.parent}")
    _check_target(dir_fd, target)
    if clean_temps:
        remove_stale_temps(dir_fd, target.name)
    for _ in range(100):
        tmp = _temp_name(target.name)
        try:
            # Created 0600: the key is never readable by others, even for a moment.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
            break
        except FileExistsError:
            continue
    else:
        raise CephstackError(f"cannot create a temp file next to {target}")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # before any data: a cleanup leaves it alone
        os.fchmod(fd, mode)
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        # surrogateescape: bytes that were not UTF-8 in a merged file go back unchanged.
        data = memoryview(text.encode("utf-8", "surrogateescape"))
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
        _check_target(dir_fd, target)
        os.rename(tmp, target.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    finally:
        os.close(fd)
    os.fsync(dir_fd)  # make the rename itself durable


def set_file_access(path: str, mode: int, owner: str | None, group: str | None) -> None:
    """Set the mode and owner of the regular file at `path` itself: a link, FIFO or device
    there is refused (fchmod/fchown on the opened file, never on a link's target)."""
    uid, gid = resolve_owner(owner, group)
    target = Path(path)
    try:
        dir_fd = open_dir(target.parent)
        try:
            fd = _open_regular(target.name, path, dir_fd=dir_fd, what="keyring file")
            try:
                if uid != -1 or gid != -1:
                    os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise CephstackError(f"cannot set the mode and owner of {path}: {e.strerror}") from None
