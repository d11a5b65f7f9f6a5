"""Key rotation: a new cephx key for each named user, then every file holding it rewritten.

Order: (1) the marker naming the users is written to the monitors' config-key store;
(2) the new keys, all in one monitor commit (cephstack.ceph.auth); (3) the cluster is
observed again and the admin-side keyring files of those users and the rendered files
(bundles, libvirt secret values) are rewritten from it, each atomically, as apply writes
them; (4) the marker is removed. `cephstack host install` of each changed bundle then
brings the hosts along. A run stopped anywhere is finished by the next one: the marker
tells "rotated in the cluster, files not yet rewritten" (files only) from "not rotated"
(rotated again, with another new key).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from cephstack import interrupt
from cephstack.ceph.adapter import CephConnection
from cephstack.ceph.auth import (
    AUTH_IMPORT,
    Marker,
    clear_marker,
    key_stamp,
    rotate_keys,
    write_marker,
)
from cephstack.ceph.cephx import new_key
from cephstack.errors import EXIT_BAD_INPUT, CephstackError
from cephstack.plan.actions import Action, Plan, RewriteRenderedFile, WriteKeyring
from cephstack.plan.state import ClusterState
from cephstack.spec.catalog import desired_clients
from cephstack.spec.load import Spec

Progress = Callable[[str], None]
Observe = Callable[[], ClusterState]


class BadUsers(CephstackError):
    """The command line names no user, or one the spec does not declare."""

    exit_code = EXIT_BAD_INPUT
    kind = "bad-input"


def resolve_users(spec: Spec, names: Sequence[str], every: bool,
                  known: Sequence[str] | None = None) -> tuple[str, ...]:
    """The client entities named on the command line: a service (glance, cinder-volume),
    a user (glance, client.glance) or an extra client of the spec; all of them for --all.
    `known`: the users to choose from (default: the spec's; several clusters: all theirs)."""
    if bool(names) == every:
        raise BadUsers("name the users to rotate, or give --all (not both)",
                       hint="cephstack rotate glance nova, or cephstack rotate --all")
    wanted = list(desired_clients(spec) if known is None else known)
    if every:
        return tuple(wanted)
    by_service = {kind: f"client.{s.user}" for kind, s in spec.services.items()}
    out: list[str] = []
    for name in names:
        entity = by_service.get(name) or (name if name.startswith("client.")
                                          else f"client.{name}")
        if entity not in wanted:
            choices = ", ".join(sorted({*by_service, *wanted}))
            raise BadUsers(f"{name!r} is neither a service nor a user of the spec; "
                            f"known: {choices}", hint="name a service or user the spec declares")
        if entity not in out:
            out.append(entity)
    return tuple(out)


@dataclass(frozen=True)
class RotationPlan:
    rotate: tuple[str, ...]  # get a new key now
    finish: tuple[str, ...]  # rotated in the cluster by a run that stopped: files only
    method: str  # how the cluster changes keys: auth import or auth rotate
    files: tuple[Action, ...]  # keyring and rendered files rewritten, in this order
    refusals: tuple[str, ...] = ()
    marker: Marker | None = None  # the unfinished rotation found in the cluster
    render_directory: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def roles(self) -> tuple[str, ...]:
        """The bundles (top directories of the rendered files) to install on their hosts."""
        if not self.render_directory:
            return ()
        root = Path(self.render_directory)
        roles = {Path(a.item.path).relative_to(root).parts[0] for a in self.files
                 if isinstance(a, RewriteRenderedFile)
                 and Path(a.item.path).is_relative_to(root)
                 and len(Path(a.item.path).relative_to(root).parts) > 1}
        return tuple(sorted(roles))

    def steps(self) -> list[str]:
        """What happens, in order (no key in any of it)."""
        users = ", ".join(self.rotate)
        out = []
        if self.rotate:
            out.append(f"record the rotation of {users} in the monitors' config-key store "
                       "(entity names and the creation stamps of their current keys)")
            out.append(f"new keys for {users}: " + (
                f"one `{AUTH_IMPORT}` of all {len(self.rotate)} (one auth commit; current "
                "caps kept); from then on the old keys are refused for new connections"
                if self.method == AUTH_IMPORT else
                f"`auth rotate` of each, sent at once ({len(self.rotate)} command(s))"))
        if self.finish:
            out.append(f"finish the rotation of {', '.join(self.finish)}: done in the "
                       "cluster by a run that stopped, files not yet rewritten")
        out += [f"{a.symbol} {a.address}" + (" (key: sensitive)"
                                             if isinstance(a, WriteKeyring) else "")
                for a in self.files]
        out.append("remove the rotation record")
        out += [f"then on each {role} host: cephstack host install "
                f"{Path(self.render_directory or '') / role}" for role in self.roles]
        return out


def plan_rotation(spec: Spec, state: ClusterState, targets: Sequence[str],
                  marker: Marker | None, method: str,
                  rendered: Callable[[ClusterState], Sequence] = lambda _: ()) -> RotationPlan:
    """Which users get a new key, which only need their files (a stopped run's), and the
    files rewritten. `rendered(state)`: the spec's rendered files against the disk for a
    state (render.drift.rendered_on_disk); the plan's keys are placeholders, never used."""
    pending = [e for e in (marker.entities if marker else ()) if e in desired_clients(spec)]
    finish = tuple(e for e in pending if e in state.clients
                   and marker is not None and marker.rotated(e, state.clients[e].key))
    rotate = tuple(dict.fromkeys(e for e in (*pending, *targets) if e not in finish))
    refusals = tuple(f"{e} does not exist in the cluster: nothing to rotate; fix: "
                     "cephstack apply creates it" for e in rotate if e not in state.clients)
    notes = []
    if marker is not None:
        notes.append("an earlier rotation stopped before it finished (started "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(marker.started))});"
                     " this run finishes it")
    after = placeholder_state(state, rotate)
    files = file_actions(spec, after, (*rotate, *finish), rendered(after))
    return RotationPlan(rotate, finish, method, files, refusals, marker,
                        spec.render.directory if spec.render else None, tuple(notes))


