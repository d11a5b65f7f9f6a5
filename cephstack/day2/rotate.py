"""Key rotation: a new cephx key for each named user, then every file holding it rewritten.

Order: (1) the marker naming the users is written to the monitors' config-key store;
(2) the new keys, all in one monitor commit (cephstack.ceph.auth); (3) the cluster is
observed again and the admin-side keyring files of those users and the rendered files
(bundles, libvirt secret values) are rewritten from it, each atomically, as apply writes
them; (4) the marker is removed. `cephstack host install` of each changed bundle then
brings the hosts along. A run stopped anywhere is finished by the next one: the marker
tells "rotated in the cluster, files not yet rewritten" (files only) from "not rotated"
(rotated again, with another new key). cephstack.day2.rotating carries it out over the
fleet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cephstack.ceph.auth import AUTH_IMPORT, COMMIT_PENDING, STAGE_PENDING, Marker
from cephstack.ceph.cephx import new_key
from cephstack.day2.keymigration import COMMIT, PENDING, with_keys
from cephstack.errors import EXIT_BAD_INPUT, CephstackError
from cephstack.keyfiles import Secret
from cephstack.plan.actions import Action, RewriteRenderedFile, WriteKeyring
from cephstack.plan.state import ClusterState
from cephstack.spec.catalog import desired_clients
from cephstack.spec.load import Spec


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
    mode: str = "now"  # cephstack.day2.keymigration: now, pending or commit
    key_type: str = ""  # the type of the new keys

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
        if self.mode == COMMIT:
            return [f"`{COMMIT_PENDING}` of {users}: their pending keys, which every file "
                    "holds already, become their only keys; the old keys are refused from "
                    "then on"] if self.rotate else []
        if self.mode == PENDING and self.rotate:
            out.append(f"`{STAGE_PENDING}` of {users}: a pending {self.key_type} key each "
                       "(the same one again if it has one); old and pending keys both "
                       "authenticate until the commit")
        elif self.rotate:
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
        if self.mode != PENDING:
            out.append("remove the rotation record")
        out += [f"then on each {role} host: cephstack host install "
                f"{Path(self.render_directory or '') / role}" for role in self.roles]
        if self.mode == PENDING:
            out.append(f"then, once every host is installed and restarted: cephstack rotate "
                       f"--commit {' '.join(self.rotate)}")
        return out


def plan_rotation(spec: Spec, state: ClusterState, targets: Sequence[str],
                  marker: Marker | None, method: str,
                  rendered: Callable[[ClusterState], Sequence] = lambda _: (),
                  checks: tuple[Sequence[str], Sequence[str]] = ((), ()), key_type: str = "",
                  pending: Mapping[str, Secret] | None = None) -> RotationPlan:
    """Which users get a new key, which only need their files (a stopped run's), and the
    files rewritten. `rendered(state)`: the spec's rendered files against the disk for a
    state (session.drift.rendered_on_disk); the plan's keys are placeholders, never used.
    `checks`: (refusals, notes) found before (key type, hosts); `pending`: the users'
    pending keys for a --pending or --commit rotation (method says which)."""
    if method in (STAGE_PENDING, COMMIT_PENDING):
        return _plan_pending(spec, state, targets, method, rendered, checks, key_type,
                             pending or {})
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
    return RotationPlan(rotate, finish, method, files, (*refusals, *checks[0]), marker,
                        spec.render.directory if spec.render else None,
                        (*notes, *checks[1]), key_type=key_type)


def _plan_pending(spec: Spec, state: ClusterState, targets: Sequence[str], method: str,
                  rendered: Callable[[ClusterState], Sequence],
                  checks: tuple[Sequence[str], Sequence[str]], key_type: str,
                  pending: Mapping[str, Secret]) -> RotationPlan:
    """--pending: stage a key each, files rendered with it (the pending keys where they
    exist, placeholders where they will be made). --commit: commit, refused per user
    without a pending key or with a file not holding it yet."""
    refusals = [f"{e} does not exist in the cluster: nothing to rotate; fix: cephstack "
                "apply creates it" for e in targets if e not in state.clients]
    users = tuple(e for e in targets if e in state.clients)
    directory = spec.render.directory if spec.render else None
    if method == STAGE_PENDING:
        after = with_keys(placeholder_state(state, [e for e in users if e not in pending]),
                          {e: k for e, k in pending.items() if e in users})
        files = file_actions(spec, after, users, rendered(after))
        first_use = ("the monitors make a pending key the only one at its first use "
                     "(measured on Reef 18.2.7 and Tentacle 20.2.4): from the first host "
                     "installed on, new connections from hosts not installed yet are "
                     "refused; install every host of these users in one go")
        return RotationPlan(users, (), method, files, (*refusals, *checks[0]), None,
                            directory, (*checks[1], first_use), PENDING, key_type)
    after = with_keys(state, {e: k for e, k in pending.items() if e in users})
    stale = file_actions(spec, after, users, rendered(after))
    if stale:
        refusals.append("these files do not hold the pending keys yet (committing would "
                        "lock their services out): " + ", ".join(a.address for a in stale)
                        + f"; fix: cephstack rotate --pending {' '.join(users)} (it writes "
                        "the same pending keys again), host install, then --commit")
    # The monitors commit a pending key at its first use (measured): files holding the
    # current key then mean it was committed that way.
    notes = [f"{e}: no pending key, and the files hold its current key: committed already "
             "(the monitors commit a pending key once a client uses it)" for e in users
             if e not in pending and not stale]
    return RotationPlan(tuple(e for e in users if e in pending), (), method, (),
                        (*refusals, *checks[0]), None, directory, (*checks[1], *notes),
                        COMMIT, key_type)


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
