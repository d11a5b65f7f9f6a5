"""`status`'s view of insecure cephx keys in OpenStack terms: which service's user has a key
of a type the cluster calls insecure (Tentacle: aes, with its AUTH_INSECURE_CLIENT_KEY_TYPE
health check), and which hosts use that key now, from the monitors' sessions (with whether
their Ceph client can use aes256k, cephstack.ceph.sessions). Pacific and Reef have one key
type: nothing is reported there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cephstack.ceph.cephx import key_type_name
from cephstack.ceph.sessions import ClientSession, client_sessions, holders
from cephstack.errors import CephCommandError
from cephstack.plan.state import ClusterState

if TYPE_CHECKING:  # statusviews imports this module: never librados for views
    from cephstack.ceph.adapter import CephConnection

AUTH_INSECURE = "AUTH_INSECURE_"  # the prefix of the cluster's own checks (Tentacle 20.2.4:)
CLIENT_KEY_TYPE = "AUTH_INSECURE_CLIENT_KEY_TYPE"  # client entities with an insecure key
KEYS_ALLOWED = "AUTH_INSECURE_KEYS_ALLOWED"  # auth_allowed_ciphers holds an insecure type
KEYS_CREATABLE = "AUTH_INSECURE_KEYS_CREATABLE"  # mon_auth_allow_insecure_key is true


@dataclass(frozen=True)
class InsecureKey:
    service: str  # glance, cinder-volume, ...
    entity: str
    key_type: str  # aes, none
    preferred: str  # what the cluster prefers (aes256k)
    hosts: tuple[str, ...] | None  # "host (address)" using it now; None: not read
    old_hosts: tuple[str, ...] = ()  # ... of those, the ones that cannot use aes256k


def read_insecure_keys(conn: CephConnection, state: ClusterState,
                       services: Mapping[str, str]) -> tuple[InsecureKey, ...]:
    """services: kind -> entity. Reads the monitors' sessions only when a service's key is
    insecure (state.auth: what observe read of the key types)."""
    facts = state.auth
    found = [(kind, entity, key_type_name(state.clients[entity].key))
             for kind, entity in services.items() if entity in state.clients]
    found = [f for f in found if facts.insecure(f[2])]
    if not found:
        return ()
    sessions: Sequence[ClientSession] | None
    try:
        sessions = client_sessions(conn, state.monmap or None)
    except CephCommandError:
        sessions = None
    out = []
    for kind, entity, kind_of_key in found:
        held = None if sessions is None else holders(sessions, entity)
        out.append(InsecureKey(
            kind, entity, kind_of_key, facts.preferred,
            None if held is None else tuple(s.where() for s in held),
            () if held is None else tuple(s.where() for s in held if s.aes256k is False)))
    return tuple(out)


def insecure_checks(state: ClusterState) -> tuple[str, ...]:
    return tuple(c for c in (state.health.checks if state.health else ())
                 if c.startswith(AUTH_INSECURE))


def key_notes(keys: Sequence[InsecureKey], checks: Sequence[str]) -> list[str]:
    notes = []
    for k in keys:
        hosts = ("hosts using it now: not read (the monitors' sessions)" if k.hosts is None
                 else "no host uses it now" if not k.hosts
                 else f"hosts using it now: {', '.join(k.hosts)}")
        first = (f"; upgrade first (their Ceph client cannot use {k.preferred}): "
                 f"{', '.join(k.old_hosts)}" if k.old_hosts else "")
        notes.append(f"Insecure key: {k.service} ({k.entity}) has an {k.key_type} key, which "
                     f"the cluster calls insecure (it prefers {k.preferred}); {hosts}{first}; "
                     f"fix: cephstack rotate {k.service} --key-type {k.preferred} "
                     "(docs/rotation.md), then host install")
    waiting = (f" (after rotating {', '.join(k.service for k in keys)})" if keys else
               " (no OpenStack service's key is insecure)")
    for check in checks:
        if check == CLIENT_KEY_TYPE:
            if not keys:
                notes.append(f"Health: {check}: for no OpenStack service's user (another "
                             "client of the cluster: `ceph health detail`)")
        elif check == KEYS_ALLOWED:
            notes.append(f"Health: {check}: the monitors still let insecure keys "
                         f"authenticate; once no client uses one{waiting}: `ceph mon set "
                         "auth_allowed_ciphers aes256k`")
        elif check == KEYS_CREATABLE:
            notes.append(f"Health: {check}: insecure keys may still be made; `ceph config "
                         "set mon mon_auth_allow_insecure_key false`")
        else:
            notes.append(f"Health: {check} (`ceph health detail`)")
    return notes


def key_json(keys: Sequence[InsecureKey]) -> list[dict]:
    return [{"service": k.service, "user": k.entity, "key_type": k.key_type,
             "preferred": k.preferred, "hosts": None if k.hosts is None else list(k.hosts),
             "hosts_to_upgrade": list(k.old_hosts)} for k in keys]
