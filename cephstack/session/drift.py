"""Rendered files on disk versus what rendering gives now: missing, stale and obsolete
files (those an earlier render listed in RENDERED.json that are no longer rendered: a
renamed user's keyring, a removed service's bundle). One writer for render and apply.

For a fleet, rendering needs every cluster's fsid, monitors and keys: its files are
compared once all clusters are observed (rendered_plan), and written after they are
applied (write_rendered_files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cephstack.errors import CephstackError
from cephstack.plan.actions import RemoveRenderedFile, RewriteRenderedFile, _differences
from cephstack.plan.make import Plan
from cephstack.plan.state import ClusterState
from cephstack.render.bundle import INDEX, indexed_paths, render
from cephstack.render.model import ClusterFacts, RenderedFile, mon_host_from_monmap
from cephstack.safefiles import read_regular_file, write_atomic
from cephstack.spec.load import Spec


@dataclass(frozen=True)
class RenderedOnDisk:
    path: str  # absolute
    wanted: RenderedFile | None  # None: obsolete, to remove
    on_disk: str | None  # None: missing

    @property
    def in_sync(self) -> bool:
        return self.wanted is not None and not self.wanted.pending and \
            self.on_disk == self.wanted.text


def facts_of(state: ClusterState) -> ClusterFacts:
    return ClusterFacts(state.fsid, mon_host_from_monmap(state.monmap),
                        {e: c.key for e, c in state.clients.items()})


def read_rendered(path: Path) -> str | None:
    """A rendered file's text, None when missing. Never follows a link, never blocks on a
    FIFO: anything but a regular file where cephstack writes is an error that names it."""
    found = read_regular_file(str(path), "rendered file")
    return found[0] if found else None


def compare(root: Path, files: list[RenderedFile]) -> list[RenderedOnDisk]:
    wanted = {f.path for f in files}
    out = [RenderedOnDisk(str(root / f.path), f, read_rendered(root / f.path)) for f in files]
    for rel in indexed_paths(read_rendered(root / INDEX) or ""):
        if rel not in wanted and (text := read_rendered(root / rel)) is not None:
            out.append(RenderedOnDisk(str(root / rel), None, text))
    return out


def rendered_on_disk(spec: Spec, state: ClusterState) -> list[RenderedOnDisk]:
    """The spec's rendered files against the disk (files needing the key of a user that
    does not exist yet are pending: apply writes them once it has created the user)."""
    if spec.render is None:
        return []
    return compare(Path(spec.render.directory), render(spec, facts_of(state),
                                                       spec.render.format))


def rendered_plan(spec: Spec, states: dict[str, ClusterState | None]) -> Plan | None:
    """The rendered files to write or remove, from every cluster's state by name (None
    without render:, or when a cluster's state is missing: nothing can be rendered
    without it)."""
    if spec.render is None or any(s is None for s in states.values()):
        return None
    facts = {name: facts_of(state) for name, state in states.items()}
    files = render(spec, facts, spec.render.format)
    actions: list = []
    for item in compare(Path(spec.render.directory), files):
        if item.wanted is None:
            actions.append(RemoveRenderedFile(item))
        elif not item.in_sync:
            actions.append(RewriteRenderedFile(item, _differences(item.on_disk, item.wanted)))
    pending = spec.render.directory if any(
        getattr(a.item.wanted, "pending", None) for a in actions) else None
    return Plan(tuple(actions), render_after_apply=pending,
                render_directory=spec.render.directory)


def write_rendered_files(spec: Spec, plan: Plan) -> list[str]:
    """Write (or remove) what `plan` lists; every key they need must exist by now."""
    done = []
    for action in plan.actions:
        write_rendered(action.item, spec.render.directory)
        done.append(f"rendered: {action.symbol} {action.address}")
    return done


def write_rendered(item: RenderedOnDisk, root: str | None = None) -> None:
    """Bring one file in line: write it (atomically, with its mode) or remove it, then
    remove directories an obsolete file leaves empty, up to `root`."""
    if item.wanted is not None:
        if item.wanted.pending:
            raise CephstackError(f"{item.path} needs the key of {item.wanted.pending}, which "
                                 "does not exist", hint="cephstack apply creates it")
        write_atomic(item.path, item.wanted.text, item.wanted.mode)
        return
    path = Path(item.path)
    path.unlink(missing_ok=True)  # unlink never follows a link
    parent = path.parent
    while root and parent != Path(root) and Path(root) in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent
