"""cephx caps: parse, normalise, compare and render.

A cap string is a comma-separated list of grants ("allow rwx pool=images",
"profile rbd pool=vm"). Grants are OR'ed by Ceph, so order and whitespace carry no
meaning: a Caps value is a set of normalised grants per daemon type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from cephstack.errors import CapsSyntaxError

DAEMON_TYPES = ("mon", "osd", "mgr", "mds")

# What `profile rbd` grants covers: rwx on the pool plus class calls (osd), read (mon).
_RBD_PROFILE_COVERS = frozenset({"r", "w", "x", "class-read", "class-write"})
_READ_ONLY = frozenset({"r", "class-read"})


@dataclass(frozen=True, order=True)
class Grant:
    """One grant. `perms` holds the permission words of an allow grant, or the profile name."""

    kind: str  # "allow" | "profile"
    perms: tuple[str, ...]
    pool: str | None = None
    namespace: str | None = None
    other: tuple[str, ...] = ()  # remaining restrictions (object_prefix, tag, network, ...)

    @property
    def unparsed(self) -> bool:
        return self.kind == _UNPARSED

    def render(self) -> str:
        if self.unparsed:
            return self.perms[0]
        words = [self.kind, *self.perms]
        if self.pool is not None:
            words.append(f"pool={quoted(self.pool)}")
        if self.namespace is not None:
            words.append(f"namespace={quoted(self.namespace)}")
        words.extend(_rendered_word(w) for w in self.other)
        return " ".join(words)

    def _atoms(self) -> set[str]:
        """Permission words with "rwx" split into letters, so sets compare."""
        out: set[str] = set()
        for p in self.perms:
            out |= set(p) if self.kind == "allow" and re.fullmatch(r"[rwx]+", p) else {p}
        return out

    def covers(self, other: Grant) -> bool:
        """True when this grant allows everything `other` allows."""
        if self.unparsed or other.unparsed:  # what it allows is not known
            return self == other
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


def _rendered_word(word: str) -> str:
    """A word of a grant's restrictions as it parses back: `command "osd pool ls"`."""
    key, equals, value = word.partition("=")
    if equals and _BARE.fullmatch(key):
        return f"{key}={quoted(value)}"
    return word if re.fullmatch(r"[^\s,\"']+", word) else quoted(word)


_PERM_WORD = re.compile(r"^(\*|[rwx]+|class-read|class-write)$")
_SPACE = " \t\n\r\x0b\x0c"  # Ceph's grammar: ascii::space
_BARE = re.compile(r"[A-Za-z0-9_./-]+")  # Ceph's unquoted_word
_UNPARSED = "unparsed"  # a grant the cluster holds that this parser cannot read


def quoted(value: str) -> str:
    """`value` as Ceph's cap grammar takes it: bare when it is an unquoted word, else in
    double quotes, or single quotes when it holds a double one (Ceph has no escapes)."""
    if _BARE.fullmatch(value):
        return value
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    raise CapsSyntaxError(f"{value!r} holds both quote characters: no cap can name it")


def _scan(text: str) -> list[list[str]]:
    """The grants of a cap string, each as its words, the way Ceph reads them: grants split
    on commas, words on whitespace, and a quoted value ('...' or "...", at the start of a
    word or right after its "=") taken literally up to the same quote: a pool `q'uote` is
    `pool="q'uote"`, a comma or space inside quotes is part of the value. Backslashes are
    plain characters, as in Ceph."""
    grants: list[list[str]] = [[]]
    word: list[str] | None = None
    at = 0
    while at < len(text):
        ch = text[at]
        if ch in "\"'" and (word is None or word[-1:] == ["="]):
            end = text.find(ch, at + 1)
            if end < 0:
                raise CapsSyntaxError(f"cannot parse {text!r}: no closing quotation")
            word = (word or []) + [text[at + 1:end]]
            at = end + 1
            continue
        if ch in "\"'":
            raise CapsSyntaxError(f"cannot parse {text!r}: a quote inside a word (quote the "
                                  "whole value: pool=\"name\")")
        if ch in _SPACE or ch == ",":
            if word is not None:
                grants[-1].append("".join(word))
                word = None
            if ch == ",":
                grants.append([])
        else:
            word = (word or []) + [ch]
        at += 1
    if word is not None:
        grants[-1].append("".join(word))
    return grants


_SPACED_EQUALS = re.compile(r"\s*=\s*")
_LETTERS = re.compile(r"[rwx]+")


def _equals_joined(text: str) -> str:
    """"pool = images" and "pool=images" mean the same (outside quotes)."""
    if "'" not in text and '"' not in text:
        return _SPACED_EQUALS.sub("=", text)
    parts = re.split(r"(\"[^\"]*\"|'[^']*')", text)
    return "".join(p if i % 2 else _SPACED_EQUALS.sub("=", p) for i, p in enumerate(parts))


@cache
def parse_grant(text: str) -> Grant:
    """One grant, parsed. Cached for the process: a plan compares the same cap strings of
    every user several times (spec, compiled caps, the cluster's), and Grant is immutable."""
    found = _scan(_equals_joined(text.strip()))
    if len(found) != 1:
        raise CapsSyntaxError(f"{text!r} is several grants, not one")
    return _grant(text, found[0])


def _grant(text: str, words: list[str]) -> Grant:
    if len(words) < 2 or words[0] not in ("allow", "profile"):
        raise CapsSyntaxError(f"grant {text.strip()!r} must start with 'allow' or 'profile'")
    kind, rest = words[0], words[1:]
    perms: list[str] = []
    if kind == "profile":
        perms.append(rest.pop(0))
    pool = namespace = None
    other: list[str] = []
    while rest:
        word = rest.pop(0)
        if word in ("pool", "namespace") and rest:  # Ceph takes "pool images" too
            word = f"{word}={rest.pop(0)}"
        if word.startswith("pool="):
            pool = word.removeprefix("pool=")
        elif word.startswith("namespace="):
            namespace = word.removeprefix("namespace=")
        elif kind == "allow" and not other and _PERM_WORD.match(word):
            perms.append(word)  # before or after the pool: "allow pool images rwx" is old
        else:
            other.append(word)
    if kind == "allow" and not perms and not other:
        raise CapsSyntaxError(f"grant {text.strip()!r} names no permission")
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
    return frozenset(_grant(text, words) for words in _scan(_equals_joined(text)) if words)


def _lenient(text: str) -> frozenset[Grant]:
    """parse_cap for caps a cluster holds: a grant it cannot read is kept as an "unparsed"
    grant with its text (it covers nothing, audit names it) instead of failing the run."""
    try:
        return parse_cap(text)
    except CapsSyntaxError:
        pass
    out: set[Grant] = set()
    pieces, at = text.split(","), 0
    while at < len(pieces):
        # The shortest run of pieces that parses (a quoted value may hold a comma).
        for end in range(at + 1, len(pieces) + 1):
            try:
                out |= parse_cap(",".join(pieces[at:end]))
            except CapsSyntaxError:
                continue
            at = end
            break
        else:
            if pieces[at].strip():
                out.add(Grant(_UNPARSED, (pieces[at].strip(),)))
            at += 1
    return frozenset(out)


def render_cap(grants: frozenset[Grant]) -> str:
    return ", ".join(g.render() for g in sorted(grants))


@dataclass(frozen=True)
class Caps:
    """Caps of one cephx entity: daemon type -> set of grants."""

    grants: tuple[tuple[str, frozenset[Grant]], ...]

    @staticmethod
    def parse(caps: Mapping[str, str]) -> Caps:
        parsed = ((t, _lenient(v)) for t, v in caps.items())
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
