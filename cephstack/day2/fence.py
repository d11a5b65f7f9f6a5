"""Fencing a dead host: pure parts (targets, OpenStack names, what a fence would do, views).

A target is what `cephstack fence` and `unfence` take:
- a host address (`10.0.0.5`, `fe80::1`): every Ceph client on that host. Ceph's blocklist
  entry is `10.0.0.5:0/0`; the OSDs refuse any client whose IP it is (OSDMap::is_blocklisted
  looks up the exact instance, then the IP with port and nonce 0);
- one client instance as `rbd status` and lock listings show it, `IP:PORT/NONCE`
  (`10.0.0.5:0/3507576585`): that client alone (one QEMU, one cinder-volume process). On
  one machine every client is 127.0.0.1, so tests fence instances.

The facts come from status' bounded reads (cephstack.day2.status_read): the locks and
watchers of every image of the OpenStack pools, at most --max-images of them opened. Images
are named in OpenStack terms from the pool's service: in Nova pools `<uuid>_disk*` is
"instance <uuid> disk", in Cinder pools `volume-<id>` is "volume <id>", in the Glance pool
`<id>` is "image <id>".

cephstack.day2.fencing blocklists and breaks locks; commands/fence.py prints.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from cephstack.day2.status import STALE, LockStatus, Status, blocklisted, parse_blocklist

HOST, INSTANCE = "host", "instance"
_MAX_NONCE = 2**32 - 1


# -- targets ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """A host (every client on it) or one client instance (IP:PORT/NONCE)."""

    kind: str  # host | instance
    ip: str  # normalised: 10.0.0.5, ::1
    port: int = 0
    nonce: int = 0

    @property
    def address(self) -> str:
        """The blocklist entry, as `osd blocklist ls` prints it (host: port and nonce 0)."""
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}/{self.nonce}"

    @property
    def text(self) -> str:
        return self.ip if self.kind == HOST else self.address

    def describe(self) -> str:
        if self.kind == HOST:
            return f"host {self.ip}: every Ceph client on it"
        return f"client instance {self.address}"

    def matches(self, address: str) -> bool:
        """Whether a client address (a watcher's, a lock holder's) is cut off by this
        target: the same instance, or any client of the host."""
        other = split_address(address)
        if other is None or other[0] != self.ip:
            return False
        return self.kind == HOST or (other[1], other[2]) == (self.port, self.nonce)


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return None


def _network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def split_address(address: str) -> tuple[str, int, int] | None:
    """(ip, port, nonce) of `[v1:|v2:|any:]IP:PORT/NONCE` (IPv6 in brackets); None if it is
    not one."""
    text = re.sub(r"^(v1|v2|any):", "", address.strip())
    m = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[0-9.]+):(\d{1,5})/(\d{1,10})", text)
    if not m:
        return None
    ip, port, nonce = _ip(m.group(1)), int(m.group(2)), int(m.group(3))
    if ip is None or port > 65535 or nonce > _MAX_NONCE:
        return None
    return ip, port, nonce


def parse_target(text: str) -> Target:
    """A host address or a client instance; ValueError says what is wrong and what to give."""
    raw = text.strip()
    if not raw or not text.isprintable():
        raise ValueError(f"expected a host address or IP:PORT/NONCE, got {text!r}")
    ip = _ip(raw)
    if ip is not None:
        return Target(HOST, ip)
    parts = split_address(raw)
    if parts is not None:
        ip, port, nonce = parts
        if port == 0 and nonce == 0:  # Ceph's own way of writing a whole host
            return Target(HOST, ip)
        if nonce == 0:
            raise ValueError(f"{text!r}: a client instance has a nonce (IP:PORT/NONCE, as "
                             "`rbd status` shows its watchers); give the host address alone "
                             "to fence every client on it")
        return Target(INSTANCE, ip, port, nonce)
    if "*" in raw or raw.lower() in ("any", "all"):
        raise ValueError(f"{text!r}: wildcards are refused: fence takes one host or one "
                         "client instance, never a pattern")
    if "/" in raw and _network(raw):
        raise ValueError(f"{text!r} looks like a CIDR range: fence takes one host or one "
                         "client instance (ranges: `ceph osd blocklist range add`)")
    if re.fullmatch(r"[0-9.]+:\d+|\[[0-9A-Fa-f:.]+\]:\d+", raw):
        raise ValueError(f"{text!r}: no nonce; a client instance is IP:PORT/NONCE, as `rbd "
                         "status` shows it, and a host is its address alone")
    raise ValueError(f"{text!r} is not an IP address or IP:PORT/NONCE (host names are not "
                     "resolved: give the address the host's Ceph clients use)")


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `15m`, `2h`, `1d`, `1w`; ValueError if not positive."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text.lower())
    if not m:
        raise ValueError(f"expected a duration like 3600, 90s, 15m, 2h, 1d; got {text!r}")
    seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400,
                                   "w": 604800}[m.group(2)]
    if not (math.isfinite(seconds) and seconds >= 1):
        raise ValueError(f"a blocklist entry must last at least 1 s, got {text!r}")
    return seconds


def human_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# -- OpenStack names ----------------------------------------------------------------------

_NOVA = re.compile(r"(?P<id>[^_/@]+)_disk(?P<suffix>\.[A-Za-z0-9]+)?")
_VOLUME = re.compile(r"volume-(?P<id>[^./@]+)(?P<rest>\..*)?")


def openstack_name(image: str, services: tuple[str, ...], glance_pool: bool) -> str:
    """The image in OpenStack terms, from the services of its pool; "" when it is not one
    of their names."""
    if "nova" in services and (m := _NOVA.fullmatch(image)):
        return f"instance {m.group('id')} disk{m.group('suffix') or ''}"
    if {"cinder-volume", "cinder-backup"} & set(services) and (m := _VOLUME.fullmatch(image)):
        rest = m.group("rest") or ""
        if "cinder-backup" in services and rest == ".backup.base":
            return f"backups of volume {m.group('id')}"
        if "cinder-backup" in services and rest.startswith(".backup."):
            return f"backup {rest.removeprefix('.backup.')} of volume {m.group('id')}"
        if "cinder-volume" in services and rest == ".deleted":
            return f"volume {m.group('id')} (deleted, kept for its clones)"
        if "cinder-volume" in services and not rest:
            return f"volume {m.group('id')}"
    if glance_pool and re.fullmatch(r"[^/@_.]+", image):
        return f"image {image}"
    return ""


# -- what a fence touches -------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    """An image a target's clients hold: they watch it (have it open) or lock it."""

    pool: str
    image: str
    openstack: str  # "" when the name is not an OpenStack one
    services: tuple[str, ...]
    target: str  # Target.text
    watchers: tuple[str, ...]  # the target's addresses watching it
    locks: tuple[LockStatus, ...]  # the target's locks on it (state before the fence)

    @property
    def label(self) -> str:
        where = f"{self.pool}/{self.image}"
        return f"{self.openstack} ({where})" if self.openstack else where


