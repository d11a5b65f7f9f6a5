"""What cephstack created, recorded in the cluster itself, and the facts a removal needs.

The records live in the monitors' config-key store under `cephstack/created/` (no key in
any of them), as three JSON documents: `pools` maps each pool to its id (a pool deleted
and made again by hand under the same name has another id, so it is not taken for ours),
`users` lists the users cephstack created, `keyrings/<host>` maps each keyring file apply
wrote on that host to its user. A document is stored in pieces (`<doc>/0`, `<doc>/1`, ...)
under the monitors' 64 KiB value limit, so a change costs a few config-key commits
whatever the number of pools, users or files (one per entity cost 1,000 commits for 1,000
users: 26 s); a document that does not read back whole counts as no record.

apply writes them once its rounds are over (also after a failed round), all at once: one
read of the records and of the new pools' ids, then the changed documents' pieces,
immediate monitor commits (milliseconds, no paxos_propose_interval wait): no dependent
round. Not mid-round: an
immediate commit makes the monitor propose a pending osdmap change at once, which cost an
extra epoch when measured. A run killed before that leaves things unrecorded (never
pruned), never a pool or user cephstack did not make recorded. (Pool application metadata
would show on the pool itself, but the monitor refuses `osd pool application set` until
the `application enable` before it has committed, errno 2 "application 'rbd' is not
enabled" even 0.3 s after it: one more osdmap round, and nothing for pools without rbd.)

Only `--prune` reads the rest: what each candidate pool holds, the monitors' sessions
(who is connected with a candidate user) and whether the monitors allow pool deletion.
"""

from __future__ import annotations

import errno as errnos
import json
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephCommandError, CephstackError, PermissionDenied
from cephstack.keyfiles import read_keyring_file
from cephstack.plan.state import ClusterState, Created, PoolContents, PruneFacts, RecordedKeyring
from cephstack.spec.load import Spec

PREFIX = "cephstack/created/"
POOLS, USERS, KEYRINGS = "pools", "users", "keyrings/"
PIECE = 60_000  # characters per config-key value (mon_config_key_max_entry_size: 64 KiB)
SNAPSHOT_COUNT_LIMIT = 32  # images whose snapshots are counted (a refusal needs only one)


def _host() -> str:
    return socket.gethostname()


def _documents(dump: object) -> dict[str, tuple[object, int]]:
    """{document: (its JSON, its number of pieces)} from `config-key dump` of PREFIX. A
    document with a piece missing or that does not parse is left out (no record)."""
    pieces: dict[str, dict[int, str]] = {}
    for key, value in (dump if isinstance(dump, dict) else {}).items():
        doc, _, n = str(key).removeprefix(PREFIX).rpartition("/")
        if doc and n.isdigit() and isinstance(value, str):
            pieces.setdefault(doc, {})[int(n)] = value
    out: dict[str, tuple[object, int]] = {}
    for doc, parts in pieces.items():
        try:
            out[doc] = (json.loads("".join(parts[i] for i in range(len(parts)))), len(parts))
        except (KeyError, ValueError):
            continue
    return out


def parse_created(dump: object, host: str | None = None) -> Created:
    """The records from `config-key dump cephstack/created/`; unreadable ones are ignored
    (the safe way: what is not recorded is never removed). Keyring records of other hosts
    name files elsewhere: left out. Whether each keyring file is still there: one lstat."""
    docs = _documents(dump)
    pools: dict[str, int] = {}
    keyrings: dict[str, RecordedKeyring] = {}
    try:
        pools = {str(n): int(i) for n, i in dict(docs.get(POOLS, ({}, 0))[0]).items()}
    except (TypeError, ValueError):
        pools = {}
    users = docs.get(USERS, ([], 0))[0]
    users = frozenset(str(u) for u in users) if isinstance(users, list) else frozenset()
    mine = docs.get(KEYRINGS + (host or _host()), ({}, 0))[0]
    if isinstance(mine, dict):
        keyrings = {str(path): RecordedKeyring(str(entity), os.path.lexists(str(path)))
                    for path, entity in mine.items()}
    return Created(pools, users, keyrings)


