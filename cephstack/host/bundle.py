"""Reading a bundle as untrusted input (it travelled by scp, rsync, config management).

Every file is reached from the bundle's directory one component at a time, each opened
with O_NOFOLLOW: a link anywhere inside the bundle (its `etc/`, a keyring) is refused, so is
anything but a regular file (a FIFO would block, a device would act). Files are read once,
bounded in size; what is installed is what was checked. A directory or file of the bundle
that others than its owner may write is refused unless the operator says it is trusted.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

from cephstack.errors import BundleRefused

MAX_BYTES = 1 << 20  # a manifest is a few KiB, a keyring ~70 bytes
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"),
          (stat.S_ISREG, "a regular file"))
TRUST_FLAG = "--trust-bundle-permissions"


def kind(st_mode: int) -> str:
    return next((name for test, name in _KINDS if test(st_mode)), "of an unknown file type")


def has_control(text: str) -> bool:
    """Control characters (NUL, ESC, newline...) or lone surrogates: never in a name."""
    return any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 or 0xd800 <= ord(c) < 0xe000
               for c in text)


def show(path: object) -> str:
    """A path for a message: quoted when it holds a control character (from a link)."""
    text = str(path)
    return repr(text) if has_control(text) else text


def relative_path(value: object, where: str) -> str:
    """A bundle path from the manifest: relative, normalised, inside the bundle."""
    if not isinstance(value, str) or not value:
        raise BundleRefused(f"{where}: expected a path inside the bundle, got {value!r}")
    if has_control(value) or "\\" in value:
        raise BundleRefused(f"{where}: path {value!r} holds a control character or a "
                            "backslash")
    if value.startswith("/"):
        raise BundleRefused(f"{where}: path {value!r} is absolute: bundle paths are "
                            "relative to the bundle")
    if ".." in value.split("/") or posixpath.normpath(value) != value:
        raise BundleRefused(f"{where}: path {value!r} is not a normalised path inside the "
                            "bundle (no '..', '.', '//' or trailing '/')")
    return value


class Bundle:
    """An open bundle directory; `read` returns a file's text, checked as described above."""

    def __init__(self, directory: Path, trust_permissions: bool = False) -> None:
        self.directory = directory
        self.trust = trust_permissions
        try:
            self._fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise BundleRefused(f"bundle {directory}: cannot open it as a directory: "
                                f"{e.strerror}") from None
        try:
            self._writable_by_others(os.fstat(self._fd), "bundle directory", directory)
        except BaseException:
            os.close(self._fd)
            raise

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _writable_by_others(self, st: os.stat_result, what: str, path: Path) -> None:
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o022 and not self.trust:
            who = "group and others" if mode & 0o022 == 0o022 else \
                "its group" if mode & 0o020 else "others"
            raise BundleRefused(
                f"{what} {path} is writable by {who} (mode {mode:04o}): whoever can write it "
                "decides what root installs", hint=f"chmod go-w {path} (and check its "
                f"contents), or give {TRUST_FLAG} if the bundle comes from a trusted place")

    def read(self, rel: str, what: str) -> str:
        """The text of bundle file `rel` (already a relative_path)."""
        parts = rel.split("/")
        fd = os.dup(self._fd)
        at = self.directory
        try:
            for name in parts[:-1]:
                at = at / name
                st = self._lstat(fd, name, at, what)
                if not stat.S_ISDIR(st.st_mode):
                    raise BundleRefused(f"{what}: {at} is {self._kind(fd, name, st)}, not a "
                                        "directory: a bundle is read only through its own "
                                        "directories, never through a link")
                sub = self._open(fd, name, _DIR, at, what)
                os.close(fd)
                fd = sub
                self._writable_by_others(os.fstat(fd), "bundle directory", at)
            at = at / parts[-1]
            st = self._lstat(fd, parts[-1], at, what)
            if not stat.S_ISREG(st.st_mode):
                raise BundleRefused(f"{what}: {at} is {self._kind(fd, parts[-1], st)}, not a "
                                    "regular file: cephstack installs only regular files of "
                                    "the bundle, never through a link")
            return self._read_file(fd, parts[-1], at, what, st)
        finally:
            os.close(fd)

    def _read_file(self, dir_fd: int, name: str, path: Path, what: str,
                   before: os.stat_result) -> str:
        fd = self._open(dir_fd, name, _FILE, path, what)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != \
                    (before.st_dev, before.st_ino):
                raise BundleRefused(f"{what}: {path} changed while it was read")
            self._writable_by_others(st, "bundle file", path)
            if st.st_size > MAX_BYTES:
                raise BundleRefused(f"{what}: {path} is {st.st_size} bytes, more than the "
                                    f"{MAX_BYTES} a bundle file may hold")
            chunks, size = [], 0
            while size <= MAX_BYTES and (chunk := os.read(fd, 65536)):
                chunks.append(chunk)
                size += len(chunk)
        except OSError as e:
            raise BundleRefused(f"{what}: cannot read {path}: {e.strerror}") from None
        finally:
            os.close(fd)
        if size > MAX_BYTES:
            raise BundleRefused(f"{what}: {path} grew past {MAX_BYTES} bytes while read")
        try:
            return b"".join(chunks).decode("utf-8")
        except UnicodeDecodeError:
            raise BundleRefused(f"{what}: {path} is not UTF-8 text") from None

    @staticmethod
    def _lstat(dir_fd: int, name: str, path: Path, what: str) -> os.stat_result:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise BundleRefused(f"{what}: {path} is missing from the bundle",
                                hint="copy the whole bundle `cephstack render` wrote") from None
        except OSError as e:
            raise BundleRefused(f"{what}: cannot read {path}: {e.strerror}") from None

    @staticmethod
    def _open(dir_fd: int, name: str, flags: int, path: Path, what: str) -> int:
        try:
            return os.open(name, flags, dir_fd=dir_fd)
        except OSError as e:  # ELOOP: it became a link since the lstat
            raise BundleRefused(f"{what}: cannot open {path} (never through a link): "
                                f"{e.strerror}") from None

    @staticmethod
    def _kind(dir_fd: int, name: str, st: os.stat_result) -> str:
        if stat.S_ISLNK(st.st_mode):
            try:
                return f"a symbolic link (to {os.readlink(name, dir_fd=dir_fd)!r})"
            except OSError:
                pass
        return kind(st.st_mode)