@dataclass(frozen=True)
class Scanned:
    pool: str
    images: int | None  # None: not read (its PGs are not all active)
    opened: int
    note: str = ""

    @property
    def complete(self) -> bool:
        return self.images is not None and self.opened >= self.images


@dataclass(frozen=True)
class FencePlan:
    targets: tuple[Target, ...]
    hits: tuple[Hit, ...]
    scanned: tuple[Scanned, ...]
    blocklisted: dict[str, str]  # entry -> until, already in the blocklist before the fence
    covered: dict[str, str]  # target text -> the entry or range that already cuts it off
    images_opened: int
    max_images: int
    expire: float | None  # None: Ceph's default (mon_osd_blocklist_default_expire)
    forced: tuple[str, ...] = ()  # the daemons' addresses fenced anyway (--force), why

    @property
    def locks(self) -> tuple[tuple[Hit, LockStatus], ...]:
        return tuple((h, lk) for h in self.hits for lk in h.locks)


@dataclass
class LockOutcome:
    pool: str
    image: str
    entity: str
    cookie: str
    address: str
    freed: bool = False
    note: str = ""  # "already released" or Ceph's error


@dataclass
class FenceResult:
    """What --yes did: the entries added (with their expiry as the cluster reports it),
    each lock broken or why not, and the target addresses still watching an image."""

    blocklisted: dict[str, str] = field(default_factory=dict)  # entry -> until
    locks: list[LockOutcome] = field(default_factory=list)
    still_watching: list[tuple[str, str, str]] = field(default_factory=list)  # pool, image, addr

    @property
    def failed(self) -> list[LockOutcome]:
        return [o for o in self.locks if not o.freed and o.note != ALREADY_FREE]


ALREADY_FREE = "already released (its holder or librbd let go first)"


def blocklist_entries(out: Any) -> tuple[dict[str, str], tuple[str, ...]]:
    """({entry: until}, CIDR ranges) from `osd blocklist ls` (two JSON arrays back to back
    since 16.2.11; the mon adapter hands that over as text)."""
    first: Any = out
    if isinstance(out, str):
        try:
            first, _ = json.JSONDecoder().raw_decode(out.strip())
        except ValueError:
            first = []
    entries = {}
    for e in first if isinstance(first, list) else []:
        if isinstance(e, dict) and e.get("addr"):
            entries[_bare(str(e["addr"]))] = str(e.get("until", ""))
    return entries, parse_blocklist(out)[1]


