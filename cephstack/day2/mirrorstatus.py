"""status: the mirrored images of each mirrored pool, by mode, in OpenStack terms.

Journal mode is how Cinder replicates a volume (verify/journaldrill.py); snapshot mode is
what the snapshot schedule serves (Nova's or Glance's images mirrored by hand). Per pool
and cluster: the images by mode, whether this side is primary, rbd-mirror's state and, for
journal images replayed here, how many journal entries they are behind the primary.
"""

from __future__ import annotations

import json
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

MODES = {0: "journal", 1: "snapshot"}  # RBD_MIRROR_IMAGE_MODE_*
TERMS = {"journal": "Cinder replicated volumes (journal)",
         "snapshot": "snapshot-mirrored images (schedule)"}
_STATES = {0: "unknown", 1: "error", 2: "syncing", 3: "starting_replay", 4: "replaying",
           5: "stopping_replay", 6: "stopped"}


def entries_behind(description: str) -> int | None:
    """rbd-mirror's journal replay status ("replaying, {json}"): the entries the secondary
    has yet to replay; None when it is not replaying (yet)."""
    if not description.startswith("replaying, "):
        return None
    with suppress(ValueError):
        found = json.loads(description.removeprefix("replaying, "))
        if isinstance(found, dict) and "entries_behind_primary" in found:
            return int(found["entries_behind_primary"])
    return None


@dataclass(frozen=True)
class MirroredImage:
    name: str
    mode: str  # journal | snapshot
    primary: bool
    state: str  # rbd-mirror's state of the image on this cluster
    behind: int | None = None  # journal entries not yet replayed (here, or at the peers)


def _behind(status: dict) -> int | None:
    """Journal entries not yet replayed: here (a non-primary image's own replayer), or at
    the peers (a primary image: what the peers' replayers report back)."""
    found = [entries_behind(str(d.get("description", ""))) for d in
             (status, *status.get("remote_statuses", []))]
    known = [n for n in found if n is not None]
    return max(known) if known else None


def read_mirrored(conn: Any, pool: str) -> list[MirroredImage]:
    """The pool's mirrored images as this cluster sees them (two listings: modes, states)."""
    infos = {str(image_id): info for image_id, info in
             conn.rbd("mirror_image_info_list", pool)}
    out = []
    for s in conn.rbd("mirror_image_status_list", pool):
        info = infos.get(str(s.get("id")), {})
        mode = info.get("mode")
        out.append(MirroredImage(str(s.get("name", "")), MODES.get(mode, str(mode)),
                                 bool(info.get("primary", s.get("info", {}).get("primary"))),
                                 _STATES.get(s.get("state"), str(s.get("state"))),
                                 _behind(s)))
    return sorted(out, key=lambda i: i.name)


def read_mirroring(conn: Any, spec: Any, cluster: str) -> dict[tuple[str, str], list]:
    """(cluster, pool) -> its mirrored images, for the spec's mirrored pools on `cluster`
    (either side); a pool that cannot be listed is left out."""
    from cephstack.errors import CephCommandError

    m = spec.mirroring if spec is not None else None
    if m is None or cluster not in (m.primary, m.secondary):
        return {}
    out = {}
    for pool in m.pools:
        with suppress(CephCommandError):
            out[(cluster, pool)] = read_mirrored(conn, pool)
    return out


def summary_line(cluster: str, pool: str, images: list[MirroredImage]) -> str:
    if not images:
        return f"Mirrored: {cluster}/{pool}: no mirrored images"
    parts = []
    for mode, n in sorted(Counter(i.mode for i in images).items()):
        these = [i for i in images if i.mode == mode]
        primary = sum(i.primary for i in these)
        states = ", ".join(f"{k} {v}" for k, v in sorted(Counter(
            i.state for i in these if not i.primary).items()))
        part = f"{n} {TERMS.get(mode, mode)}: {primary} primary here"
        if states:
            part += f", {n - primary} replayed here ({states})"
        behind = [i.behind for i in these if i.behind is not None]
        if behind:
            part += f", at most {max(behind)} journal entries behind"
        parts.append(part)
    return f"Mirrored: {cluster}/{pool}: " + "; ".join(parts)


def mirrored_json(images: list[MirroredImage]) -> list[dict[str, Any]]:
    return [vars(i) | {"service_terms": TERMS.get(i.mode, i.mode)} for i in images]
