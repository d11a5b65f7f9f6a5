"""Whether a mirror peer still reaches the site it is named for.

A bootstrapped peer keeps the other cluster's monitor addresses and a key of its
bootstrap user (librbd stores them as the peer's attributes). When that cluster is rebuilt
or moved, or the user's key changes, the peer keeps its site name and direction, so a
check of names alone calls it converged while rbd-mirror cannot connect. Bootstrapping
again rewrites both sides' attributes in place (librbd reuses a peer of the same site).

Only what can be told is called stale: a peer without attributes (connected through the
daemon host's own conf files) or one naming its monitors by host name is left alone. The
keys are compared in memory and never shown.
"""

from __future__ import annotations

import errno as errnos
import re
from typing import Any

from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephCommandError

_ADDRESS = re.compile(r"\[(?P<ip6>[0-9A-Fa-f:.]+)\]:(?P<port6>\d+)"
                      r"|(?P<ip4>\d{1,3}(?:\.\d{1,3}){3})(?::(?P<port4>\d+))?")


def addresses(text: str) -> set[tuple[str, int | None]]:
    """(ip, port) in a mon_host value or an address vector ("[v2:10.0.0.1:3300/0,v1:...]",
    "10.0.0.1,10.0.0.2", "[v2:[::1]:3300/0]"); port None where none is given."""
    found: set[tuple[str, int | None]] = set()
    for m in _ADDRESS.finditer(text):
        if m.group("ip6"):
            found.add((m.group("ip6").lower(), int(m.group("port6"))))
        else:
            found.add((m.group("ip4"), int(m.group("port4")) if m.group("port4") else None))
    return found


def monitor_addresses(conn: CephConnection) -> set[tuple[str, int | None]]:
    """Every address the cluster's monitors listen on (its monmap)."""
    found: set[tuple[str, int | None]] = set()
    for mon in (conn.mon("mon dump") or {}).get("mons", []):
        for addr in mon.get("public_addrs", {}).get("addrvec", []):
            found |= addresses(addr.get("addr", ""))
    return found


def staleness(attributes: dict[str, str], monitors: set[tuple[str, int | None]],
              current_key: str | None, client: str, site: str) -> str | None:
    """Why a peer's attributes no longer reach `site` (None when they do, or when it cannot
    be told). `monitors`: the site's monitor addresses; `current_key`: the key `client`
    has there now (None: no such user)."""
    named = addresses(attributes.get("mon_host", ""))
    if named and monitors and not any(
            ip == m_ip and port in (None, m_port) for ip, port in named
            for m_ip, m_port in monitors):
        return f"its monitor addresses are not {site}'s"
    key = attributes.get("key")
    if key and current_key is None:
        return f"its user {client} does not exist on {site}"
    if key and key != current_key:
        return f"its key is not the one {client} has on {site}"
    return None


def _current_key(conn: CephConnection, client: str) -> str | None:
    try:
        return (conn.mon("auth get", entity=client) or [{}])[0].get("key")
    except CephCommandError as e:
        if e.errno != errnos.ENOENT:
            raise
        return None


def stale_reason(side: CephConnection, other: CephConnection, site: str, pool: str,
                 peer: dict[str, Any], reads: dict[tuple, Any]) -> str | None:
    """staleness() of `peer` (an entry of the pool's peer list on `side`), read from both
    clusters. `reads` keeps what was read of `site` (its monitors, its users' keys) for the
    other pools of the same check."""
    try:
        attributes = side.rbd("mirror_peer_get_attributes", pool, peer["uuid"])
    except CephCommandError as e:
        if e.errno == errnos.ENOENT:
            return None  # no attributes: the daemon connects through its host's conf
        raise
    client = peer.get("client_name") or ""
    if ("mons", site) not in reads:
        reads[("mons", site)] = monitor_addresses(other)
    if ("key", site, client) not in reads:
        reads[("key", site, client)] = _current_key(other, client)
    return staleness(dict(attributes), reads[("mons", site)], reads[("key", site, client)],
                     client, site)
