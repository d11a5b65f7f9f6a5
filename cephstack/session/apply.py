"""Run a plan against the cluster.

Work is grouped in rounds of independent commands sent concurrently, so the monitor
folds them into few commits: (1) create pools, change existing pools, and create users
and change caps, all users in one `auth import` (one auth commit, keys made here);
(2) initialise the new pools and set what `osd pool create` cannot (min_size, quotas);
(3) finish the pool initialisations (the new pools' snapshot releases are sent in the
background: cephstack.ceph.poolinit), write keyring files. Each round of pool (osdmap)
changes waits for the monitor's next proposal (paxos_propose_interval, 1 s, after the
previous commit): the rounds are the dependent steps, never the number of pools or users.
`apply --yes` sends round (1)'s pool creations with the run lock's own commit
(create_pools, cmd_apply), so they do not wait a proposal interval behind it.
Only when the plan creates CRUSH rules, a round before these creates them (the pools that
name them need them to exist). A failure stops after the round it happened in; what was
done stays done and a re-run converges.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cephstack import interrupt
from cephstack.ceph import poolinit
from cephstack.ceph.adapter import CephConnection
from cephstack.ceph.auth import cluster_key_type
from cephstack.ceph.capscheck import caps_refused
from cephstack.ceph.cephx import import_keyring_text, new_key
from cephstack.ceph.extras import extra_steps
from cephstack.errors import (
    ApplyFailed,
    CephstackError,
    PlanRefused,
)
from cephstack.keyfiles import Secret, keyring_text, set_file_access, write_atomic
from cephstack.plan.make import (
    Change,
    CreateClient,
    CreateCrushRule,
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
from cephstack.plan.state import ClusterState
from cephstack.session.records import forget_removed, record_created, removals

Progress = Callable[[str], None]

_LOCAL_THREADS = 16  # threads writing files on this host in a round
_POOL_SETTING = {  # plan field -> `osd pool set` variable
    "pg_num": "pg_num", "size": "size", "min_size": "min_size", "crush_rule": "crush_rule",
    "autoscale": "pg_autoscale_mode", "target_size_ratio": "target_size_ratio",
}


@dataclass
class ApplyResult:
    done: list[str] = field(default_factory=list)
    commands_sent: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class _Step:
    what: str
    run: Callable[[], object]
    # A batch of several things done by one call: run() returns {part: error} for the
    # parts that failed; the others are done.
    parts: tuple[str, ...] = ()
    local: bool = False  # files on this host: a few threads, not one each


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


def _rule_steps(conn: CephConnection, plan: Plan) -> list[_Step]:
    """New CRUSH rules: a round of their own, before the pools that name them (a pool
    create or crush_rule change needs its rule to exist). No rule to create: no round."""
    def create(a: CreateCrushRule) -> None:
        r = a.rule
        conn.mon("osd crush rule create-replicated", name=r.name, root=r.root,
                 type=r.failure_domain, **({"class": r.device_class} if r.device_class else {}))

    return [_Step(f"+ crush_rule {a.rule.name}", lambda a=a: create(a))
            for a in plan.actions if isinstance(a, CreateCrushRule)]


def _pool_init_steps(conn: CephConnection, pool: str, snaps: dict[str, int | None],
                     prefix: str) -> list[_Step]:
    """First half of `rbd pool init`: both go to the monitor in the same round."""
    def start() -> None:
        snaps[pool] = poolinit.validate_start(conn, pool, fresh=prefix == "+")

    return [_Step(f"{prefix} pool {pool}: application rbd", lambda: conn.mon(
                "osd pool application enable", pool=pool, app="rbd")),
            _Step(f"{prefix} pool {pool}: rbd pool init (validate)", start)]


def _finish_init(conn: CephConnection, pool: str, snaps: dict[str, int | None],
                 prefix: str) -> _Step:
    return _Step(f"{prefix} pool {pool}: rbd pool init (done)",
                 lambda: poolinit.validate_finish(conn, pool, snaps.get(pool),
                                                  release_in_background=prefix == "+"))


def _pool_creations(conn: CephConnection, plan: Plan) -> list[_Step]:
    return [_Step(f"+ pool {a.pool.name}", lambda a=a: _create_pool(conn, a))
            for a in plan.actions if isinstance(a, CreatePool)]


def create_pools(conn: CephConnection, plan: Plan, progress: Progress = lambda _: None
                 ) -> ApplyResult:
    """Only the plan's new pools (then apply_plan(..., pools_created=True) does the rest).
    Creating a declared pool that is missing is safe to race with anything: cmd_apply
    sends these with the run lock's commit instead of a proposal interval after it."""
    result = ApplyResult()
    _run_round(conn, _pool_creations(conn, plan), result, progress)
    return result


