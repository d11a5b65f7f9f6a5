"""`cephstack rotate` for a spec with `clusters:` (commands/rotate.py hands such a spec here).

A user exists on every cluster that holds one of its pools, each with its own key: it is
rotated on each of those clusters (or those --cluster names), all at once (fleet.each),
each under that cluster's run lock and with that cluster's own marker (cephstack.ceph.auth),
as one-cluster rotate does (rotate.py's plan and file actions, on clusters.split's part:
keyring files named <cluster>.client.<user>.keyring). Order:
(1) on each cluster: the marker, the new keys, the cluster observed again, its keyring
    files rewritten;
(2) once: the spec's render: files from every cluster's state (rendering needs them all:
    bundles, libvirt secret values per (cluster, user));
(3) on each cluster: the marker removed, only once (2) is done. A run stopped anywhere, or
    one where a cluster failed, leaves the markers of the others, so the next run finishes
    them (files only) without rotating them twice.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cephstack.commands.common import settings_of
from cephstack.commands.multicommands import error_json, error_text, progress_printer
from cephstack.errors import EXIT_FAILED, CephstackError
from cephstack.session import fleet
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.spec.catalog import desired_clients
from cephstack.spec.fleet import split
from cephstack.spec.load import Spec


def resolve_targets(spec: Spec, parts: dict[str, Spec], names: Sequence[str],
                    every: bool) -> dict[str, tuple[str, ...]]:
    """cluster -> the entities to rotate there: the named services and users (or all with
    --all), on each cluster where the spec creates them. A name no cluster of the spec
    knows is bad input; so is a name none of the chosen clusters has."""
    from cephstack.day2.rotate import BadUsers, resolve_users

    known = {e: None for part in split(spec).values() for e in desired_clients(part)}
    wanted = resolve_users(spec, names, every, known=list(known))
    out = {c: tuple(e for e in desired_clients(part) if every or e in wanted)
           for c, part in parts.items()}
    missing = [] if every else [e for e in wanted if not any(e in t for t in out.values())]
    if missing:
        raise BadUsers(f"{', '.join(missing)}: on none of the clusters chosen "
                       f"({', '.join(parts)})", hint="choose its clusters with --cluster, "
                       "or leave --cluster out")
    return {c: t for c, t in out.items() if t}


@dataclass
class Rotation:
    """What rotate does across clusters: each cluster's plan and steps, the rendered files."""

    multi: Fleet
    chosen: dict[str, tuple[str, ...]]  # cluster -> entities to rotate there
    plans: dict[str, Any]  # cluster -> RotationPlan
    done: dict[str, list[str]]
    rendered: Any = None  # the render: files to rewrite (multidrift's Plan), or None
    rendered_done: list[str] | None = None
    render_directory: str | None = None
    rendered_note: str | None = None  # why they were not rewritten (a cluster failed)

    @property
    def refusals(self) -> list[str]:
        return [f"{c}: {r}" for c, p in self.plans.items() for r in p.refusals]

    @property
    def roles(self) -> tuple[str, ...]:
        """The bundles (top directories under render:) holding a rewritten file."""
        if self.rendered is None or not self.render_directory:
            return ()
        root = Path(self.render_directory)
        return tuple(sorted({Path(a.item.path).relative_to(root).parts[0]
                             for a in self.rendered.actions
                             if Path(a.item.path).is_relative_to(root)
                             and len(Path(a.item.path).relative_to(root).parts) > 1}))


def _rotatable(plan) -> list:
    """Rendered files as rotate writes them: not those waiting for a user that is missing."""
    return [a for a in plan.actions if not getattr(a.item.wanted, "pending", False)]