def read_created(conn: CephConnection) -> object:
    """The raw records (parse_created reads them): one mon command. A client not allowed
    to read them sees no record, so nothing is taken for cephstack's own."""
    try:
        return conn.mon("config-key dump", key=PREFIX)
    except PermissionDenied:
        return None


def _holds_key(path: str, entity: str) -> bool:
    try:
        return read_keyring_file(path, entity).key is not None
    except CephstackError:  # a link or FIFO there now: not what apply wrote
        return False


# -- writing records (apply) --------------------------------------------------------


def update_records(conn: CephConnection, pools: Mapping[str, int | None] = {},
                   users: Mapping[str, bool] = {}, keyrings: Mapping[str, str | None] = {}
                   ) -> None:
    """Add (a value) or forget (None/False) records: pools by name -> id, users by entity,
    this host's keyring files by path -> entity. One read, then the pieces of the changed
    documents, all at once. Under the run lock: nobody else writes them meanwhile."""
    if not (pools or users or keyrings):
        return
    docs = _documents(read_created(conn))
    keyring_doc = KEYRINGS + _host()
    changes = {POOLS: {n: i for n, i in pools.items()},
               USERS: {e: (True if keep else None) for e, keep in users.items()},
               keyring_doc: {os.path.abspath(p): e for p, e in keyrings.items()}}
    calls: list[Callable[[], object]] = []
    for doc, change in changes.items():
        if not change:
            continue
        old, pieces = docs.get(doc, ({} if doc != USERS else [], 0))
        current = dict.fromkeys(old, True) if doc == USERS else dict(old)  # type: ignore[arg-type]
        for name, value in change.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value
        data = sorted(current) if doc == USERS else dict(sorted(current.items()))
        calls += _write_document(conn, doc, data, pieces)
    if calls:
        conn.concurrently(calls)


def _write_document(conn: CephConnection, doc: str, data: object, had: int
                    ) -> list[Callable[[], object]]:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    parts = [text[i:i + PIECE] for i in range(0, len(text), PIECE)] or ["{}"]
    sets = [lambda k=f"{PREFIX}{doc}/{n}", v=v: conn.mon("config-key set", key=k, val=v)
            for n, v in enumerate(parts)]
    return sets + [lambda k=f"{PREFIX}{doc}/{n}": _forget_key(conn, k)
                   for n in range(len(parts), had)]


def _forget_key(conn: CephConnection, key: str) -> None:
    try:
        conn.mon("config-key rm", key=key)
    except CephCommandError as e:
        if e.errno != errnos.ENOENT:
            raise


def record_created(conn: CephConnection, pools: Iterable[str], users: Iterable[str],
                   keyring_files: Iterable[tuple[str, str]]) -> None:
    """Record new pools (by the id they got: one read), users and keyring files
    ((path, entity) written on this host)."""
    wanted = set(pools)
    detail = (conn.mon("osd pool ls", detail="detail") or []) if wanted else []
    update_records(conn, {p["pool_name"]: int(p["pool_id"]) for p in detail
                          if p.get("pool_name") in wanted},
                   dict.fromkeys(users, True), dict(keyring_files))


def forget_records(conn: CephConnection, forgotten: Iterable[tuple[str, str]]) -> None:
    """Forget ("pool" | "user" | "keyring", name) records: what --prune removed, or what
    was found gone."""
    by_kind: dict[str, dict] = {"pool": {}, "user": {}, "keyring": {}}
    for kind, name in forgotten:
        by_kind[kind][name] = None
    if any(by_kind.values()):
        update_records(conn, by_kind["pool"], by_kind["user"], by_kind["keyring"])


# -- removing (apply --prune) -------------------------------------------------------


def remove_pool(conn: CephConnection, name: str) -> None:
    conn.mon("osd pool delete", pool=name, pool2=name, yes_i_really_really_mean_it=True)


def remove_user(conn: CephConnection, entity: str) -> None:
    conn.mon("auth rm", entity=entity)


def remove_keyring(conn: CephConnection, path: str) -> None:
    from pathlib import Path

    Path(path).unlink(missing_ok=True)  # unlink never follows a link


