"""Rendered files on disk versus what rendering gives now (for `cephstack plan`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cephstack.errors import CephstackError
from cephstack.render.bundle import render
from cephstack.render.model import ClusterFacts, RenderedFile, mon_host_from_monmap
from cephstack.spec import Spec
from cephstack.state import ClusterState


@dataclass(frozen=True)
class RenderedOnDisk:
    path: str  # absolute
    wanted: RenderedFile
    on_disk: str


def facts_of(state: ClusterState) -> ClusterFacts:
    return ClusterFacts(state.fsid, mon_host_from_monmap(state.monmap),
                        {e: c.key for e, c in state.clients.items()})


def rendered_on_disk(spec: Spec, state: ClusterState) -> list[RenderedOnDisk] | None:
    """The spec's rendered files that exist on disk (files not rendered yet are not drift).
    None when they cannot be rendered yet: some user does not exist before apply."""
    if spec.render is None:
        return []
    try:
        files = render(spec, facts_of(state), spec.render.format)
    except CephstackError:
        return None
    out = []
    for f in files:
        path = Path(spec.render.directory) / f.path
        if path.is_file():
            out.append(RenderedOnDisk(str(path), f, path.read_text()))
    return out
