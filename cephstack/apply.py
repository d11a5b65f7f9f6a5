"""Run a plan against the cluster.

Work is grouped in rounds of independent commands sent concurrently, so the monitor
folds them into few commits: (1) create pools and users, change caps and existing
pools; (2) initialise the new pools and set what `osd pool create` cannot (min_size,
quotas); (3) write keyring files. A failure stops after the round it happened in;
what was done stays done and a re-run converges.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cephstack import interrupt
from cephstack.caps import as_command_list
from cephstack.ceph.adapter import CephConnection
from cephstack.errors import EXIT_TIMEOUT, CephstackError, OpTimedOut, PlanRefused
from cephstack.keyfiles import Secret, keyring_text, set_file_access, write_atomic
from cephstack.plan import (
    Change,
    CreateClient,
    CreatePool,
    FixKeyringAccess,
    InitPool,
    Plan,
    RemoveRenderedFile,
    RewriteRenderedFile,
    UpdateCaps,
    UpdatePool,
    WriteKeyring,
)
from cephstack.state import ClusterState

Progress = Callable[[str], None]

_POOL_SETTING = {  # plan field -> `osd pool set` variable
    "pg_num": "pg_num", "size": "size", "min_size": "min_size", "crush_rule": "crush_rule",
    "autoscale": "pg_autoscale_mode", "target_size_ratio": "target_size_ratio",
}


class ApplyFailed(CephstackError):
    """Steps of a round failed. If one of them timed out (a monitor lost, a pool whose
    placement groups no OSD serves), the whole failure is a timeout: exit code and hint
    say so, and name what did not answer."""

    def __init__(self, done: list[str], failures: list[tuple[str, Exception]]) -> None:
        lines = [f"  {what}: {err.message if isinstance(err, OpTimedOut) else err}"
                 for what, err in failures]
        timeouts = [err for _, err in failures if isinstance(err, OpTimedOut)]
        hint = "fix the cause and run apply again: it continues from where it stopped"
        if timeouts:
            hint = f"{timeouts[0].hint}; then run apply again: it continues from where it stopped"
            self.exit_code = EXIT_TIMEOUT
            self.kind = OpTimedOut.kind
        super().__init__(
            f"apply stopped: {len(failures)} step(s) failed, {len(done)} done and kept:\n"
            + "\n".join(lines), hint=hint)
        self.done = done
        self.failures = failures

    def details(self) -> dict[str, object]:
        return {"done": list(self.done), "failures": [
            {"step": what, **(err.as_json() if isinstance(err, CephstackError)
                              else {"kind": "failed", "message": str(err)})}
            for what, err in self.failures]}


@dataclass
class ApplyResult:
    done: list[str] = field(default_factory=list)
    commands_sent: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class _Step:
    what: str
    run: Callable[[], object]


def _check_allowed(plan: Plan, allow_disruptive: bool) -> None:
    if plan.refusals:
        raise PlanRefused("the plan cannot be applied:\n" + "\n".join(
            f"  {r}" for r in plan.refusals))
    if plan.disruptive and not allow_disruptive:
        lines = [f"  {a.address}: {c.field} {c.before} -> {c.after} ({c.why})"
                 for a in plan.disruptive for c in a.changes() if c.disruptive]
        raise PlanRefused("the plan holds disruptive changes; nothing was applied:\n"
                          + "\n".join(lines),
                          hint="review them, then re-run with --allow-disruptive")


def _pool_set(conn: CephConnection, pool: str, change: Change) -> None:
    if change.field.startswith("quota_"):
        conn.mon("osd pool set-quota", pool=pool, field=change.field.removeprefix("quota_"),
                 val=str(change.after))
    else:
        conn.mon("osd pool set", pool=pool, var=_POOL_SETTING[change.field],
                 val=str(change.after))


def _create_pool(conn: CephConnection, action: CreatePool) -> None:
    p = action.pool
    args: dict[str, object] = {"pool": p.name, "pg_num": p.pg_num, "pgp_num": p.pg_num,
                               "pool_type": "replicated",
                               "autoscale_mode": "on" if p.autoscale else "off"}
    if p.size is not None:
        args["size"] = p.size
    if p.crush_rule is not None:
        args["rule"] = p.crush_rule
    if p.target_size_ratio is not None:
        args["target_size_ratio"] = p.target_size_ratio
    conn.mon("osd pool create", **args)


def _pool_init_steps(conn: CephConnection, pool: str, snaps: dict[str, int | None],
                     prefix: str) -> list[_Step]:
    """First half of `rbd pool init`: both go to the monitor in the same round."""
    def start() -> None:
        snaps[pool] = conn.pool_validate_start(pool, fresh=prefix == "+")

    return [_Step(f"{prefix} pool {pool}: application rbd", lambda: conn.mon(
                "osd pool application enable", pool=pool, app="rbd")),
            _Step(f"{prefix} pool {pool}: rbd pool init (validate)", start)]


def _finish_init(conn: CephConnection, pool: str, snaps: dict[str, int | None],
                 prefix: str) -> _Step:
    return _Step(f"{prefix} pool {pool}: rbd pool init (done)",
                 lambda: conn.pool_validate_finish(pool, snaps.get(pool)))


def _round_one_pools(conn: CephConnection, plan: Plan,
                     snaps: dict[str, int | None]) -> list[_Step]:
    """Pool (osdmap) changes go first, alone: the monitor proposes them at once only if
    nothing else committed in the last paxos_propose_interval (1 s), and auth commits
    would start that clock."""
    steps = []
    for a in plan.actions:
        if isinstance(a, CreatePool):
            steps.append(_Step(f"+ pool {a.pool.name}", lambda a=a: _create_pool(conn, a)))
        elif isinstance(a, InitPool):
            steps += _pool_init_steps(conn, a.name, snaps, "~")
        elif isinstance(a, UpdatePool):
            def update(a: UpdatePool = a) -> None:
                # One pool's settings in order: size must grow before min_size follows.
                for change in sorted(a.pool_changes, key=lambda c: c.field != "size"):
                    _pool_set(conn, a.name, change)
            steps.append(_Step(f"~ pool {a.name}", update))
    return steps


def _round_one_clients(conn: CephConnection, plan: Plan, keys: dict[str, Secret]) -> list[_Step]:
    """Auth changes: the monitor commits them at once, so they cost no extra round."""
    steps = []
    for a in plan.actions:
        if isinstance(a, CreateClient):
            def create(a: CreateClient = a) -> None:
                out = conn.mon("auth get-or-create", entity=a.entity,
                               caps=as_command_list(a.caps))
                keys[a.entity] = Secret(out[0]["key"])
            steps.append(_Step(f"+ {a.entity}", create))
        elif isinstance(a, UpdateCaps):
            steps.append(_Step(f"~ {a.entity} caps", lambda a=a: conn.mon(
                "auth caps", entity=a.entity, caps=as_command_list(a.after))))
    return steps


def _round_two(conn: CephConnection, plan: Plan, snaps: dict[str, int | None]) -> list[_Step]:
    steps = []
    for a in plan.actions:
        if isinstance(a, InitPool):
            steps.append(_finish_init(conn, a.name, snaps, "~"))
        if not isinstance(a, CreatePool):
            continue
        p = a.pool
        if p.init:
            steps += _pool_init_steps(conn, p.name, snaps, "+")
        follow_up = [Change("min_size", None, p.min_size)] if p.min_size else []
        follow_up += [Change(f"quota_{f}", None, v) for f, v in
                      (("max_bytes", p.quota.max_bytes), ("max_objects", p.quota.max_objects))
                      if v]
        for change in follow_up:
            steps.append(_Step(f"+ pool {p.name}: {change.field} {change.after}",
                               lambda c=change, name=p.name: _pool_set(conn, name, c)))
    return steps


def _round_three(conn: CephConnection, plan: Plan, state: ClusterState,
                 keys: dict[str, Secret], snaps: dict[str, int | None]) -> list[_Step]:
    steps = [_finish_init(conn, a.pool.name, snaps, "+") for a in plan.actions
             if isinstance(a, CreatePool) and a.pool.init]
    for a in plan.actions:
        if isinstance(a, WriteKeyring):
            def write(a: WriteKeyring = a) -> None:
                key = keys.get(a.entity) or state.clients[a.entity].key
                write_atomic(a.path, keyring_text(a.entity, key), a.mode, a.owner, a.group)
            steps.append(_Step(f"{a.symbol} keyring {a.path}", write))
        elif isinstance(a, RemoveRenderedFile) or (isinstance(a, RewriteRenderedFile)
                                                   and not a.item.wanted.pending):
            root = plan.render_directory
            steps.append(_Step(f"{a.symbol} {a.address}",
                               lambda a=a, root=root: _write_rendered(a.item, root)))
        elif isinstance(a, FixKeyringAccess):
            steps.append(_Step(f"~ keyring {a.path}: access", lambda a=a: set_file_access(
                a.path, a.mode, a.owner, a.group)))
    return steps


def _write_rendered(item: object, root: str | None) -> None:
    from cephstack.render.drift import write_rendered  # only specs that render need it

    write_rendered(item, root)  # type: ignore[arg-type]


def _run_round(conn: CephConnection, steps: list[_Step], result: ApplyResult,
               progress: Progress) -> None:
    failures: list[tuple[str, Exception]] = []
    lock = threading.Lock()  # progress lines from concurrent steps must not interleave

    def attempt(step: _Step) -> None:
        interrupt.check()  # a safe point: SIGINT/SIGTERM stop here, between steps
        try:
            step.run()
        except Exception as e:  # collected: the other steps of the round still finish
            with lock:
                failures.append((step.what, e))
        else:
            with lock:
                result.done.append(step.what)
                progress(f"{step.what}: done")

    interrupt.check()
    conn.concurrently([lambda s=s: attempt(s) for s in steps])
    if failures:
        raise ApplyFailed(result.done, failures)


def apply_plan(conn: CephConnection, plan: Plan, state: ClusterState, *,
               allow_disruptive: bool = False, progress: Progress = lambda _: None) -> ApplyResult:
    """Carry out `plan` (made from `state`). Raises PlanRefused before any change when the
    plan is refused or holds disruptive actions that are not allowed."""
    _check_allowed(plan, allow_disruptive)
    started, sent_before = time.monotonic(), conn.commands_sent
    result = ApplyResult()
    keys: dict[str, Secret] = {}
    snaps: dict[str, int | None] = {}  # pool -> validation snapshot to release
    try:
        for make_round in (lambda: _round_one_pools(conn, plan, snaps),
                           lambda: _round_one_clients(conn, plan, keys),
                           lambda: _round_two(conn, plan, snaps),
                           lambda: _round_three(conn, plan, state, keys, snaps)):
            _run_round(conn, make_round(), result, progress)
    finally:
        result.commands_sent = conn.commands_sent - sent_before
        result.seconds = time.monotonic() - started
    return result