def plan_rendered(spec: Spec, rotation: Rotation, placeholders: bool) -> None:
    """The render: files every cluster's state (with placeholder keys for the users about
    to be rotated, when planning) renders differently from the disk; None if a cluster's
    state is missing (it could not be read)."""
    from cephstack.day2.rotate import placeholder_state
    from cephstack.render.multidrift import rendered_plan

    if spec.render is None:
        return
    states = {}
    for name, run in rotation.multi.runs.items():
        plan = rotation.plans.get(name)
        states[name] = (placeholder_state(run.state, plan.rotate)
                        if placeholders and plan is not None and run.state is not None
                        else run.state) if run.ok else None
    found = rendered_plan(spec, states)
    rotation.rendered = None if found is None else replace(found, actions=tuple(
        _rotatable(found)))


def prepare(args: argparse.Namespace, spec: Spec) -> Rotation:
    """Connect to every cluster (all of them when the spec renders: rendering needs each
    one's state; only the chosen are rotated), take the chosen ones' run locks (not for
    --dry-run) and plan each."""
    from cephstack import interrupt
    from cephstack.ceph.auth import read_marker, rotate_method
    from cephstack.commands.common import hold_lock, observe_for
    from cephstack.day2.multifence import chosen as chosen_parts
    from cephstack.day2.rotate import plan_rotation

    parts = chosen_parts(spec, args.only_clusters)
    chosen = resolve_targets(spec, parts, args.users, args.all)
    every = split(spec)
    reach = every if spec.render is not None else {n: every[n] for n in chosen}
    multi = Fleet({n: ClusterRun(n, part, replace(part, render=spec.render)
                                    if spec.render else part) for n, part in reach.items()})
    rotation = Rotation(multi, chosen, {}, {n: [] for n in chosen},
                        render_directory=spec.render.directory if spec.render else None)
    if not args.dry_run:
        interrupt.configure(hint="run the same rotate again: it finishes the rotation on "
                                 "each cluster (each records which users it was rotating)")

    def plan_one(run: ClusterRun) -> None:
        conn = fleet.connect_run(settings_of(args), run)
        if run.name in chosen and not args.dry_run:  # the lock from the first look on
            run.locked.enter_context(hold_lock(args, conn, "rotate"))
        run.state = observe_for(conn, run.observe_as)
        if run.name in chosen:
            rotation.plans[run.name] = plan_rotation(
                run.spec, run.state, chosen[run.name], read_marker(conn),
                rotate_method(conn))

    fleet.each(list(multi.runs.values()), plan_one)
    plan_rendered(spec, rotation, placeholders=True)
    return rotation


def carry_out(args: argparse.Namespace, spec: Spec, rotation: Rotation) -> None:
    """The rotation on every chosen cluster planned, then the render: files, then the
    markers removed (see the module's docstring for the order)."""
    from cephstack.ceph.auth import clear_marker, key_stamp, rotate_keys, write_marker
    from cephstack.ceph.cephx import new_key
    from cephstack.commands.common import observe_for
    from cephstack.day2.rotate import file_actions
    from cephstack.plan.make import Plan
    from cephstack.render.multidrift import write_rendered_files
    from cephstack.session.apply import apply_plan

    as_json = args.output == "json"
    runs = [r for r in rotation.multi.runs.values() if r.name in rotation.plans]

    def rotate_one(run: ClusterRun) -> None:
        plan, state, done = rotation.plans[run.name], run.state, rotation.done[run.name]
        progress = progress_printer(as_json, run.name)

        def step(what: str) -> None:
            done.append(what)
            progress(f"{what}: done")

        if plan.rotate:
            # Finished entities keep their recorded stamp (as one-cluster rotate).
            recorded = dict(plan.marker.entities) if plan.marker else {}
            recorded.update({e: key_stamp(state.clients[e].key) for e in plan.rotate})
            write_marker(run.conn, recorded, plan.method)
            step("rotation recorded")
            rotate_keys(run.conn, plan.method, [(e, new_key(), state.clients[e].caps)
                                                for e in plan.rotate])
            step(f"{plan.method}: new keys for {', '.join(plan.rotate)}")
        run.state = observe_for(run.conn, run.observe_as)
        files = file_actions(run.spec, run.state, (*plan.rotate, *plan.finish), ())
        if files:
            done += apply_plan(run.conn, Plan(files), run.state, progress=progress).done

    fleet.each(runs, rotate_one)
    if spec.render is not None:
        plan_rendered(spec, rotation, placeholders=False)
        if rotation.rendered is None:  # that cluster's error is the one reported
            rotation.rendered_note = (
                "rendered files not rewritten: rendering needs every cluster, and "
                f"{', '.join(r.name for r in rotation.multi.failed)} failed; the rotated "
                "clusters keep their rotation record: run the same rotate again once every "
                "cluster can be reached (it finishes the files without new keys)")
            return
        try:
            rotation.rendered_done = write_rendered_files(spec, rotation.rendered)
        except CephstackError as e:
            rotation.multi.rendered_error = e
            return

    def unmark(run: ClusterRun) -> None:
        clear_marker(run.conn)
        rotation.done[run.name].append("rotation record removed")
        progress_printer(as_json, run.name)("rotation record removed: done")

    fleet.each(runs, unmark)


