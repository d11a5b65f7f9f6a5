"""What cephstack created, recorded in the cluster itself, and the facts a removal needs.

The records live in the monitors' config-key store under `cephstack/created/spec/<owner>/`
(no key in any of them), one set per spec (Spec.records_owner: its `id:`), so two specs on
one cluster never prune each other. Three JSON documents: `pools` maps each pool to its id
and creation time (a pool deleted and made again by hand under the same name has others,
so it is not taken for ours), `users` maps each user cephstack created to the caps it gave
it, `keyrings/<host>` maps each keyring file apply wrote on that host to its user. Records
are claims: prune acts on one only while the facts bear it out (plan/prune.py). Records
from before they were kept per spec (`cephstack/created/pools` ...) are never pruned until
`cephstack records adopt` makes them a spec's. A document is stored in pieces (`<doc>/0`,
`<doc>/1`, ...) under the monitors' 64 KiB value limit, so a change costs a few config-key
commits whatever the number of pools, users or files (one per entity cost 1,000 commits for
1,000 users: 26 s); a document that does not read back whole counts as no record.

apply writes them between its rounds two and three (also after a failed round), all at
once: one read of the records and of the new pools' ids, then the changed documents'
pieces, immediate monitor commits (milliseconds, no paxos_propose_interval wait). Not
mid-round: an immediate commit makes the monitor propose a pending osdmap change at once,
which cost an extra epoch when measured. A run killed before that leaves things
unrecorded (never pruned), never a pool or user cephstack did not make recorded.

Only `--prune` reads the rest: what each candidate pool holds (every object, in every
namespace), the monitors' sessions (who is connected with a candidate user) and whether
the monitors allow pool deletion.
"""

from __future__ import annotations

import errno as errnos
import json
import os
import socket
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephCommandError, CephstackError, PermissionDenied
from cephstack.keyfiles import read_keyring_file
from cephstack.plan.state import (
    ClusterState,
    Created,
    PoolContents,
    PruneFacts,
    RecordedKeyring,
    RecordedPool,
)
from cephstack.spec.load import Spec

PREFIX = "cephstack/created/"
POOLS, USERS, KEYRINGS = "pools", "users", "keyrings/"
SPECS = "spec/"  # spec/<owner>/<document>: each spec's own records
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


def _mine(owner: str) -> str:
    return f"{SPECS}{owner}/"


def parse_created(dump: object, owner: str = "", host: str | None = None,
                  keyring_dir: str = "") -> Created:
    """This spec's records (by `owner`, Spec.records_owner) from `config-key dump
    cephstack/created/`; unreadable ones are ignored (the safe way: what is not recorded
    is never removed). Other specs' records, and those from before records were kept per
    spec, are only named (Created.others). Keyring records of other hosts name files
    elsewhere: left out. Each keyring file of this host: one lstat, its links resolved."""
    docs = _documents(dump)
    mine = _mine(owner)
    pools, times, caps, keyrings = {}, {}, {}, {}
    raw_pools = docs.get(mine + POOLS, ({}, 0))[0]
    for name, rec in (raw_pools.items() if isinstance(raw_pools, dict) else ()):
        if isinstance(rec, dict) and type(rec.get("id")) is int:  # not a bool
            pools[str(name)], times[str(name)] = rec["id"], str(rec.get("created", ""))
    raw_users = docs.get(mine + USERS, ({}, 0))[0]
    for entity, given in (raw_users.items() if isinstance(raw_users, dict) else ()):
        if isinstance(given, dict) and all(isinstance(v, str) for v in given.values()):
            caps[str(entity)] = {str(k): v for k, v in given.items()}
    files = docs.get(mine + KEYRINGS + (host or _host()), ({}, 0))[0]
    for path, entity in (files.items() if isinstance(files, dict) else ()):
        if isinstance(entity, str) and os.path.isabs(path) and path.isprintable():
            keyrings[path] = _keyring_record(path, entity)  # else: no file of ours
    return Created(pools, frozenset(caps), keyrings, times, caps, keyring_dir,
                   _others(docs, owner), owner)


def _keyring_record(path: str, entity: str) -> RecordedKeyring:
    try:
        regular = stat.S_ISREG(os.lstat(path).st_mode)
        exists = True
    except (OSError, ValueError):
        regular = exists = False
    try:
        real = os.path.realpath(path, strict=False)
    except (OSError, ValueError):
        real = ""
    return RecordedKeyring(entity, exists, real, regular)


