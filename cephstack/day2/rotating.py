"""`cephstack rotate` over the fleet: one workflow for a spec's one cluster or its several.

A user exists on every cluster that holds one of its pools, each with its own key: it is
rotated on each of those clusters (or those --cluster names), all at once (fleet.each),
each under that cluster's run lock and with that cluster's own marker (cephstack.ceph.auth),
as cephstack.day2.rotate plans it for that cluster's part of the spec. Order:
(1) on each cluster: the marker, the new keys, the cluster observed again, its files
    rewritten (its keyring files; a fleet of one: the rendered files too, in the same
    apply, as its plan compares them);
(2) once, when the rendered files are the fleet's (a spec with clusters: renders from every
    cluster's state: bundles, libvirt secret values per (cluster, user)): those files;
(3) on each cluster: the marker removed, only once (2) is done. A run stopped anywhere, or
    one where a cluster failed, leaves the markers of the others, so the next run finishes
    them (files only) without rotating them twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cephstack import interrupt
from cephstack.ceph.auth import (
    COMMIT_PENDING,
    STAGE_PENDING,
    clear_marker,
    commit_pending,
    has_command,
    key_stamp,
    pending_keys,
    read_marker,
    rotate_keys,
    rotate_method,
    stage_pending,
    write_marker,
)
from cephstack.ceph.cephx import AES256K, UnknownKeyType, key_type_name, new_key
from cephstack.ceph.sessions import client_sessions
from cephstack.day2.keymigration import (
    COMMIT,
    NOW,
    PENDING,
    new_key_type,
    session_checks,
    with_keys,
)
from cephstack.day2.rotate import (
    BadUsers,
    RotationPlan,
    file_actions,
    placeholder_state,
    plan_rotation,
    resolve_users,
)
from cephstack.errors import EXIT_FAILED, CephCommandError, CephstackError
from cephstack.plan.actions import Plan
from cephstack.plan.keytypes import UnknownRelease, auth_facts
from cephstack.session import fleet
from cephstack.session.connect import Settings, hold_lock, observe_for
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.spec.catalog import desired_clients
from cephstack.spec.fleet import split
from cephstack.spec.load import Spec

Progress = Callable[[str, str], None]  # (cluster, line)
RECORD_REMOVED = "rotation record removed"


def resolve_targets(spec: Spec, parts: dict[str, Spec], names: Sequence[str],
                    every: bool) -> dict[str, tuple[str, ...]]:
    """cluster -> the entities to rotate there: the named services and users (or all with
    --all), on each cluster where the spec creates them. A name no cluster of the spec
    knows is bad input; so is a name none of the chosen clusters has."""
    known = {e: None for part in split(spec).values() for e in desired_clients(part)}
    wanted = resolve_users(spec, names, every, known=list(known))
    # Several clusters: each one's users in the spec's order; one: as named.
    out = {c: tuple(e for e in (desired_clients(part) if spec.clusters else wanted)
                    if every or e in wanted) for c, part in parts.items()}
    missing = [] if every else [e for e in wanted if not any(e in t for t in out.values())]
    if missing:
        raise BadUsers(f"{', '.join(missing)}: on none of the clusters chosen "
                       f"({', '.join(parts)})", hint="choose its clusters with --cluster, "
                       "or leave --cluster out")
    return {c: t for c, t in out.items() if t}


@dataclass
class ClusterRotation:
    """What rotating took on one cluster: its steps, time and monitor commands."""

    started: float = 0.0
    commands_before: int = 0
    seconds: float = 0.0
    mon_commands: int = 0


@dataclass
class Rotation:
    """What rotate does over the fleet: each cluster's plan and steps, and the rendered
    files when they are the fleet's (rendered from every cluster's state)."""

    multi: Fleet
    chosen: dict[str, tuple[str, ...]]  # cluster -> entities to rotate there
    plans: dict[str, RotationPlan]
    done: dict[str, list[str]]
    rendered: Any = None  # the fleet's render: files to rewrite (a Plan), or None
    rendered_done: list[str] | None = None
    render_directory: str | None = None  # set when the rendered files are the fleet's
    rendered_note: str | None = None  # why they were not rewritten (a cluster failed)
    taken: dict[str, ClusterRotation] = field(default_factory=dict)

    @property
    def refusals(self) -> list[str]:
        return [f"{c}: {r}" for c in self.chosen if c in self.plans  # the spec's order
                for r in self.plans[c].refusals]

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

    def exit_code(self) -> int:
        if code := self.multi.exit_code():
            return code
        return EXIT_FAILED if self.refusals else 0


def _rendered_by(spec: Spec) -> Callable[[Any], Sequence]:
    """state -> the cluster's own rendered files against the disk (none unless its part of
    the spec renders: a fleet of one)."""
    if spec.render is None:
        return lambda _state: ()
    from cephstack.session.drift import rendered_on_disk

    return lambda state: rendered_on_disk(spec, state)


def _fleet_renders(spec: Spec, parts: dict[str, Spec]) -> bool:
    """Whether the render: files are the fleet's, rendered from every cluster's state (no
    cluster's own part renders them)."""
    return spec.render is not None and all(p.render is None for p in parts.values())


def plan_rendered(spec: Spec, rotation: Rotation, placeholders: bool) -> None:
    """The fleet's render: files that every cluster's state (with placeholder keys for the
    users about to be rotated, when planning) renders differently from the disk; None if
    a cluster's state is missing (it could not be read)."""
    from cephstack.session.drift import rendered_plan

    states = {}
    for name, run in rotation.multi.runs.items():
        plan = rotation.plans.get(name)
        states[name] = (placeholder_state(run.state, plan.rotate)
                        if placeholders and plan is not None and run.state is not None
                        else run.state) if run.ok else None
    found = rendered_plan(spec, states)
    rotation.rendered = None if found is None else replace(found, actions=tuple(
        a for a in found.actions if not getattr(a.item.wanted, "pending", False)))


def prepare(settings: Settings, spec: Spec, parts: dict[str, Spec], names: Sequence[str],
            every: bool, dry_run: bool, mode: str = NOW,
            key_type: str | None = None) -> Rotation:
    """Resolve the users (bad input before any connection), connect to every cluster to
    rotate (and to all of them when the fleet renders: rendering needs each one's state),
    take the rotated ones' run locks (not for a dry run) and plan each."""
    chosen = resolve_targets(spec, parts, names, every)
    every_part = split(spec)
    across = _fleet_renders(spec, every_part)
    reach = every_part if across else {n: every_part[n] for n in chosen}
    named = bool(spec.clusters)
    multi = Fleet({n: ClusterRun(n, part, replace(part, render=spec.render) if across
                                 else part, named=named) for n, part in reach.items()},
                  named=named)
    rotation = Rotation(multi, chosen, {}, {n: [] for n in chosen},
                        render_directory=spec.render.directory if across else None)

    def plan_one(run: ClusterRun) -> None:
        conn = fleet.connect_run(settings, run)
        if run.name in chosen and not dry_run:  # under the lock from the first look on
            run.locked.enter_context(hold_lock(settings, conn, "rotate"))
        run.state = observe_for(conn, run.observe_as or run.spec)
        if run.name in chosen:
            rotation.plans[run.name] = _plan_one(conn, run.spec, run.state,
                                                 chosen[run.name], mode, key_type)

    fleet.each(list(multi.runs.values()), plan_one)
    if across:
        plan_rendered(spec, rotation, placeholders=True)
    return rotation


def _plan_one(conn, spec: Spec, state, targets: tuple[str, ...], mode: str,
              key_type: str | None) -> RotationPlan:
    """One cluster's plan: the new keys' type (refused where the cluster does not allow
    it), the hosts using each user's key (the monitors' sessions, read when the new type is
    aes256k), the pending keys (--pending, --commit)."""
    monmap = conn.mon("mon dump") or {}
    try:
        facts = auth_facts(monmap)
    except UnknownRelease as e:
        raise UnknownKeyType(f"{e}: nothing rotated", hint="upgrade cephstack "
                             "(docs/releases.md lists the releases it knows)") from None
    new_type, why = new_key_type(facts, key_type)
    refusals = [why] if why else []
    marker = read_marker(conn)
    method = {PENDING: STAGE_PENDING, COMMIT: COMMIT_PENDING}.get(mode)
    if method is None:
        method = rotate_method(conn)
    else:
        if not has_command(conn.mon("get_command_descriptions"), method):
            refusals.append(f"the cluster ({facts.release}) has no `{method}`: pending keys "
                            "came with Reef 18.2; fix: rotate without --pending/--commit")
        if marker is not None:
            refusals.append("an earlier rotation stopped before it finished: run cephstack "
                            "rotate (without --pending/--commit) to finish it first")
        if mode == PENDING and new_type != facts.preferred:
            refusals.append(f"a pending key is of the cluster's preferred type "
                            f"({facts.preferred}), not {new_type}")
    existing = [e for e in targets if e in state.clients]
    pending = pending_keys(conn, existing) if mode != NOW and not refusals else {}
    sessions = None
    if new_type == AES256K.name and any(key_type_name(state.clients[e].key) != new_type
                                        for e in existing):
        try:
            sessions = client_sessions(conn, monmap)
        except CephCommandError:
            sessions = None  # refused per user: the hosts are unknown
    services = {f"client.{s.user}": kind for kind, s in spec.services.items()}
    checks = session_checks(existing, services, state, sessions, new_type)
    return plan_rotation(spec, state, targets, marker if mode == NOW else None, method,
                         _rendered_by(spec), ((*refusals, *checks[0]), checks[1]),
                         new_type, pending)


def carry_out(spec: Spec, rotation: Rotation,
              progress: Progress = lambda _c, _l: None) -> None:
    """The rotation on every cluster planned, then the fleet's rendered files, then the
    markers removed (see the module's docstring for the order)."""
    from cephstack.session.apply import apply_plan

    if rotation.refusals:
        raise CephstackError("rotation refused; nothing changed:\n" + "\n".join(
            f"  {r}" for r in rotation.refusals))
    runs = [r for r in rotation.multi.runs.values() if r.name in rotation.plans]

    def step(run: ClusterRun, what: str) -> None:
        rotation.done[run.name].append(what)
        progress(run.name, f"{what}: done")

    def rotate_one(run: ClusterRun) -> None:
        plan, state = rotation.plans[run.name], run.state
        rotation.taken[run.name] = ClusterRotation(time.monotonic(), run.conn.commands_sent)
        if plan.mode != NOW:
            rotation.done[run.name] += _pending_one(run, plan, progress)
            return
        if plan.rotate:
            # Finished entities keep their recorded stamp: a stop before the new marker
            # is written must not make them look unrotated.
            recorded = dict(plan.marker.entities) if plan.marker else {}
            recorded.update({e: key_stamp(state.clients[e].key) for e in plan.rotate})
            write_marker(run.conn, recorded, plan.method)
            step(run, "rotation recorded")
            interrupt.check()
            rotate_keys(run.conn, plan.method, [(e, new_key(), state.clients[e].caps)
                                                for e in plan.rotate], plan.key_type)
            step(run, f"{plan.method}: new keys for {', '.join(plan.rotate)}")
        interrupt.check()
        run.state = after = observe_for(run.conn, run.observe_as or run.spec)
        files = file_actions(run.spec, after, (*plan.rotate, *plan.finish),
                             _rendered_by(run.spec)(after))
        if files:
            rotation.done[run.name] += apply_plan(
                run.conn, Plan(files, render_directory=plan.render_directory), after,
                progress=lambda line: progress(run.name, line)).done

    def unmark(run: ClusterRun) -> None:
        if rotation.plans[run.name].mode == NOW:
            clear_marker(run.conn)
            step(run, RECORD_REMOVED)
        else:  # --pending/--commit write no record: nothing to remove, nothing to show
            rotation.done[run.name].append(RECORD_REMOVED)
        taken = rotation.taken[run.name]
        taken.seconds = time.monotonic() - taken.started
        taken.mon_commands = run.conn.commands_sent - taken.commands_before

    fleet.each(runs, rotate_one)
    if rotation.render_directory is not None and not _write_fleet_files(spec, rotation):
        return
    fleet.each(runs, unmark)


def _pending_one(run: ClusterRun, plan: RotationPlan, progress: Progress) -> list[str]:
    """--pending: stage the keys, then write the files with them (the state kept holds
    them, for the fleet's rendered files); --commit: commit them. The steps done."""
    from cephstack.session.apply import apply_plan

    users = list(plan.rotate)
    method = COMMIT_PENDING if plan.mode == COMMIT else STAGE_PENDING
    (commit_pending if plan.mode == COMMIT else stage_pending)(run.conn, users)
    done = [f"{method}: {', '.join(users)}"]
    progress(run.name, f"{done[0]}: done")
    interrupt.check()
    after = observe_for(run.conn, run.observe_as or run.spec)
    if plan.mode == COMMIT:
        run.state = after
        return done
    run.state = after = with_keys(after, pending_keys(run.conn, users))
    files = file_actions(run.spec, after, users, _rendered_by(run.spec)(after))
    if files:
        done += apply_plan(run.conn, Plan(files, render_directory=plan.render_directory),
                           after, progress=lambda line: progress(run.name, line)).done
    return done


def _write_fleet_files(spec: Spec, rotation: Rotation) -> bool:
    """The fleet's rendered files from every cluster's new state; False when they could
    not be written (a cluster failed, or a write did): the markers then stay."""
    from cephstack.session.drift import write_rendered_files

    plan_rendered(spec, rotation, placeholders=False)
    if rotation.rendered is None:  # that cluster's error is the one reported
        rotation.rendered_note = (
            "rendered files not rewritten: rendering needs every cluster, and "
            f"{', '.join(r.name for r in rotation.multi.failed)} failed; the rotated "
            "clusters keep their rotation record: run the same rotate again once every "
            "cluster can be reached (it finishes the files without new keys)")
        return False
    try:
        rotation.rendered_done = write_rendered_files(spec, rotation.rendered)
    except CephstackError as e:
        rotation.multi.rendered_error = e
        return False
    return True
