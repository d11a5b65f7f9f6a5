"""Rendered files of a several-cluster spec (its `render:` directory) against the disk, as
plan shows drift for one cluster: rendering needs every cluster's fsid, monitors and keys,
so it is compared once all clusters are observed, and written after they are applied."""

from __future__ import annotations

from pathlib import Path

from cephstack.plan.actions import RemoveRenderedFile, RewriteRenderedFile, _differences
from cephstack.plan.make import Plan
from cephstack.spec.load import Spec


def rendered_plan(spec: Spec, states: dict) -> Plan | None:
    """The rendered files to write or remove (None without render:, or when a cluster's
    state is missing: nothing can be rendered without it)."""
    if spec.render is None or any(s is None for s in states.values()):
        return None
    from cephstack.render.drift import compare, facts_of
    from cephstack.render.multirender import render_clusters

    facts = {name: facts_of(state) for name, state in states.items()}
    files = render_clusters(spec, facts, spec.render.format)
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
    from cephstack.render.drift import write_rendered

    done = []
    for action in plan.actions:
        write_rendered(action.item, spec.render.directory)
        done.append(f"rendered: {action.symbol} {action.address}")
    return done