def _by_owner(docs: Mapping[str, tuple[object, int]]) -> dict[str, dict[str, list[str]]]:
    """{owner: {"pools": [...], "users": [...]}} ("" for the records from before records
    were kept per spec)."""
    out: dict[str, dict[str, list[str]]] = {}
    for doc, (data, _) in docs.items():
        who, _, kind = doc.removeprefix(SPECS).rpartition("/") if doc.startswith(SPECS) \
            else ("", "", doc)
        if kind in (POOLS, USERS) and isinstance(data, dict | list):
            out.setdefault(who, {POOLS: [], USERS: []})[kind] = sorted(map(str, data))
    return dict(sorted(out.items()))


def _others(docs: Mapping[str, tuple[object, int]], owner: str) -> dict[str, tuple[str, ...]]:
    """{owner: ("pool x", "client.y", ...)} of the records that are not `owner`'s."""
    return {who: tuple(sorted([f"pool {p}" for p in had[POOLS]] + had[USERS]))
            for who, had in _by_owner(docs).items()
            if who != owner and (had[POOLS] or had[USERS])}


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


def update_records(conn: CephConnection, owner: str,
                   pools: Mapping[str, RecordedPool | None] = {},
                   users: Mapping[str, Mapping[str, str] | None] = {},
                   keyrings: Mapping[str, str | None] = {}) -> None:
    """Add (a value) or forget (None) `owner`'s records: pools by name, users by entity
    with the caps cephstack gave them, this host's keyring files by path -> entity. One
    read, then the pieces of the changed documents, all at once. Under the run lock:
    nobody else writes them meanwhile."""
    if not (pools or users or keyrings):
        return
    docs = _documents(read_created(conn))
    mine = _mine(owner)
    changes = {mine + POOLS: {n: (None if r is None else {"id": r.id, "created": r.created})
                              for n, r in pools.items()},
               mine + USERS: {e: (None if c is None else dict(c)) for e, c in users.items()},
               mine + KEYRINGS + _host(): {os.path.abspath(p): e for p, e in keyrings.items()}}
    calls: list[Callable[[], object]] = []
    for doc, change in changes.items():
        if not change:
            continue
        old, pieces = docs.get(doc, ({}, 0))
        current = dict(old) if isinstance(old, dict) else {}
        for name, value in change.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value
        calls += _write_document(conn, doc, dict(sorted(current.items())), pieces)
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


def record_created(conn: CephConnection, owner: str, pools: Iterable[str],
                   users: Mapping[str, Mapping[str, str]],
                   keyring_files: Iterable[tuple[str, str]]) -> None:
    """Record new pools (by the id and creation time they got: one read), users (with
    the caps they were given) and keyring files ((path, entity) written on this host)."""
    wanted = set(pools)
    detail = (conn.mon("osd pool ls", detail="detail") or []) if wanted else []
    update_records(conn, owner, {p["pool_name"]: RecordedPool(int(p["pool_id"]),
                                                              str(p.get("create_time", "")))
                                 for p in detail if p.get("pool_name") in wanted},
                   users, dict(keyring_files))


def forget_records(conn: CephConnection, owner: str,
                   forgotten: Iterable[tuple[str, str]]) -> None:
    """Forget ("pool" | "user" | "keyring", name) records of `owner`: what --prune
    removed, or what was found gone."""
    by_kind: dict[str, dict] = {"pool": {}, "user": {}, "keyring": {}}
    for kind, name in forgotten:
        by_kind[kind][name] = None
    if any(by_kind.values()):
        update_records(conn, owner, by_kind["pool"], by_kind["user"], by_kind["keyring"])


def adopt_old_records(conn: CephConnection, owner: str) -> dict[str, list[str]]:
    """Make the records from before records were kept per spec `owner`'s: the pools that
    still have their recorded id (with their creation time), the users that still exist
    (with the caps they have now: the operator vouches for them), this host's keyring
    files; then drop the old documents (other hosts' keyring records: adopt there)."""
    docs = _documents(read_created(conn))
    old_pools = docs.get(POOLS, ({}, 0))[0]
    old_users = docs.get(USERS, ([], 0))[0]
    old_files = docs.get(KEYRINGS + _host(), ({}, 0))[0]
    detail = {p["pool_name"]: p for p in conn.mon("osd pool ls", detail="detail") or []}
    caps = {e["entity"]: e.get("caps", {}) for e in conn.mon("auth ls")["auth_dump"]}
    pools = {str(n): RecordedPool(int(i), str(detail[n].get("create_time", "")))
             for n, i in (old_pools.items() if isinstance(old_pools, dict) else ())
             if n in detail and isinstance(i, int) and detail[n]["pool_id"] == i}
    users = {str(e): caps[e] for e in (old_users if isinstance(old_users, list) else ())
             if e in caps}
    files = {str(p): str(e) for p, e in (old_files.items() if isinstance(old_files, dict)
                                         else ())}
    update_records(conn, owner, pools, users, files)
    conn.concurrently([lambda d=d: [_forget_key(conn, f"{PREFIX}{d}/{n}")
                                    for n in range(docs[d][1])]
                       for d in (POOLS, USERS, KEYRINGS + _host()) if d in docs])
    return {"pools": sorted(pools), "users": sorted(users), "keyrings": sorted(files)}


