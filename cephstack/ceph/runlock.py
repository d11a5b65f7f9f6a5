"""One cephstack run at a time where it matters: an advisory lock in the monitors'
config-key store.

Why there: it needs only the monitors, which every command needs anyway. It works on a
cluster with no pool at all, and while OSDs are down or a pool's placement groups cannot
be served (a lock object in a pool, even with cls_lock, would wait on exactly the OSDs
whose failure the run must report, and needs a pool that exists before any of ours:
`device_health_metrics` only exists once the manager created it). The monitors commit
through Paxos, so every `config-key` read after a committed write sees it.

The protocol, for each run: write our own record `cephstack/lock/<host>.<pid>.<token>`,
then read every record under `cephstack/lock/`. A conflicting live record (any other for
an exclusive holder, an exclusive one for a shared holder) means we remove ours, look
again a moment later (a run that started at the same moment has withdrawn its record by
then; a holder has not), and fail, or with --lock-wait keep looking and try again once
it is gone. Two runs can both back off, never both proceed: of two writes, the later
one's reader sees the earlier record. `apply` holds it exclusively; `verify` shares
it with other verifies (they only touch what carries their own run marker) and its
record names its run, so `verify --cleanup` never touches a live run.

A record is live while its holder is: on the same host, while its pid (with the same
start time) exists; elsewhere, until `ttl` seconds after its last renewal (every
`ttl / 3` s while held). A holder that was killed therefore frees the lock at once for
runs on its host and after the ttl for others (hosts running cephstack keep NTP time, as
Ceph itself requires). Stale records are removed by whoever finds them.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from cephstack import interrupt
from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephstackError, LockHeld, PermissionDenied

PREFIX = "cephstack/lock/"
EXCLUSIVE, SHARED = "exclusive", "shared"
TTL = 90.0
POLL = 1.0  # seconds between reads while waiting (reads commit nothing)


_BEHIND = 0.02  # seconds between sending acquire's `alongside` work and our record


def _pid_start(pid: int) -> str | None:
    """The start time of a process (clock ticks since boot), to tell a recycled pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


@dataclass(frozen=True)
class Holder:
    key: str
    command: str
    mode: str
    host: str
    pid: int
    pid_start: str | None
    since: float  # wall clock (epoch seconds)
    renewed: float
    ttl: float
    run: str | None = None  # verify's run id

    @classmethod
    def parse(cls, key: str, value: str) -> Holder | None:
        try:
            data = json.loads(value)
            return cls(key=key, command=str(data["command"]), mode=str(data["mode"]),
                       host=str(data["host"]), pid=int(data["pid"]),
                       pid_start=data.get("pid_start"), since=float(data["since"]),
                       renewed=float(data["renewed"]), ttl=float(data["ttl"]),
                       run=data.get("run"))
        except (ValueError, KeyError, TypeError):
            return None

    def value(self) -> str:
        data = asdict(self)
        del data["key"]
        return json.dumps(data, sort_keys=True)

    def alive(self, now: float | None = None) -> bool:
        if self.host == socket.gethostname() and self.pid_start is not None:
            return _pid_start(self.pid) == self.pid_start
        return (now if now is not None else time.time()) - self.renewed <= self.ttl

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        run = f", verify run {self.run}" if self.run else ""
        return (f"cephstack {self.command} (pid {self.pid} on {self.host}{run}, since "
                f"{since}, renewed {max(0, time.time() - self.renewed):.0f} s ago)")

    def as_json(self) -> dict[str, object]:
        return {"command": self.command, "mode": self.mode, "host": self.host,
                "pid": self.pid, "since": self.since, "run": self.run}


def holders(conn: CephConnection) -> list[Holder]:
    """Every lock record (live or not). Unreadable records are ignored."""
    dump = conn.mon("config-key dump", key=PREFIX) or {}
    if not isinstance(dump, dict):
        return []
    found = [Holder.parse(k, v) for k, v in dump.items() if k.startswith(PREFIX)]
    return [h for h in found if h is not None]


def remove_stale(conn: CephConnection, records: list[Holder]) -> None:
    for h in records:
        if not h.alive():
            with contextlib.suppress(CephstackError):
                conn.mon("config-key rm", key=h.key)


def _conflicts(mode: str, other: Holder) -> bool:
    return mode == EXCLUSIVE or other.mode == EXCLUSIVE


