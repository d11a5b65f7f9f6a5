"""Host-by-host migration to aes256k keys (CVE-2025-30156): which users a rotation may give
a key of the new type, from the hosts holding their keys as the monitors see them
(cephstack.ceph.sessions), and the modes of a rotation with pending keys. Pure.

Modes (docs/rotation.md): "now" replaces the keys at once (auth rotate or auth import);
"pending" stages a pending key per user (`auth get-or-create-pending`, Reef and later:
the old and the pending key both authenticate) and renders the files with it; "commit"
makes the pending keys the only ones (`auth commit-pending`), refused while a file still
holds another key or a host that cannot use the new type holds a session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from cephstack.ceph.cephx import AES256K, key_type_name
from cephstack.ceph.libversion import AES256K_ADVICE
from cephstack.ceph.sessions import ClientSession, holders
from cephstack.keyfiles import Secret
from cephstack.plan.keytypes import AuthFacts
from cephstack.plan.state import ClusterState

NOW, PENDING, COMMIT = "now", "pending", "commit"


def new_key_type(facts: AuthFacts, wanted: str | None) -> tuple[str, str | None]:
    """(the type the rotated keys get, why the cluster cannot make it or None)."""
    if wanted is None:
        return facts.preferred, None
    if wanted not in facts.allowed:
        return wanted, (f"the cluster ({facts.release or 'unknown release'}) does not allow "
                        f"{wanted} keys (allowed: {', '.join(facts.allowed) or 'none read'})"
                        + ("; aes256k needs monitors of Squid 19.2.6 or Tentacle 20.2.4 or "
                           "later" if wanted == AES256K.name else ""))
    return wanted, None


def session_checks(entities: Sequence[str], services: Mapping[str, str],
                   state: ClusterState, sessions: Sequence[ClientSession] | None,
                   key_type: str) -> tuple[list[str], list[str]]:
    """(refusals, notes) per user whose new key is aes256k while its current one is not:
    refused while a host holding a session as that user cannot use aes256k (its client is
    older than Squid by its features), naming those hosts; a note for hosts the features
    cannot tell about. `sessions` None: not read (a refusal: never guess)."""
    refusals: list[str] = []
    notes: list[str] = []
    if key_type != AES256K.name:
        return refusals, notes
    for entity in entities:
        client = state.clients.get(entity)
        if client is None or key_type_name(client.key) == key_type:
            continue
        who = f"{entity} ({services[entity]})" if entity in services else entity
        if sessions is None:
            refusals.append(f"{who}: the monitors' sessions could not be read, so the hosts "
                            "holding its key are unknown; nothing rotated")
            continue
        found = holders(sessions, entity)
        blocked = [s for s in found if s.aes256k is False]
        unsure = [s for s in found if s.aes256k is None]
        if blocked:
            refusals.append(
                f"{who}: {len(blocked)} host(s) using its key cannot use aes256k keys (their "
                "Ceph client is older than Squid, by the features of their sessions): "
                + ", ".join(f"{s.where()} [{s.release} features]" for s in blocked)
                + f"; upgrade these hosts first ({AES256K_ADVICE}), restart their OpenStack "
                "services, check with `cephstack host check BUNDLE`, then rotate again")
        if unsure:
            notes.append(f"{who}: {', '.join(s.where() for s in unsure)} connect(s) with "
                         "Squid-or-later features, which cannot tell Squid before 19.2.6 "
                         "(no aes256k) from later: `cephstack host check BUNDLE` there tells")
    return refusals, notes


def with_keys(state: ClusterState, keys: Mapping[str, Secret]) -> ClusterState:
    """`state` with these users' keys replaced (their pending keys, for rendering)."""
    clients = dict(state.clients)
    for entity, key in keys.items():
        if entity in clients:
            clients[entity] = replace(clients[entity], key=key)
    return replace(state, clients=clients)