# -- what a removal needs to know (plan/apply --prune) --------------------------------


def _pool_contents(conn: CephConnection, pool: str) -> PoolContents:
    """Images, snapshots (the pool's own, and those of its first images) and trash."""
    images = conn.rbd("list", pool)
    trash = list(conn.rbd("trash_list", pool))
    with conn.ioctx(pool) as ioctx:
        snapshots = len(list(ioctx.list_snaps()))
    for name in images[:SNAPSHOT_COUNT_LIMIT]:
        with conn.image(pool, name, read_only=True) as image:
            snapshots += len(list(image.list_snaps()))
    return PoolContents(len(images), snapshots, len(trash),
                        snapshots_partial=len(images) > SNAPSHOT_COUNT_LIMIT)


def _targeted(conn: CephConnection, mon: str, prefix: str, **args: object) -> object:
    """A command one monitor answers itself (`ceph tell mon.<name> ...`): its sessions,
    its running configuration. CephConnection.mon goes to any monitor, so this sends it
    with the binding's target (adapter.py stays as it is: it is over its size budget)."""
    conn.checkpoint()
    with conn._count_lock:
        conn.commands_sent += 1
    cmd = json.dumps({"prefix": prefix, "format": "json", **args})
    what = f"{prefix} (mon.{mon})"
    with conn._translated(what, None):
        ret, out, text = conn._cluster.mon_command(cmd, b"", target=mon)
    if ret != 0:
        raise conn._typed(what, ret, text.strip(), "the monitors")
    return json.loads(out) if out else None


def _mon_facts(conn: CephConnection, mon: str) -> tuple[list[str], bool]:
    """(client entity of each session, mon_allow_pool_delete) as this monitor has them."""
    sessions = _targeted(conn, mon, "sessions") or []
    allowed = _targeted(conn, mon, "config get", var="mon_allow_pool_delete") or {}
    value = str(allowed.get("mon_allow_pool_delete", "false")).lower()
    return ([str(s.get("entity_name", "")) for s in sessions
             if isinstance(s, dict) and s.get("con_type") == "client"],
            value in ("true", "1", "yes"))


def read_prune_facts(conn: CephConnection, pools: Iterable[str], users: Iterable[str],
                     keyrings: Iterable[tuple[str, str]], monmap: dict | None = None
                     ) -> PruneFacts:
    """For the candidates only: what each pool holds, the sessions of each user (every
    monitor asked: a client keeps its session with one of them), whether every monitor
    allows pool deletion, and whether each keyring file (path, entity) still holds its
    user's key. The cluster reads at once."""
    pools, users = list(pools), list(users)
    if not pools and not users:
        return PruneFacts({}, {}, None, {path: _holds_key(path, e) for path, e in keyrings})
    mons = [m["name"] for m in (monmap or conn.mon("mon dump")).get("mons", [])]
    contents = conn.concurrently([lambda p=p: _pool_contents(conn, p) for p in pools])
    per_mon = conn.concurrently([lambda m=m: _mon_facts(conn, m) for m in mons])
    sessions = {u: sum(entities.count(u) for entities, _ in per_mon) for u in users}
    return PruneFacts(dict(zip(pools, contents, strict=True)), sessions,
                      all(allowed for _, allowed in per_mon) if per_mon else None,
                      {path: _holds_key(path, entity) for path, entity in keyrings})


def observe_with_records(conn: CephConnection, observe: Callable[[], ClusterState],
                         spec: Spec, prune: bool) -> ClusterState:
    """observe() and the records read at the same time (plan and apply need them, the
    other commands not), then, for --prune, what it needs about its candidates."""
    state, dump = conn.concurrently([observe, lambda: read_created(conn)])
    state = replace(state, created=parse_created(dump))
    if not prune:
        return state
    from cephstack.plan.prune import candidates
    from cephstack.spec.catalog import desired_clients

    found = candidates(spec, state, desired_clients(spec))
    return replace(state, prune=read_prune_facts(conn, found.pools, found.users,
                                                 found.keyrings, state.monmap or None))