class RunLock:
    def __init__(self, conn: CephConnection, command: str, mode: str,
                 run: str | None = None, ttl: float = TTL) -> None:
        host, pid = socket.gethostname(), os.getpid()
        now = time.time()
        self.conn = conn
        self.me = Holder(key=f"{PREFIX}{host}.{pid}.{secrets.token_hex(4)}", command=command,
                         mode=mode, host=host, pid=pid, pid_start=_pid_start(pid), since=now,
                         renewed=now, ttl=ttl, run=run)
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._unregister = None
        self._keep = False
        self.held = False
        self.ran_alongside = False  # see acquire

    # -- acquire / release ------------------------------------------------------------

    def _write(self) -> None:
        try:
            self.conn.mon("config-key set", key=self.me.key, val=self.me.value())
        except PermissionDenied as e:
            e.hint = (f"{self.conn.access.client} needs mon caps for `config-key` (cephstack's "
                      "run lock lives there): use an admin client")
            raise

    def _live_conflicts(self) -> list[Holder]:
        records = holders(self.conn)
        remove_stale(self.conn, [h for h in records if h.key != self.me.key])
        return [h for h in records if h.key != self.me.key and h.alive()
                and _conflicts(self.me.mode, h)]

    def acquire(self, wait: float = 0.0, alongside: Callable[[], object] | None = None
                ) -> bool:
        """Take the lock, waiting at most `wait` seconds for a holder to finish.
        `alongside`: work sent with the first write of our record instead of after the
        lock is held (its monitor round then starts at once, not a proposal interval
        after our record's commit), only when a first look finds no holder; it must be
        safe whoever wins the race that look cannot see. Returns whether it ran."""
        started = time.monotonic()
        ran = written = alongside is not None and not self._live_conflicts()
        if ran:
            def write_behind() -> None:
                # Our record a moment after `alongside` is sent: the monitor then prepares
                # that first, so its proposal is not held back by this (immediate) commit.
                interrupt.sleep(_BEHIND)
                self._write()

            self.conn.concurrently([alongside, write_behind])  # type: ignore[list-item]
        while True:
            if not written:
                self._write()
            written = False
            conflicts = self._live_conflicts()
            if not conflicts:
                self.held = True
                self._unregister = interrupt.on_abandon(self.release)
                self._renewer = threading.Thread(target=self._renew, daemon=True,
                                                 name="cephstack-lock-renewal")
                self._renewer.start()
                return ran
            with contextlib.suppress(CephstackError):  # back off: ours must not block them
                self.conn.mon("config-key rm", key=self.me.key)
            # Look again (reading only) a random moment later: a run that started with ours
            # has withdrawn by then, a holder has not. Keep looking while --lock-wait lasts.
            interrupt.sleep(random.uniform(0.1, 0.4))
            while conflicts := self._live_conflicts():
                if time.monotonic() - started >= wait:
                    raise self._held(conflicts, wait)
                interrupt.sleep(POLL)

    def _held(self, conflicts: list[Holder], wait: float) -> LockHeld:
        first = min(conflicts, key=lambda h: h.since)
        waited = f" (waited {wait:g} s)" if wait else ""
        return LockHeld(
            f"another run holds the cluster's cephstack lock{waited}: {first.describe()}",
            hint=f"wait for it to finish, or pass --lock-wait SECONDS; a run that was killed "
                 f"frees the lock at once on its host, else {first.ttl:g} s after its last "
                 f"renewal (record {first.key} in the monitors' config-key store)",
            holders=[h.as_json() for h in conflicts])

    def _renew(self) -> None:
        interval = self.me.ttl / 3
        while not self._stop.wait(interval):
            renewed = Holder(**{**asdict(self.me), "renewed": time.time()})
            with contextlib.suppress(CephstackError):
                self.conn.mon("config-key set", key=self.me.key, val=renewed.value())
                self.me = renewed

    def keep_record(self) -> None:
        """Leave the record when released: it names a run whose leftovers `verify
        --cleanup` must find (it is stale, so it blocks nobody, once this process ends)."""
        self._keep = True

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        self._stop.set()
        if self._unregister is not None:
            self._unregister()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join(2.0)  # a renewal in flight must not recreate the record
        if self.conn.monitors_lost or self._keep:
            return  # the record goes stale by itself; do not wait another timeout for it
        with contextlib.suppress(CephstackError):
            self.conn.mon("config-key rm", key=self.me.key)


@contextlib.contextmanager
def hold(conn: CephConnection, command: str, mode: str, wait: float = 0.0,
         run: str | None = None, alongside: Callable[[], object] | None = None
         ) -> Iterator[RunLock]:
    lock = RunLock(conn, command, mode, run)
    lock.ran_alongside = lock.acquire(wait, alongside)
    try:
        yield lock
    finally:
        lock.release()