def list_records(conn: CephConnection) -> dict[str, dict[str, list[str]]]:
    """Every spec's records on this cluster, by owner (see _by_owner)."""
    return _by_owner(_documents(read_created(conn)))


# -- removing (apply --prune) -------------------------------------------------------


def remove_pool(conn: CephConnection, name: str) -> None:
    conn.mon("osd pool delete", pool=name, pool2=name, yes_i_really_really_mean_it=True)


def remove_user(conn: CephConnection, entity: str) -> None:
    conn.mon("auth rm", entity=entity)


def remove_keyring(conn: CephConnection, path: str) -> None:
    from pathlib import Path

    Path(path).unlink(missing_ok=True)  # unlink never follows a link


# -- what a removal needs to know (plan/apply --prune) --------------------------------


# What `rbd pool init` and RBD's own use leave in an empty pool's default namespace: a
# pool holding only these, without an omap entry, holds no image, namespace or trash.
RBD_BOOKKEEPING = frozenset({"rbd_info", "rbd_directory", "rbd_trash", "rbd_children",
                             "rbd_mirroring", "rbd_namespace"})
# ... and where a pool's RBD settings and daemons' state live, entries and all: mirroring
# (mode, site name, peers; each rbd-mirror daemon's rbd_mirror_instance.<id>) and the
# manager's schedules (measured on Pacific). No data: a mirrored image is an image,
# counted on its own.
RBD_SETTINGS = ("rbd_mirroring", "rbd_mirror_leader", "rbd_mirror_snapshot_schedule",
                "rbd_trash_purge_schedule", "rbd_mirror_instance.")
OBJECT_LIST_LIMIT = 64  # enough to name a few and prove the pool is not empty


def _pool_contents(conn: CephConnection, pool: str) -> PoolContents:
    """Images, snapshots (the pool's own, and those of its first images), trash, and every
    RADOS object in any namespace beyond RBD's empty bookkeeping (plain objects, omap-only
    objects, images in namespaces): emptiness as Ceph would see it."""
    images = conn.rbd("list", pool)
    trash = list(conn.rbd("trash_list", pool))
    with conn.ioctx(pool) as ioctx:
        snapshots = len(list(ioctx.list_snaps()))
    for name in images[:SNAPSHOT_COUNT_LIMIT]:
        with conn.image(pool, name, read_only=True) as image:
            snapshots += len(list(image.list_snaps()))
    listed = conn.pool_objects(pool, OBJECT_LIST_LIMIT)
    data = [(ns, name) for ns, name, omap in listed if ns or not (
        name.startswith(RBD_SETTINGS) or (name in RBD_BOOKKEEPING and not omap))]
    return PoolContents(len(images), snapshots, len(trash),
                        snapshots_partial=len(images) > SNAPSHOT_COUNT_LIMIT,
                        objects=len(data), namespaces=tuple(sorted({ns for ns, _ in data})),
                        objects_partial=len(listed) >= OBJECT_LIST_LIMIT)


def _targeted(conn: CephConnection, mon: str, prefix: str, **args: object) -> object:
    """A command one monitor answers itself (`ceph tell mon.<name> ...`): its sessions,
    its running configuration."""
    return conn.mon(prefix, target=mon, **args)


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
    keyring_dir = os.path.realpath(spec.keyrings.directory) if spec.keyrings.manage else ""
    state = replace(state, created=parse_created(dump, spec.records_owner,
                                                 keyring_dir=keyring_dir))
    if not prune:
        return state
    from cephstack.plan.prune import candidates
    from cephstack.spec.catalog import desired_clients

    found = candidates(spec, state, desired_clients(spec))
    return replace(state, prune=read_prune_facts(conn, found.pools, found.users,
                                                 found.keyrings, state.monmap or None))
