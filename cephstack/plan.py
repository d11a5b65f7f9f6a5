"""Typed actions and the pure planner: make_plan(spec, observed state) -> Plan.

Nothing is ever deleted. Changes that move data or may break a running client are
marked disruptive; apply runs them only when explicitly allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cephstack.caps import Caps, parse_cap
from cephstack.catalog import desired_clients
from cephstack.spec import PoolSpec, Spec
from cephstack.state import ClusterState, PoolState

if TYPE_CHECKING:  # rendering is imported only when the spec asks for it
    from cephstack.render.drift import RenderedOnDisk

RBD_APPLICATION = "rbd"


@dataclass(frozen=True)
class Change:
    """One setting going from `before` to `after`."""

    field: str
    before: object
    after: object
    disruptive: bool = False
    why: str = ""  # why it is disruptive


@dataclass(frozen=True)
class Action:
    symbol = "~"
    kind = "action"

    @property
    def address(self) -> str:
        raise NotImplementedError

    @property
    def disruptive(self) -> bool:
        return any(c.disruptive for c in self.changes())

    def changes(self) -> tuple[Change, ...]:
        return ()


@dataclass(frozen=True)
class CreatePool(Action):
    pool: PoolSpec
    symbol = "+"
    kind = "create_pool"

    @property
    def address(self) -> str:
        return f"pool.{self.pool.name}"

    def changes(self) -> tuple[Change, ...]:
        p = self.pool
        fields: list[tuple[str, object]] = [
            ("pg_num", p.pg_num),
            ("autoscale", "on" if p.autoscale else "off"),
            ("target_size_ratio", p.target_size_ratio),
            ("size", p.size), ("min_size", p.min_size), ("crush_rule", p.crush_rule),
            ("quota_max_bytes", p.quota.max_bytes or None),
            ("quota_max_objects", p.quota.max_objects or None),
            ("application", f"{RBD_APPLICATION} (pool init)" if p.init else None),
        ]
        return tuple(Change(f, None, v) for f, v in fields if v is not None)


@dataclass(frozen=True)
class UpdatePool(Action):
    name: str
    pool_changes: tuple[Change, ...]
    kind = "update_pool"

    @property
    def address(self) -> str:
        return f"pool.{self.name}"

    def changes(self) -> tuple[Change, ...]:
        return self.pool_changes


@dataclass(frozen=True)
class InitPool(Action):
    """An existing pool lacking the rbd application: what `rbd pool init` does."""

    name: str
    applications: tuple[str, ...]
    kind = "init_pool"

    @property
    def address(self) -> str:
        return f"pool.{self.name}"

    def changes(self) -> tuple[Change, ...]:
        before = ", ".join(self.applications) or "(none)"
        after = ", ".join((*self.applications, RBD_APPLICATION))
        return (Change("application", before, f"{after} (pool init)"),)


@dataclass(frozen=True)
class CreateClient(Action):
    entity: str
    caps: dict[str, str]
    symbol = "+"
    kind = "create_client"

    @property
    def address(self) -> str:
        return self.entity

    def changes(self) -> tuple[Change, ...]:
        return (*(Change(f"caps {d}", None, c) for d, c in sorted(self.caps.items())),
                Change("key", None, "(sensitive)"))


@dataclass(frozen=True)
class UpdateCaps(Action):
    """`auth caps`: changes caps in place; the key stays the same."""

    entity: str
    before: dict[str, str]
    after: dict[str, str]
    removes: tuple[str, ...]  # grants no longer covered: access a running client loses
    kind = "update_caps"

    @property
    def address(self) -> str:
        return self.entity

    def changes(self) -> tuple[Change, ...]:
        out = []
        for daemon in sorted(set(self.before) | set(self.after)):
            b, a = self.before.get(daemon), self.after.get(daemon)
            if parse_cap(b or "") != parse_cap(a or ""):  # same grants in another order: no change
                lost = [r for r in self.removes if r.startswith(f"{daemon} ")]
                out.append(Change(f"caps {daemon}", b, a, bool(lost),
                                  f"removes {'; '.join(lost)}" if lost else ""))
        return tuple(out)


@dataclass(frozen=True)
class WriteKeyring(Action):
    path: str
    entity: str
    reason: str  # "missing" or "key differs from the cluster's"
    mode: int
    owner: str | None
    group: str | None
    kind = "write_keyring"

    @property
    def symbol(self) -> str:  # type: ignore[override]
        return "+" if self.reason == "missing" else "~"

    @property
    def address(self) -> str:
        return f"keyring {self.path}"

    def changes(self) -> tuple[Change, ...]:
        return (Change("key", None if self.reason == "missing" else "(sensitive)",
                       f"(sensitive) of {self.entity}", why=self.reason),
                Change("mode", None, f"{self.mode:04o}"))


@dataclass(frozen=True)
class FixKeyringAccess(Action):
    path: str
    file_changes: tuple[Change, ...]
    mode: int
    owner: str | None
    group: str | None
    kind = "fix_keyring_access"

    @property
    def address(self) -> str:
        return f"keyring {self.path}"

    def changes(self) -> tuple[Change, ...]:
        return self.file_changes


@dataclass(frozen=True)
class RewriteRenderedFile(Action):
    """A file `cephstack render` wrote that no longer matches the spec and the cluster."""

    path: str
    text: str
    secret: bool
    mode: int  # the keyring mode for files holding keys
    differences: tuple[Change, ...]
    kind = "rewrite_rendered_file"

    @property
    def address(self) -> str:
        return f"file {self.path}"

    def changes(self) -> tuple[Change, ...]:
        return self.differences


def _differences(on_disk: str, wanted: str, secret: bool) -> tuple[Change, ...]:
    if secret:  # never show a key, not even a changed one
        return (Change("key", "(sensitive)", "(sensitive)", why="differs from the cluster's"),)
    def options(text: str) -> dict[str, str]:
        return {line.split("=", 1)[0].strip(): line.split("=", 1)[1].strip()
                for line in text.splitlines()
                if "=" in line and not line.lstrip().startswith(("#", ";"))}
    have, want = options(on_disk), options(wanted)
    changed = tuple(Change(k, have.get(k), want.get(k)) for k in sorted(set(have) | set(want))
                    if have.get(k) != want.get(k))
    return changed or (Change("text", "differs", "as rendered"),)


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    unmanaged_pools: tuple[str, ...] = ()
    unmanaged_clients: tuple[str, ...] = ()
    refusals: tuple[str, ...] = ()  # reasons the plan must not be applied as it is
    fingerprint: str = ""
    render_after_apply: str | None = None  # rendered files to refresh once new users exist

    @property
    def empty(self) -> bool:
        return not self.actions

    @property
    def disruptive(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.disruptive)


# -- planner ----------------------------------------------------------------------


def _pool_changes(want: PoolSpec, have: PoolState) -> tuple[Change, ...]:
    out = []
    if want.autoscale:
        if have.autoscale_mode != "on":
            out.append(Change("autoscale", have.autoscale_mode, "on"))
        if want.target_size_ratio is not None and have.target_size_ratio != want.target_size_ratio:
            out.append(Change("target_size_ratio", have.target_size_ratio, want.target_size_ratio))
    else:
        if have.autoscale_mode != "off":
            out.append(Change("autoscale", have.autoscale_mode, "off"))
        # The autoscaler owns pg_num when on; otherwise the spec does.
        if have.pg_num != want.pg_num:
            shrink = want.pg_num < have.pg_num
            out.append(Change("pg_num", have.pg_num, want.pg_num, shrink,
                              "merging placement groups moves data" if shrink else ""))
    if want.size is not None and have.size != want.size:
        out.append(Change("size", have.size, want.size, True,
                          "changing the replica count moves data"))
    if want.min_size is not None and have.min_size != want.min_size:
        out.append(Change("min_size", have.min_size, want.min_size))
    if want.crush_rule is not None and have.crush_rule != want.crush_rule:
        out.append(Change("crush_rule", have.crush_rule, want.crush_rule, True,
                          "a new placement rule moves data"))
    if have.quota_max_bytes != want.quota.max_bytes:
        out.append(Change("quota_max_bytes", have.quota_max_bytes, want.quota.max_bytes))
    if have.quota_max_objects != want.quota.max_objects:
        out.append(Change("quota_max_objects", have.quota_max_objects, want.quota.max_objects))
    return tuple(out)


def _pg_budget(spec: Spec, state: ClusterState) -> tuple[str, ...]:
    """Refuse a layout that the monitors would reject halfway (mon_max_pg_per_osd).

    Mirrors the monitor's check: every pool's pg_num x size against the limit times the
    number of OSDs in, counted as at least 3 (as the monitor does).
    """
    new = [p for n, p in spec.pools.items() if n not in state.pools]
    if not new:
        return ()
    total = 0
    for name, have in state.pools.items():
        want = spec.pools.get(name)
        pg = max(have.pg_num, want.pg_num) if want and not want.autoscale else have.pg_num
        total += pg * ((want.size if want else None) or have.size)
    total += sum(p.pg_num * (p.size or state.default_pool_size) for p in new)
    osds = max(state.osds_in, 3)
    limit = state.max_pg_per_osd * osds
    if total <= limit:
        return ()
    return (f"placement-group budget exceeded: the pools would hold {total} PG replicas, "
            f"more than mon_max_pg_per_osd {state.max_pg_per_osd} x {osds} OSDs "
            f"(OSDs in: {state.osds_in}, counted as at least 3) = {limit}; "
            "lower pg_num, use autoscale: true, or add OSDs",)


def make_plan(spec: Spec, state: ClusterState,
              rendered: Sequence[RenderedOnDisk] | None = ()) -> Plan:
    """`rendered`: the spec's rendered files on disk, or None when they can only be
    rendered once this plan has created the users (apply then refreshes them)."""
    """Compare the spec with the observed state; return the actions that close the gap."""
    actions: list[Action] = []
    for name, want in spec.pools.items():
        have = state.pools.get(name)
        if have is None:
            actions.append(CreatePool(want))
            continue
        if want.init and RBD_APPLICATION not in have.applications:
            actions.append(InitPool(name, have.applications))
        if changes := _pool_changes(want, have):
            actions.append(UpdatePool(name, changes))

    wanted = desired_clients(spec)
    for entity, client in wanted.items():
        have_client = state.clients.get(entity)
        if have_client is None:
            actions.append(CreateClient(entity, client.text))
            continue
        current = Caps.parse(have_client.caps)
        if current != client.caps:
            actions.append(UpdateCaps(entity, have_client.caps, client.text,
                                      tuple(current.missing_from(client.caps))))

    k = spec.keyrings
    for entity in wanted if k.manage else ():
        path = k.path_for(entity)
        on_disk = state.keyring_files.get(entity)
        cluster_key = state.clients[entity].key if entity in state.clients else None
        if on_disk is None or not on_disk.exists:
            actions.append(WriteKeyring(path, entity, "missing", k.mode, k.owner, k.group))
        elif cluster_key is None or on_disk.key != cluster_key:
            actions.append(WriteKeyring(path, entity, "key differs from the cluster's",
                                        k.mode, k.owner, k.group))
        else:
            access = [Change("mode", f"{on_disk.mode:04o}", f"{k.mode:04o}")
                      ] if on_disk.mode != k.mode else []
            if k.owner and on_disk.owner != k.owner:
                access.append(Change("owner", on_disk.owner, k.owner))
            if k.group and on_disk.group != k.group:
                access.append(Change("group", on_disk.group, k.group))
            if access:
                actions.append(FixKeyringAccess(path, tuple(access), k.mode, k.owner, k.group))

    for f in rendered or ():
        if f.on_disk != f.wanted.text:
            actions.append(RewriteRenderedFile(
                f.path, f.wanted.text, f.wanted.secret,
                spec.keyrings.mode if f.wanted.secret else f.wanted.mode,
                _differences(f.on_disk, f.wanted.text, f.wanted.secret)))

    unmanaged_pools = tuple(sorted(n for n in state.pools if n not in spec.pools))
    unmanaged_clients = tuple(sorted(
        e for e in state.clients if e not in wanted and e != spec.cluster.client
        and not e.startswith("client.bootstrap-")))
    pending = spec.render.directory if rendered is None and spec.render else None
    return Plan(tuple(actions), unmanaged_pools, unmanaged_clients, _pg_budget(spec, state),
                state.fingerprint(), pending)