# -- what is shown ------------------------------------------------------------------------

def plan_text(rotation: Rotation) -> str:
    from cephstack.report.views import plan_text as rendered_text

    lines = ["cephstack will rotate keys in this order, on each cluster at once (no key is "
             "ever shown):", ""]
    for name, run in rotation.multi.runs.items():
        if name not in rotation.chosen:
            continue
        lines.append(f"== cluster {name} ({run.spec.cluster.conf}) ==")
        plan = rotation.plans.get(name)
        if plan is None:
            lines += [f"error: {name}: {error_text(run.error)}", ""]
            continue
        steps = [s for s in plan.steps() if s != "remove the rotation record"]
        lines += [f"  {i}. {name}: {s}" for i, s in enumerate(steps, 1)]
        lines += [f"Note: {name}: {n}" for n in plan.notes]
        lines += [f"Refused: {name}: {r}" for r in plan.refusals]
        lines.append("")
    if rotation.render_directory:
        lines.append(f"== rendered files ({rotation.render_directory}) ==")
        if rotation.rendered is None:
            lines.append("Not compared: rendering needs every cluster, and one failed.")
        else:
            lines.append(rendered_text(rotation.rendered))
        lines.append("")
    lines.append("Then: " + "; ".join(
        f"{name}: remove the rotation record" for name in rotation.plans) + ".")
    lines += [f"Then on each {role} host: cephstack host install "
              f"{Path(rotation.render_directory or '') / role}" for role in rotation.roles]
    return "\n".join(lines)


def document(rotation: Rotation, dry_run: bool) -> dict[str, Any]:
    from cephstack.commands.rotate import _plan_json
    from cephstack.report.views import plan_json

    multi = rotation.multi
    rendered = None
    if rotation.render_directory:
        rendered = {"directory": rotation.render_directory,
                    "compared": rotation.rendered is not None,
                    "files": plan_json(rotation.rendered)["actions"] if rotation.rendered
                    else [], "done": rotation.rendered_done or [],
                    "note": rotation.rendered_note,
                    "error": error_json(multi.rendered_error) if multi.rendered_error
                    else None}
    return {"format_version": "1", "dry_run": dry_run,
            "clusters": {name: {**(_plan_json(rotation.plans[name])
                                   if name in rotation.plans else {}),
                                "done": rotation.done.get(name, []),
                                "error": error_json(run.error) if run.error else None}
                         for name, run in multi.runs.items() if name in rotation.chosen},
            "rendered": rendered, "install_bundles": list(rotation.roles),
            "refusals": rotation.refusals,
            "failed": [r.name for r in multi.failed]}


def exit_code(rotation: Rotation) -> int:
    if code := rotation.multi.exit_code():
        return code
    return EXIT_FAILED if rotation.refusals else 0
