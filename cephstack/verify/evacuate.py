"""Evacuate: a host holding a guest disk dies; another host must take the disk over.

A process opens the disk as Nova and writes (taking the exclusive lock), then is killed
with SIGKILL, as a hypervisor crash. Then, by default, the fencing path an operator takes
(`cephstack fence ADDR --yes`), here as Nova's own user, whose mon 'profile rbd' allows it:
blocklist the dead client's instance address (IP:PORT/NONCE, read from its lock), then
break its lock. A second process, also as Nova, writes to the same disk: at once, since no
lock is held any more and the OSDs refuse the dead client.

With `wait=True` (`verify --evacuate-wait`), librbd's own automatic path instead: the
second process starts right after the crash; librbd asks the owner to release the lock,
the dead owner never answers, and its watch lingers until the OSD drops it
(osd_client_watch_timeout, 30 s by default): that bounds the takeover. Then librbd
blocklists the dead owner, which needs mon 'profile rbd' too, and breaks the lock.

Either way the takeover starts first and the other workflows run while the second host
works or waits (start() then finish()).
"""

from __future__ import annotations

import select
import subprocess
import sys
import time

from cephstack import interrupt
from cephstack.ceph import fencing
from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephstackError, OpTimedOut, PermissionDenied
from cephstack.fence import LockOutcome
from cephstack.verify.runner import CheckFailed, Explanation, Runner, expect
from cephstack.verify.workflows import Context, MiB

TAKEOVER_LIMIT = 90.0  # seconds: three times the OSD's default watch timeout
STEP = "evacuate: take over a crashed host's disk"
FENCE, WAIT = "fence", "wait"  # the takeover's path: fenced as an operator would, or librbd's


