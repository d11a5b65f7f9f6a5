"""audit: cephstack's own records read as claims (plan/prune.py checks them): a record the
facts do not bear out (edited to name Ceph's own users, a file outside the keyring
directory, a pool made again by hand) and records kept from before they were per spec
(never pruned until `cephstack records adopt`)."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from cephstack.plan.opinions import WARNING, Finding
from cephstack.plan.state import ClusterState
from cephstack.spec.load import Spec


def record_findings(conn: Any, spec: Spec | None, state: ClusterState) -> list[Finding]:
    """One config-key read; nothing without a spec (records are a spec's own)."""
    if spec is None:
        return []
    from cephstack.ceph.records import parse_created, read_created
    from cephstack.plan.prune import candidates
    from cephstack.spec.catalog import desired_clients

    keyring_dir = os.path.realpath(spec.keyrings.directory) if spec.keyrings.manage else ""
    created = parse_created(read_created(conn), spec.records_owner, keyring_dir=keyring_dir)
    found = candidates(spec, replace(state, created=created), desired_clients(spec))
    out = [Finding("record-not-believed", WARNING, "cephstack records", doubt,
                   "prune never acts on it: someone or something changed the record or "
                   "what it names", "check it with `cephstack records list`; remove a wrong "
                   "record with `ceph config-key rm cephstack/created/...`")
           for doubt in found.doubts]
    if old := created.others.get(""):
        out.append(Finding(
            "records-before-per-spec", WARNING, "cephstack records",
            f"{len(old)} record(s) from before records were kept per spec: {', '.join(old)}",
            "--prune never removes what they name, even once no spec declares it",
            f"if {spec.path} created them: `cephstack records adopt -f {spec.path}`"))
    return out