def placeholder_state(state: ClusterState, entities: Sequence[str]) -> ClusterState:
    """`state` as it will be once `entities` have new keys (placeholders, for planning)."""
    clients = dict(state.clients)
    for e in entities:
        if e in clients:
            clients[e] = replace(clients[e], key=new_key())
    return replace(state, clients=clients)


def file_actions(spec: Spec, state: ClusterState, entities: Sequence[str],
                 rendered: Sequence) -> tuple[Action, ...]:
    """The keyring files of `entities` and the rendered files that differ from what the
    spec and `state` render (those holding a rotated key, and any other stale one: a
    rendered file is rewritten whole), as apply would write them."""
    from cephstack.plan.make import make_plan

    plan = make_plan(spec, state, rendered)
    keyrings = [a for a in plan.actions
                if isinstance(a, WriteKeyring) and a.entity in entities]
    files = [a for a in plan.actions
             if isinstance(a, RewriteRenderedFile) and not a.item.wanted.pending]
    return (*keyrings, *files)


@dataclass
class RotationResult:
    done: list[str] = field(default_factory=list)
    mon_commands: int = 0
    seconds: float = 0.0


def carry_out(conn: CephConnection, spec: Spec, plan: RotationPlan, state: ClusterState,
              observe: Observe, rendered: Callable[[ClusterState], Sequence],
              progress: Progress = lambda _: None) -> RotationResult:
    """Rotate as planned. `state` is what the plan was made from; `observe` reads the
    cluster again once the keys changed, for the files."""
    from cephstack.session.apply import apply_plan

    if plan.refusals:
        raise CephstackError("rotation refused; nothing changed:\n" + "\n".join(
            f"  {r}" for r in plan.refusals))
    started, sent_before = time.monotonic(), conn.commands_sent
    result = RotationResult()
    try:
        if plan.rotate:
            # Finished entities keep their recorded stamp: a stop before the new marker
            # is written must not make them look unrotated.
            recorded = dict(plan.marker.entities) if plan.marker else {}
            recorded.update({e: key_stamp(state.clients[e].key) for e in plan.rotate})
            write_marker(conn, recorded, plan.method)
            _done(result, progress, "rotation recorded")
            interrupt.check()
            rotate_keys(conn, plan.method, [(e, new_key(), state.clients[e].caps)
                                            for e in plan.rotate])
            _done(result, progress, f"{plan.method}: new keys for {', '.join(plan.rotate)}")
        interrupt.check()
        after = observe()
        files = file_actions(spec, after, (*plan.rotate, *plan.finish), rendered(after))
        if files:
            written = apply_plan(conn, Plan(files, render_directory=plan.render_directory),
                                 after, progress=progress)
            result.done += written.done
        clear_marker(conn)
        _done(result, progress, "rotation record removed")
    finally:
        result.mon_commands = conn.commands_sent - sent_before
        result.seconds = time.monotonic() - started
    return result


def _done(result: RotationResult, progress: Progress, what: str) -> None:
    result.done.append(what)
    progress(f"{what}: done")
