"""Typed actions of a plan, and the Plan itself: what apply does, as data.

An action knows its address, its symbol (+ create, ~ change, - remove), its
changes (before -> after) and whether it is disruptive. Keys appear only as (sensitive).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cephstack.plan.state import POOL_INIT_STARTED, Health
from cephstack.spec.caps import parse_cap
from cephstack.spec.load import CrushRuleSpec, PoolSpec

if TYPE_CHECKING:  # rendering is imported only when the spec asks for it
    from cephstack.render.model import RenderedFile
    from cephstack.session.drift import RenderedOnDisk

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
class CreateCrushRule(Action):
    """`osd crush rule create-replicated`: a rule the spec names and the cluster lacks.
    `reach`: what it would place on, as the plan computed it from the OSD tree."""

    rule: CrushRuleSpec
    reach: str | None = None
    symbol = "+"
    kind = "create_crush_rule"

    @property
    def address(self) -> str:
        return f"crush_rule.{self.rule.name}"

    def changes(self) -> tuple[Change, ...]:
        r = self.rule
        fields: list[tuple[str, object]] = [
            ("root", r.root), ("device_class", r.device_class),
            ("failure_domain", r.failure_domain), ("reaches", self.reach)]
        return tuple(Change(f, None, v) for f, v in fields if v is not None)


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
    """`rbd pool init` of an existing pool: one lacking the rbd application, or one whose
    librbd validation never finished (the application enabled, but no rbd_info object
    saying "overwrite validated": an interrupted apply, or an application enabled by hand)."""

    name: str
    applications: tuple[str, ...]
    pool_init: str | None = None  # rbd_info as observed, when the application is enabled
    kind = "init_pool"

    @property
    def address(self) -> str:
        return f"pool.{self.name}"

    def changes(self) -> tuple[Change, ...]:
        if RBD_APPLICATION in self.applications:
            why = ("validation started, never finished" if self.pool_init == POOL_INIT_STARTED
                   else "no rbd_info object")
            return (Change("rbd pool init", f"not finished: {why}", "validated"),)
        before = ", ".join(self.applications) or "(none)"
        after = ", ".join((*self.applications, RBD_APPLICATION))
        return (Change("application", before, f"{after} (pool init)"),)


@dataclass(frozen=True)
class CreateClient(Action):
    entity: str
    caps: dict[str, str]
    key_type: str = ""  # the type the cluster gives new keys ("" not observed)
    symbol = "+"
    kind = "create_client"

    @property
    def address(self) -> str:
        return self.entity

    def changes(self) -> tuple[Change, ...]:
        kind = (Change("key type", None, self.key_type),) if self.key_type else ()
        return (*(Change(f"caps {d}", None, c) for d, c in sorted(self.caps.items())),
                Change("key", None, "(sensitive)"), *kind)


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
    """A rendered file that is missing, or no longer matches the spec and the cluster."""

    item: RenderedOnDisk
    differences: tuple[Change, ...]
    kind = "rewrite_rendered_file"

    @property
    def symbol(self) -> str:  # type: ignore[override]
        return "+" if self.item.on_disk is None else "~"

    @property
    def address(self) -> str:
        return f"file {self.item.path}"

    def changes(self) -> tuple[Change, ...]:
        return self.differences


@dataclass(frozen=True)
class RemoveRenderedFile(Action):
    """A file an earlier render wrote that is no longer rendered (a renamed user's keyring,
    a removed service's bundle): its key must not linger."""

    item: RenderedOnDisk
    symbol = "-"
    kind = "remove_rendered_file"

    @property
    def address(self) -> str:
        return f"file {self.item.path}"

    def changes(self) -> tuple[Change, ...]:
        return (Change("file", "rendered earlier", "no longer rendered: removed"),)


@dataclass(frozen=True)
class RemovePool(Action):
    """apply --prune: an empty pool cephstack created that the spec no longer declares."""

    name: str
    pool_id: int
    symbol = "-"
    kind = "remove_pool"

    @property
    def address(self) -> str:
        return f"pool.{self.name}"

    @property
    def forgets(self) -> tuple[str, str]:
        """The record (cephstack.ceph.records) that goes with it."""
        return ("pool", self.name)

    def changes(self) -> tuple[Change, ...]:
        return (Change("pool", f"created by cephstack (id {self.pool_id}), empty",
                       "deleted: no longer declared"),)


@dataclass(frozen=True)
class RemoveClient(Action):
    """apply --prune: a user cephstack created that the spec no longer declares, with no
    client connected with it."""

    entity: str
    symbol = "-"
    kind = "remove_client"

    @property
    def address(self) -> str:
        return self.entity

    @property
    def forgets(self) -> tuple[str, str]:
        return ("user", self.entity)

    def changes(self) -> tuple[Change, ...]:
        return (Change("user", "created by cephstack, no session",
                       "removed with its key: no longer declared"),)


@dataclass(frozen=True)
class RemoveKeyring(Action):
    """apply --prune: a keyring file apply wrote for a user the spec no longer gives one."""

    path: str
    entity: str
    symbol = "-"
    kind = "remove_keyring"

    @property
    def address(self) -> str:
        return f"keyring {self.path}"

    @property
    def forgets(self) -> tuple[str, str]:
        return ("keyring", self.path)

    def changes(self) -> tuple[Change, ...]:
        return (Change("file", f"written by apply for {self.entity}",
                       "removed: no longer declared"),)


@dataclass(frozen=True)
class ForgetRecord(Action):
    """apply --prune: a record of something cephstack created that is gone (removed outside
    cephstack), so a namesake made later by hand is never taken for cephstack's."""

    record: str  # "pool", "user" or "keyring" (records.py names its key)
    name: str  # the pool, the entity or the keyring file's path
    what: str
    symbol = "-"
    kind = "forget_record"

    @property
    def address(self) -> str:
        return f"record of {self.record} {self.name}"

    @property
    def forgets(self) -> tuple[str, str]:
        return (self.record, self.name)

    def changes(self) -> tuple[Change, ...]:
        return (Change("record", self.what, "forgotten"),)


def _differences(on_disk: str | None, wanted: RenderedFile) -> tuple[Change, ...]:
    if wanted.pending:
        return (Change("key", None if on_disk is None else "(sensitive)",
                       f"(sensitive) of {wanted.pending}", why="once apply creates it"),)
    secret, wanted_text = wanted.secret, wanted.text
    if on_disk is None:
        return (Change("file", None, "(sensitive)" if secret else "rendered"),)
    if secret:  # never show a key, not even a changed one
        return (Change("key", "(sensitive)", "(sensitive)", why="differs from the cluster's"),)
    def options(text: str) -> dict[str, str]:
        return {line.split("=", 1)[0].strip(): line.split("=", 1)[1].strip()
                for line in text.splitlines()
                if "=" in line and not line.lstrip().startswith(("#", ";"))}
    have, want = options(on_disk), options(wanted_text)
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
    render_directory: str | None = None  # where rendered files live (the spec's render:)
    health: Health | None = None  # the cluster's condition when observed (one line)
    notes: tuple[str, ...] = ()  # what the plan could not check (it changes nothing)
    # Monitor settings the plan used: name -> {value, source, monitors} (plan/settings.py).
    settings: dict = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.actions

    @property
    def disruptive(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.disruptive)