def _round_one(conn: CephConnection, plan: Plan, state: ClusterState,
               snaps: dict[str, int | None], keys: dict[str, Secret],
               pools_created: bool) -> list[_Step]:
    """Pool (osdmap) changes and the users' one `auth import`, at once. The pool commands
    go first: the monitor proposes them a paxos_propose_interval after the last commit
    that came before them, and the auth commit (immediate) must not be that one."""
    steps = [] if pools_created else _pool_creations(conn, plan)
    for a in plan.actions:
        if isinstance(a, InitPool):
            steps += _pool_init_steps(conn, a.name, snaps, "~")
        elif isinstance(a, UpdatePool):
            def update(a: UpdatePool = a) -> None:
                # One pool's settings in order: size must grow before min_size follows.
                for change in sorted(a.pool_changes, key=lambda c: c.field != "size"):
                    _pool_set(conn, a.name, change)
            steps.append(_Step(f"~ pool {a.name}", update))
    return steps + _auth_import(conn, plan, state, keys)


def _auth_import(conn: CephConnection, plan: Plan, state: ClusterState,
                 keys: dict[str, Secret]) -> list[_Step]:
    """Every new user (with a key made here) and every caps change (with the user's key as
    observed, so it never changes) in one `auth import`: one auth commit whatever their
    number. The monitor checks the caps first (import itself would take unparsable caps);
    users whose caps it refuses fail, the others are imported."""
    users: list[tuple[str, str, Mapping[str, str], Secret | None]] = []
    for a in plan.actions:
        if isinstance(a, CreateClient):
            users.append((f"+ {a.entity}", a.entity, a.caps, None))
        elif isinstance(a, UpdateCaps):
            users.append((f"~ {a.entity} caps", a.entity, a.after, state.clients[a.entity].key))
    if not users:
        return []

    def run() -> dict[str, Exception]:
        refused = _refused_caps(conn, users)
        # New keys of the type the cluster prefers (aes256k on Tentacle).
        kind = cluster_key_type(conn) if any(key is None for *_, key in users) else None
        wanted = [(part, entity, key or new_key(key_type=kind), caps)
                  for part, entity, caps, key in users if part not in refused]
        if wanted:
            conn.import_keyring(import_keyring_text((e, k, c) for _, e, k, c in wanted))
            keys.update({e: k for _, e, k, _ in wanted})
        return refused

    created = sum(key is None for *_, key in users)
    return [_Step(f"auth import: {created} user(s) created, {len(users) - created} caps "
                  "change(s)", run, tuple(part for part, *_ in users))]


def _refused_caps(conn: CephConnection, users: list[tuple[str, str, Mapping[str, str],
                                                         Secret | None]]
                  ) -> dict[str, Exception]:
    """{part: error} for the users whose caps the monitor refuses: one check of every
    distinct cap string; only when it refuses one, one check per user to name them."""
    pairs = sorted({(daemon, cap) for _, _, caps, _ in users for daemon, cap in caps.items()})
    if caps_refused(conn, pairs) is None:
        return {}
    verdicts = conn.concurrently([lambda caps=caps: caps_refused(conn, sorted(caps.items()))
                                  for _, _, caps, _ in users])
    return {part: CephstackError(f"the monitor refuses the caps of {entity}: {why}",
                                 hint=f"fix the caps of {entity} in the spec")
            for (part, entity, _, _), why in zip(users, verdicts, strict=True) if why}


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
                # observe removed the directory's stale temp files moments ago
                write_atomic(a.path, keyring_text(a.entity, key), a.mode, a.owner, a.group,
                             clean_temps=False)
            steps.append(_Step(f"{a.symbol} keyring {a.path}", write, local=True))
        elif isinstance(a, RemoveRenderedFile) or (isinstance(a, RewriteRenderedFile)
                                                   and not a.item.wanted.pending):
            root = plan.render_directory
            steps.append(_Step(f"{a.symbol} {a.address}",
                               lambda a=a, root=root: _write_rendered(a.item, root), local=True))
        elif isinstance(a, FixKeyringAccess):
            steps.append(_Step(f"~ keyring {a.path}: access", lambda a=a: set_file_access(
                a.path, a.mode, a.owner, a.group), local=True))
    # Trash purge schedules and msgr2 settings (ceph/extras.py): the pools exist by now.
    steps += [_Step(what, run) for what, run in extra_steps(conn, plan.actions)]
    return steps