class Takeover:
    def __init__(self, ctx: Context, wait: bool = False) -> None:
        self.ctx = ctx
        self.path = WAIT if wait else FENCE
        self.fenced = ""  # the dead client's address, blocklisted (fence path)
        self.spawned = 0.0  # when the second host started (after the fence, if any)
        self.pool = ctx.spec.services["nova"].pools[0]
        self.disk = f"{ctx.names.uuid()}_disk"
        self.taker: subprocess.Popen[str] | None = None
        self.started = 0.0
        self.error: CephstackError | None = None
        self.seconds: float | None = None

    def _probe(self, mode: str) -> list[str]:
        access = self.ctx.service_access(self.ctx.identities["nova"])
        return [sys.executable, "-m", "cephstack.ceph.lockprobe", mode, access.conf,
                str(access.keyring), access.client, self.pool, self.disk,
                f"{access.connect_timeout:g}", f"{access.op_timeout:g}"]

    def start(self) -> None:
        """Crash the first host and let the second one start waiting for the lock."""
        try:
            conn = self.ctx.conn("nova")
            conn.rbd("create", self.pool, self.disk, 8 * MiB, 22, old_format=False,
                     features=conn.features("layering", "exclusive_lock"))
            holder = subprocess.Popen(self._probe("hold"), stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)
            try:
                access = self.ctx.service_access(self.ctx.identities["nova"])
                deadline = time.monotonic() + access.connect_timeout + 2 * access.op_timeout
                ready: list[object] = []
                while not ready and time.monotonic() < deadline and holder.poll() is None:
                    interrupt.check()
                    ready, _, _ = select.select([holder.stdout], [], [], 0.2)
                line = holder.stdout.readline().strip() if ready else ""
                expect(line == "locked", f"the first host could not take the disk: {line!r}")
            finally:
                holder.kill()  # SIGKILL: no clean release, as in a crash
                holder.wait()
            self.started = time.monotonic()
            if self.path == FENCE:
                self._fence()
            self.spawned = time.monotonic()
            self.taker = subprocess.Popen(self._probe("take"), stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True)
        except CephstackError as e:
            self.error = e

    def _fence(self) -> None:
        """What `cephstack fence <instance> --yes` does, as Nova's user on a connection of
        its own (breaking a lock turns off librbd's own blocklisting on it): blocklist the
        dead holder's address, then break its lock."""
        access = self.ctx.service_access(self.ctx.identities["nova"])
        with CephConnection(access, interruptible=True) as conn:
            held = fencing.lockers(conn, self.pool, self.disk)
            expect(bool(held), "the crashed host's lock is not on the disk")
            addresses = sorted({lock.address for lock in held})
            fencing.blocklist(conn, addresses)
            done = fencing.break_locks(conn, [
                LockOutcome(self.pool, self.disk, lock.entity, lock.cookie, lock.address)
                for lock in held])
            expect(all(o.freed for o in done),
                   "; ".join(f"lock of {o.entity} not broken: {o.note}" for o in done
                             if not o.freed))
        self.fenced = ", ".join(addresses)

    def finish(self) -> str:
        if self.error is not None:
            raise self.error
        assert self.taker is not None
        while True:  # in short slices: SIGINT/SIGTERM must not wait for the takeover
            interrupt.check()
            try:
                out, _ = self.taker.communicate(timeout=min(
                    0.2, max(0.0, self.started + TAKEOVER_LIMIT - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() < self.started + TAKEOVER_LIMIT:
                    continue
                self.taker.kill()
                self.taker.wait()
                raise CheckFailed(f"the second host could not write within "
                                  f"{TAKEOVER_LIMIT:g} s: evacuate hangs") from None
        elapsed = time.monotonic() - self.started
        out = out.strip()
        if self.taker.returncode != 0:
            errno = int(out.split("errno=")[1].split(":")[0]) if "errno=" in out else 0
            error = f"write after the host crash failed after {elapsed:.1f} s: {out}"
            if errno in (1, 13):
                raise PermissionDenied("write (lock takeover)", errno, error)
            if errno == 110:
                raise OpTimedOut("write (lock takeover)", errno, error,
                                 f"the OSDs of pool '{self.pool}' (or the monitors)",
                                 self.ctx.service_access(self.ctx.identities["nova"]).op_timeout)
            raise CephstackError(error)
        # The second host prints the time from its start to its write (its own Python
        # start-up aside); the takeover counts from the crash, the fence included. Its
        # output is read only once the other workflows are done, so `elapsed` is no measure.
        self.seconds = (self.spawned - self.started + float(out)
                        if out.replace(".", "").isdigit() else elapsed)
        if self.path == FENCE:
            return (f"second host wrote {self.seconds:.1f} s after the crash: fenced as "
                    f"{self.ctx.identities['nova'].entity} (blocklisted {self.fenced}, broke "
                    "its lock); --evacuate-wait proves librbd's own takeover instead")
        return (f"second host wrote {self.seconds:.1f} s after the crash "
                "(librbd's own takeover: bounded by the OSD watch timeout)")

    def stop(self) -> None:
        if self.taker is not None and self.taker.poll() is None:
            self.taker.kill()
            self.taker.wait()


def explain(ctx: Context, error: CephstackError | None = None) -> Explanation:
    entity = ctx.identities["nova"].entity
    if isinstance(error, PermissionDenied) and error.prefix.startswith("break_lock"):
        pool = ctx.spec.services["nova"].pools[0]
        return Explanation(
            f"{entity} cannot break a dead host's lock on its guest disk: evacuate hangs "
            "until the OSDs drop the dead client's watch, and a fenced disk stays locked",
            f"grant osd 'profile rbd pool={pool}' (cephstack apply does)")
    return Explanation(
        f"{entity} lacks mon 'profile rbd': it cannot blocklist a dead host, so evacuate "
        "will hang",
        "cephstack apply fixes it (mon 'profile rbd')")


def finish(ctx: Context, runner: Runner, takeover: Takeover) -> float | None:
    """Record the takeover step; returns its time in seconds when it succeeded."""
    runner.step("nova", STEP, takeover.finish, explain=lambda e: explain(ctx, e),
                needs=("nova: connect with its own keyring",))
    return takeover.seconds
