"""Where a host path lands under `--root`, without following links out of the root.

A link met on the way is read, not followed by the kernel: an absolute target is taken
inside the root (as the installed system will see it: an image's var/run -> /run is
ROOT/run), a relative one from where it is, and `..` never climbs above the root. A link
must lead to an existing directory inside the root, else the install is refused: a
dangling or escaping link under --root is not something to create directories behind.
The last component is never followed: callers check what it is (a link there is refused).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cephstack.errors import CephstackError
from cephstack.host.bundle import kind, show

_MAX_LINKS = 40  # as the kernel's ELOOP limit


@dataclass(frozen=True)
class OnHost:
    shown: Path  # ROOT + host path, as the operator reads it
    real: Path  # the same place with every link resolved inside the root
    mode: int | None  # lstat st_mode of `real`, None when missing


def open_root(root: Path) -> Path:
    """The root as a real path (the operator's own argument: a link there is theirs)."""
    real = Path(os.path.realpath(root))
    if not real.is_dir():
        raise CephstackError(f"--root {root} is not a directory",
                             hint="create it first, or give the directory to install under")
    return real


def locate(root: Path, host_path: str, shown_root: Path | None = None) -> OnHost:
    """`host_path` (absolute, normalised, checked by the manifest) under `root` (real);
    shown under `shown_root`, the root as the operator gave it."""
    shown = (shown_root or root) / host_path.lstrip("/")
    todo: list[tuple[str, str | None]] = [(p, None) for p in host_path.split("/") if p]
    current, links = root, 0
    while todo:
        name, via = todo.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            if current == root:
                if root != Path("/"):
                    raise CephstackError(f"the link {via} leads out of --root "
                                         f"{root}", hint="nothing was changed")
                continue
            current = current.parent
            continue
        candidate = current / name
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            dangling = next((v for n, v in [(name, via), *todo] if v), None)
            if dangling:
                raise CephstackError(f"the link {dangling} leads to "
                                     f"{show(candidate)}, which does not exist: cephstack "
                                     "follows a link only to an existing directory inside "
                                     "the root", hint="nothing was changed") from None
            rest = [n for n, _ in todo]
            return OnHost(shown, candidate.joinpath(*rest), None)
        except OSError as e:
            raise CephstackError(f"{show(shown)}: cannot look at {show(candidate)}: "
                                 f"{e.strerror}") from None
        if not todo:
            return OnHost(shown, candidate, st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise CephstackError("too many levels of symbolic links at "
                                     f"{show(candidate)}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = root
            via = f"{show(candidate)} (to {show(target)})"
            todo = [(p, via) for p in target.split("/")] + todo
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise CephstackError(f"{show(candidate)} is {kind(st.st_mode)}, not a "
                                 "directory", hint="nothing was changed")
        current = candidate
    return OnHost(shown, current, os.lstat(current).st_mode)