def _removal_rounds(conn: CephConnection, plan: Plan) -> list[list[_Step]]:
    return [[_Step(what, run) for what, run in r] for r in removals(conn, plan)]


def _write_rendered(item: object, root: str | None) -> None:
    from cephstack.session.drift import write_rendered  # only specs that render need it

    write_rendered(item, root)  # type: ignore[arg-type]


def _run_round(conn: CephConnection, steps: list[_Step], result: ApplyResult,
               progress: Progress) -> None:
    failures: list[tuple[str, Exception]] = []
    lock = threading.Lock()  # progress lines from concurrent steps must not interleave

    def attempt(step: _Step) -> None:
        interrupt.check()  # a safe point: SIGINT/SIGTERM stop here, between steps
        try:
            outcome = step.run()
        except Exception as e:  # collected: the other steps of the round still finish
            with lock:
                failures.extend((part, e) for part in step.parts or (step.what,))
            return
        failed = outcome if step.parts and isinstance(outcome, dict) else {}
        with lock:
            for part in step.parts or (step.what,):
                if part in failed:
                    failures.append((part, failed[part]))
                else:
                    result.done.append(part)
                    progress(f"{part}: done")

    def attempt_all(some: list[_Step]) -> None:
        for step in some:
            attempt(step)

    interrupt.check()
    remote = [s for s in steps if not s.local]
    local = [s for s in steps if s.local]
    # Files on this host: a few threads (their fsyncs overlap), not one per file.
    batches = [local[i::_LOCAL_THREADS] for i in range(min(_LOCAL_THREADS, len(local)))]
    conn.concurrently([lambda s=s: attempt(s) for s in remote]
                      + [lambda b=b: attempt_all(b) for b in batches])
    if failures:
        raise ApplyFailed(result.done, failures)


def apply_plan(conn: CephConnection, plan: Plan, state: ClusterState, *,
               allow_disruptive: bool = False, progress: Progress = lambda _: None,
               pools_created: bool = False) -> ApplyResult:
    """Carry out `plan` (made from `state`). Raises PlanRefused before any change when the
    plan is refused or holds disruptive actions that are not allowed. `pools_created`:
    create_pools has made the plan's new pools already."""
    _check_allowed(plan, allow_disruptive)
    started, sent_before = time.monotonic(), conn.commands_sent
    result = ApplyResult()
    keys: dict[str, Secret] = {}
    snaps: dict[str, int | None] = {}  # pool -> validation snapshot to release
    try:
        if rules := _rule_steps(conn, plan):
            _run_round(conn, rules, result, progress)
        try:
            for make_round in (lambda: _round_one(conn, plan, state, snaps, keys,
                                                  pools_created),
                               lambda: _round_two(conn, plan, snaps)):
                _run_round(conn, make_round(), result, progress)
        finally:  # also after a failed round: what was made stays made
            record_created(conn, plan, state, keys, progress)
        _run_round(conn, _round_three(conn, plan, state, keys, snaps), result, progress)
        if removal_rounds := _removal_rounds(conn, plan):  # --prune: last of all
            try:
                for removal_round in removal_rounds:  # a refused round stops the next
                    _run_round(conn, removal_round, result, progress)
            finally:
                forget_removed(conn, plan, state, result.done, progress)
    finally:
        result.commands_sent = conn.commands_sent - sent_before
        result.seconds = time.monotonic() - started
    return result

