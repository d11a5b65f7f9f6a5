"""Users on a cephx key type the cluster itself calls insecure, for audit (a finding) and
plan (a note), and the key type plan shows for each user. Pure: the judgement is the
cluster's (its monitor map and its AUTH_INSECURE_CLIENT_KEY_TYPE health check, in
state.auth), never assumed from a release: on Pacific and Reef, where aes is the only
type, nothing is reported."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cephstack.plan.keytypes import INSECURE_CHECK, key_type_name
from cephstack.plan.opinions import ERROR, WARNING, Finding
from cephstack.plan.state import ClusterState

# Client libraries that read aes256k keys (the CVE-2025-30156 fix), as the issue's
# release notes give them; Reef's 18.2.7 does not (measured: its monitor cannot parse one).
AES256K_CLIENTS = "librados/librbd of Tentacle 20.2.4 or Squid 19.2.6 and later"


def key_types(state: ClusterState, entities: Iterable[str]) -> dict[str, str]:
    """Each existing user's key type ("aes", "aes256k", ...), from its key's header."""
    return {e: key_type_name(state.clients[e].key.reveal())
            for e in entities if e in state.clients}


def insecure_key_findings(state: ClusterState, entities: Iterable[str],
                          services: Mapping[str, str] | None = None) -> list[Finding]:
    """A finding for each of `entities` (OpenStack users; `services`: entity -> the
    service it serves) whose key is of a type the cluster calls insecure, or does not
    accept at all."""
    auth, found = state.auth, []
    for entity, kind in sorted(key_types(state, entities).items()):
        if not auth.insecure(kind):
            continue
        service = f" ({services[entity]})" if services and entity in services else ""
        user = entity.removeprefix("client.")
        accepted = kind in auth.allowed
        why = (f"which the cluster flags ({INSECURE_CHECK})" if auth.insecure_flagged
               else "which the cluster's monitors do not accept" if not accepted
               else "which the cluster no longer prefers")
        found.append(Finding(
            "insecure-key-type", WARNING if accepted else ERROR, entity,
            f"the key of {entity}{service} is {kind}, {why}; the cluster ({auth.release}) "
            f"gives new keys {auth.preferred}",
            "CVE-2025-30156: cephx authentication with an aes key can be bypassed"
            if accepted else "the service cannot connect: the monitors refuse its key type",
            f"upgrade every host holding the key to {AES256K_CLIENTS}, then "
            f"`cephstack rotate {user}` (a new {auth.preferred} key), install the bundles "
            "again and restart the service"))
    return found


def key_notes(state: ClusterState, entities: Iterable[str]) -> list[str]:
    """Plan's notes: the spec's users on a key type the cluster calls insecure."""
    return [f"{f.entity}: audit will call this {'an error' if f.severity == ERROR else 'a warning'}"
            f" ({f.id}): {f.what}; {f.breaks}; fix: {f.fix}"
            for f in insecure_key_findings(state, entities)]
