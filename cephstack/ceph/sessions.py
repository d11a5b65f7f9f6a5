"""The clients holding a session with the monitors: which user, from which host and address,
and of which Ceph release by the features their connection announced. The hosts that
hold a user's key and use it now, as Ceph itself sees them (`ceph tell mon.<id>
sessions`, every monitor asked: a client keeps its session with one of them).

Measured: a connection's feature release is the newest release whose feature bits it has.
Pacific 16.2.15's librados shows as "luminous" to a Pacific monitor and "reef" to a
Tentacle one (no later feature bits); Tentacle 20.2.4's as "squid". So a release older
than squid proves a client cannot use aes256k keys (Pacific's and Reef's librados cannot
parse them); "squid" or later cannot tell Squid before 19.2.6 (no aes256k) from 19.2.6,
Tentacle 20.2.4 and later (aes256k): `cephstack host check` on that host tells.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # views import this module: never librados for them
    from cephstack.ceph.adapter import CephConnection

# Feature releases in order (Ceph's ceph_release_t names), oldest first.
FEATURE_RELEASES = ("luminous", "mimic", "nautilus", "octopus", "pacific", "quincy", "reef",
                    "squid", "tentacle", "umbrella")
FIRST_MAYBE_AES256K = "squid"


@dataclass(frozen=True)
class ClientSession:
    entity: str  # client.glance
    address: str  # 10.0.0.5 (the client's IP: its port is 0 for clients)
    host: str  # the client's host name as the monitor resolved it ("" when none)
    release: str  # feature release of its connection ("reef": Reef or older)
    mon: str  # the monitor it holds its session with

    @property
    def aes256k(self) -> bool | None:
        """False: this client cannot use aes256k keys; None: its features cannot tell."""
        if self.release not in FEATURE_RELEASES:
            return None
        older = FEATURE_RELEASES.index(self.release) < \
            FEATURE_RELEASES.index(FIRST_MAYBE_AES256K)
        return False if older else None

    def where(self) -> str:
        return f"{self.host} ({self.address})" if self.host else self.address


def parse_sessions(mon: str, found: object) -> list[ClientSession]:
    """The client sessions of one monitor's `sessions` answer (daemons' own excluded)."""
    out = []
    for s in found if isinstance(found, list) else ():
        if not isinstance(s, Mapping) or s.get("con_type") != "client":
            continue
        entity = str(s.get("entity_name", ""))
        if not entity.startswith("client."):
            continue  # a manager's or daemon's own client
        addr = s.get("socket_addr") or {}
        address = str(addr.get("addr", "")) if isinstance(addr, Mapping) else str(addr)
        ip, _, port = address.rpartition(":")
        out.append(ClientSession(entity, ip if port == "0" and ip else address,
                                 str(s.get("remote_host") or ""),
                                 str(s.get("con_features_release", "")), mon))
    return out


def client_sessions(conn: CephConnection, monmap: Mapping | None = None
                    ) -> list[ClientSession]:
    """Every monitor's client sessions (asked at once)."""
    mons = [m["name"] for m in (monmap or conn.mon("mon dump") or {}).get("mons", [])]
    answers = conn.concurrently([lambda m=m: conn.mon("sessions", target=m) for m in mons])
    return [s for m, found in zip(mons, answers, strict=True)
            for s in parse_sessions(m, found)]


def holders(sessions: Iterable[ClientSession], entity: str) -> list[ClientSession]:
    """The sessions of `entity`, one per client (host, address)."""
    seen: dict[tuple[str, str, str], ClientSession] = {}
    for s in sessions:
        if s.entity == entity:
            seen.setdefault((s.host, s.address, s.release), s)
    return list(seen.values())
