"""cephx caps: parse, normalise, compare and render.

A cap string is a comma-separated list of grants ("allow rwx pool=images",
"profile rbd pool=vm"). Grants are OR'ed by Ceph, so order and whitespace carry no
meaning: a Caps value is a set of normalised grants per daemon type.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

DAEMON_TYPES = ("mon", "osd", "mgr", "mds")

# What `profile rbd` grants covers: rwx on the pool plus class calls (osd), read (mon).
_RBD_PROFILE_COVERS = frozenset({"r", "w", "x", "class-read", "class-write"})
_READ_ONLY = frozenset({"r", "class-read"})


class CapsSyntaxError(ValueError):
    pass


@dataclass(frozen=True, order=True)
class Grant:
    """One grant. `perms` holds the permission words of an allow grant, or the profile name."""

    kind: str  # "allow" | "profile"
    perms: tuple[str, ...]
    pool: str | None = None
    namespace: str | None = None
    other: tuple[str, ...] = ()  # remaining restrictions (object_prefix, tag, network, ...)

    def render(self) -> str:
        words = [self.kind, *self.perms]
        if self.pool is not None:
            words.append(f"pool={self.pool}")
        if self.namespace is not None:
            words.append(f"namespace={self.namespace}")
        words.extend(self.other)
        return " ".join(words)

    def _atoms(self) -> set[str]:
        """Permission words with "rwx" split into letters, so sets compare."""
        out: set[str] = set()
        for p in self.perms:
            out |= set(p) if self.kind == "allow" and re.fullmatch(r"[rwx]+", p) else {p}
        return out

    def covers(self, other: Grant) -> bool:
        """True when this grant allows everything `other` allows."""
        if self.pool is not None and self.pool != other.pool:
            return False
        if self.namespace is not None and self.namespace != other.namespace:
            return False
        if self.other and self.other != other.other:
            return False
        mine, theirs = self._atoms(), other._atoms()
        if self.kind == "allow" and "*" in mine:
            return True
        if self.kind == other.kind == "allow":
            return theirs <= mine
        if self.kind == "profile" and mine == {"rbd"}:
            return (other.kind == "profile" and theirs <= {"rbd", "rbd-read-only"}) or (
                other.kind == "allow" and theirs <= _RBD_PROFILE_COVERS)
        if self.kind == "profile" and mine == {"rbd-read-only"}:
            return (other.kind == "profile" and theirs == mine) or (
                other.kind == "allow" and theirs <= _READ_ONLY)
        return self.kind == other.kind and mine == theirs


_PERM_WORD = re.compile(r"^(\*|[rwx]+|class-read|class-write)$")


def _split_grants(text: str) -> list[str]:
    """Split on commas that are not inside quotes."""
    parts, current, quote = [], [], None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


_SPACED_EQUALS = re.compile(r"\s*=\s*")
_LETTERS = re.compile(r"[rwx]+")
_NOT_PLAIN = re.compile(r"[\"'\\]|[^\S \t]")  # quotes, escapes, whitespace but space/tab


@cache
def parse_grant(text: str) -> Grant:
    """One grant, parsed. Cached for the process: a plan compares the same cap strings of
    every user several times (spec, compiled caps, the cluster's), and Grant is immutable."""
    # "pool = images" and "pool=images" mean the same.
    text = _SPACED_EQUALS.sub("=", text.strip())
    if not _NOT_PLAIN.search(text):
        words = text.split()  # what shlex.split gives for text without quotes or escapes
    else:
        try:
            words = shlex.split(text)
        except ValueError as e:
            raise CapsSyntaxError(f"cannot parse grant {text!r}: {e}") from None
    if len(words) < 2 or words[0] not in ("allow", "profile"):
        raise CapsSyntaxError(f"grant {text!r} must start with 'allow' or 'profile'")
    kind, rest = words[0], words[1:]
    perms: list[str] = []
    if kind == "profile":
        perms.append(rest.pop(0))
    else:
        while rest and _PERM_WORD.match(rest[0]):
            perms.append(rest.pop(0))
    pool = namespace = None
    other: list[str] = []
    for word in rest:
        if word.startswith("pool="):
            pool = word.removeprefix("pool=")
        elif word.startswith("namespace="):
            namespace = word.removeprefix("namespace=")
        else:
            other.append(word)
    if kind == "allow" and not perms and not other:
        raise CapsSyntaxError(f"grant {text!r} names no permission")
    # rwx and xwr are the same permission set: keep single letters sorted.
    normal = sorted({c for p in perms if _LETTERS.fullmatch(p) for c in p})
    words_perm = sorted(p for p in perms if not _LETTERS.fullmatch(p))
    perms_out = ("".join(normal),) if normal else ()
    return Grant(kind, perms_out + tuple(words_perm) if kind == "allow" else tuple(perms),
                 pool, namespace, tuple(other))


@cache
def parse_cap(text: str) -> frozenset[Grant]:
    """Parse one daemon type's cap string into a set of grants (cached, as parse_grant)."""
    if not text.strip():
        return frozenset()
    return frozenset(parse_grant(g) for g in _split_grants(text) if g)


def render_cap(grants: frozenset[Grant]) -> str:
    return ", ".join(g.render() for g in sorted(grants))


@dataclass(frozen=True)
class Caps:
    """Caps of one cephx entity: daemon type -> set of grants."""

    grants: tuple[tuple[str, frozenset[Grant]], ...]

    @staticmethod
    def parse(caps: Mapping[str, str]) -> Caps:
        parsed = ((t, parse_cap(v)) for t, v in caps.items())
        return Caps(tuple(sorted((t, g) for t, g in parsed if g)))

    def by_type(self) -> dict[str, frozenset[Grant]]:
        return dict(self.grants)

    def rendered(self) -> dict[str, str]:
        """Canonical text per daemon type, as sent to `auth caps`."""
        return {t: render_cap(g) for t, g in self.grants}

    def missing_from(self, new: Caps) -> list[str]:
        """Grants of self that `new` does not cover: access a switch to `new` would remove."""
        theirs = new.by_type()
        lost = []
        for daemon, grants in self.grants:
            for grant in sorted(grants):
                if not any(n.covers(grant) for n in theirs.get(daemon, ())):
                    lost.append(f"{daemon} '{grant.render()}'")
        return lost