def _bare(address: str) -> str:
    parts = split_address(address)
    if parts is None:
        return address.strip()
    ip, port, nonce = parts
    return Target(INSTANCE, ip, port, nonce).address


def cut_off_by(target: Target, entries: dict[str, str] | tuple[str, ...],
               ranges: tuple[str, ...]) -> str:
    """The blocklist entry or range that already cuts the target off ("" if none): its own
    entry, its host's, or a range holding its IP."""
    have = {_bare(e) for e in entries}
    host = Target(HOST, target.ip).address
    if target.address in have:
        return target.address
    if host in have:
        return host
    ip = ipaddress.ip_address(target.ip)
    for cidr in ranges:
        try:
            if ip in ipaddress.ip_network(cidr, strict=False):
                return cidr
        except ValueError:
            continue
    return ""


def own_targets(targets: tuple[Target, ...], own_address: str) -> list[Target]:
    """The targets that would cut off this very process's connection."""
    return [t for t in targets if own_address and t.matches(own_address)]


def plan_fence(targets: tuple[Target, ...], status: Status, blocklist: dict[str, str],
               ranges: tuple[str, ...] = (), expire: float | None = None,
               forced: tuple[str, ...] = ()) -> FencePlan:
    """What fencing `targets` does, from status' reads: the images their clients watch or
    lock, per target (an image held by two targets appears once for each)."""
    hits: list[Hit] = []
    for pool in status.pools:
        images = sorted({img for img, _ in pool.watched} | {lk.image for lk in pool.locks})
        for target in targets:
            for image in images:
                watchers = tuple(sorted({w for img, w in pool.watched
                                         if img == image and target.matches(w)}))
                locks = tuple(lk for lk in pool.locks
                              if lk.image == image and target.matches(lk.address))
                if watchers or locks:
                    hits.append(Hit(pool.name, image, openstack_name(
                        image, pool.services, pool.name == status.images_pool), pool.services,
                        target.text, watchers, locks))
    scanned = tuple(Scanned(p.name, p.images if p.read else None, p.scanned, p.note)
                    for p in status.pools)
    covered = {t.text: found for t in targets if (found := cut_off_by(t, blocklist, ranges))}
    return FencePlan(targets, tuple(hits), scanned,
                     {e: u for e, u in blocklist.items()
                      if any(e == t.address for t in targets)},
                     covered, status.images_opened, status.max_images, expire, forced)


# -- unfence ------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnfenceItem:
    target: Target
    until: str | None  # its entry's expiry; None: it has no entry
    still_cut_off_by: str  # after removal: the host entry or a range that still covers it
    instance_entries: tuple[str, ...]  # host target: entries of single clients, left alone


def plan_unfence(targets: tuple[Target, ...], blocklist: dict[str, str],
                 ranges: tuple[str, ...] = ()) -> tuple[UnfenceItem, ...]:
    items = []
    for t in targets:
        others = {e: u for e, u in blocklist.items() if e != t.address}
        still = cut_off_by(t, others, ranges) if t.kind == INSTANCE else cut_off_by(
            t, {}, ranges)
        singles = tuple(sorted(e for e in blocklist if e != t.address
                               and t.kind == HOST and t.matches(e)))
        items.append(UnfenceItem(t, blocklist.get(t.address), still, singles))
    return tuple(items)


# -- locks: a read-only view ------------------------------------------------------------------

@dataclass(frozen=True)
class HeldImage:
    pool: str
    image: str
    openstack: str
    locks: tuple[LockStatus, ...]
    watchers: tuple[tuple[str, bool], ...]  # (address, blocklisted)


def held_images(status: Status, blocklist: tuple[str, ...] = (),
                ranges: tuple[str, ...] = ()) -> tuple[HeldImage, ...]:
    """Every scanned image with a lock or a watcher, stale locks first."""
    out = []
    for pool in status.pools:
        for image in sorted({i for i, _ in pool.watched} | {lk.image for lk in pool.locks}):
            out.append(HeldImage(
                pool.name, image,
                openstack_name(image, pool.services, pool.name == status.images_pool),
                tuple(lk for lk in pool.locks if lk.image == image),
                tuple((w, blocklisted(w, blocklist, ranges)) for i, w in pool.watched
                      if i == image)))
    return tuple(sorted(out, key=lambda h: (not any(lk.state == STALE for lk in h.locks),
                                            h.pool, h.image)))


