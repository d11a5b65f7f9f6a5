"""Every rendered file of a layout, and the sections cephstack owns in a service's file.

plain: per-host-role bundles mirroring the host's filesystem (render/plain.py).
kolla: /etc/kolla/config as kolla-ansible reads it, and a globals.yml fragment
       (render/kolla.py).
Both end with RENDERED.json, the list of files rendered, so the next run knows which files
on disk are its own and have become obsolete (a renamed user, a removed service).
"""

from __future__ import annotations

import json

from cephstack import FORMAT_VERSION
from cephstack.errors import CephstackError
from cephstack.render.ini import Section
from cephstack.render.kolla import kolla
from cephstack.render.model import ClusterFacts, RenderedFile, with_ms_mode
from cephstack.render.plain import plain
from cephstack.render.roles import choose, role_sections
from cephstack.spec.load import Spec

FORMATS = ("plain", "kolla")
INDEX = "RENDERED.json"


def index_text(fmt: str, paths: list[str]) -> str:
    return json.dumps({"format_version": FORMAT_VERSION, "format": fmt, "files": sorted(paths)},
                      indent=2) + "\n"


def indexed_paths(text: str) -> list[str]:
    """The files an earlier render listed in its RENDERED.json (nothing if unreadable)."""
    try:
        files = json.loads(text).get("files", [])
    except (ValueError, AttributeError):
        return []
    # Only plain relative paths inside the render directory: the index is data on disk.
    return [p for p in files if isinstance(p, str) and p and not p.startswith("/")
            and ".." not in p.split("/")]


def render(spec: Spec, facts: dict[str, ClusterFacts] | ClusterFacts,
           fmt: str = "plain") -> list[RenderedFile]:
    """Every file of the layout `fmt`, in a stable order, the index last. `facts`: each
    cluster's, by name (a fleet of one may give its own alone)."""
    if fmt not in FORMATS:
        raise CephstackError(f"unknown format {fmt!r}", hint=f"one of: {', '.join(FORMATS)}")
    if isinstance(facts, ClusterFacts):
        facts = {spec.cluster_name: facts}
    facts = with_ms_mode(spec, facts)
    files = plain(spec, facts) if fmt == "plain" else kolla(spec, facts)
    return files + [RenderedFile(INDEX, index_text(fmt, [f.path for f in files]))]


def file_sections(spec: Spec, fsid: str, service_file: str) -> list[Section]:
    """The sections cephstack owns in a one-cluster spec's glance-api.conf ("glance"),
    cinder.conf ("cinder": volumes and backups) or nova.conf ("nova"), for --merge-into."""
    chosen = choose(spec, None, service_file)
    return role_sections(spec, chosen, {spec.cluster_name: fsid})
