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

Either way the crash (and the fence) run alongside the first workflows, the second host
starts once they are done and works or waits while the next ones run (start(), launch(),
then finish()).

The same for each Cinder backend's volumes: a compute host attaches a volume as Nova
does, with the backend's rbd_user (QEMU opens it as Cinder's user, with Cinder's libvirt
secret), crashes, and another compute host attaches it; the fence is done as that user,
which is also the user whose librbd blocklists a dead owner on the new host.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time
from collections.abc import Callable

from cephstack import interrupt
from cephstack.ceph.adapter import CephConnection
from cephstack.day2 import fencing as fencing
from cephstack.day2.fence import LockOutcome
from cephstack.errors import CephstackError, OpTimedOut, PermissionDenied
from cephstack.verify.progress import Progress, Silent
from cephstack.verify.runner import CheckFailed, Explanation, Runner, expect
from cephstack.verify.workflows import Context, MiB

TAKEOVER_LIMIT = 90.0  # seconds: three times the OSD's default watch timeout
STEP = "evacuate: take over a crashed host's disk"
VOLUME_STEP = "evacuate: take over a crashed host's volume"
FENCE, WAIT = "fence", "wait"  # the takeover's path: fenced as an operator would, or librbd's


class Takeover:
    def __init__(self, ctx: Context, wait: bool = False, service: str = "nova",
                 pool: str | None = None) -> None:
        """`service`: whose user the hosts use: nova for a guest disk in its pool, or
        cinder-volume for a volume of the backend in `pool`."""
        self.ctx = ctx
        self.path = WAIT if wait else FENCE
        self.service = service
        self.fenced = ""  # the dead client's address, blocklisted (fence path)
        self.fenced_at = 0.0  # when the crashed host was fenced (or it crashed: wait path)
        self.spawned = 0.0  # when the second host started
        self.pool = pool or ctx.spec.services[service].pools[0]
        self.disk = (f"{ctx.names.uuid()}_disk" if service == "nova"
                     else f"volume-{ctx.names.uuid()}")
        self.taker: subprocess.Popen[str] | None = None
        self.started = 0.0
        self.error: CephstackError | None = None
        self.seconds: float | None = None

    def _probe(self, mode: str) -> list[str]:
        access = self.ctx.service_access(self.ctx.identities[self.service])
        return [sys.executable, "-m", "cephstack.ceph.lockprobe", mode, access.conf,
                str(access.keyring), access.client, self.pool, self.disk,
                f"{access.connect_timeout:g}", f"{access.op_timeout:g}"]

    def start(self, progress: Progress | None = None,
              stopped: Callable[[], bool] = lambda: False) -> None:
        """Crash the first host and let the second one start waiting for the lock.
        `stopped`: the run stopped (the cluster did not answer another step): wait no more."""
        progress = progress or Silent()
        try:
            conn = self.ctx.conn(self.service)
            conn.rbd("create", self.pool, self.disk, 8 * MiB, 22, old_format=False,
                     features=conn.features("layering", "exclusive_lock"))
            holder = subprocess.Popen(self._probe("hold"), stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)
            try:
                access = self.ctx.service_access(self.ctx.identities[self.service])
                deadline = time.monotonic() + access.connect_timeout + 2 * access.op_timeout
                ready: list[object] = []
                with progress.waiting(f"the first host to lock {self.pool}/{self.disk}"):
                    while (not ready and time.monotonic() < deadline
                           and holder.poll() is None and not stopped()):
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
            self.fenced_at = time.monotonic()
        except CephstackError as e:
            self.error = e

    def launch(self) -> None:
        """Start the second host. Called from the run's own thread, which lives until the
        end: the probe dies with the thread that started it (PR_SET_PDEATHSIG)."""
        if self.error is None and self.started:
            self.spawned = time.monotonic()
            self.taker = subprocess.Popen(self._probe("take"), stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True)

    def _fence(self) -> None:
        """What `cephstack fence <instance> --yes` does, as the hosts' user (Nova's, or the
        backend's rbd_user) on a connection of its own (breaking a lock turns off librbd's
        own blocklisting on it): blocklist the dead holder's address, then break its lock."""
        access = self.ctx.service_access(self.ctx.identities[self.service])
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

    def finish(self, progress: Progress | None = None) -> str:
        if self.error is not None:
            raise self.error
        assert self.taker is not None
        what = (f"the second host to write to {self.pool}/{self.disk} after the crash "
                + ("(fenced)" if self.path == FENCE else "(librbd waits out the OSD watch "
                   "timeout)"))
        with (progress or Silent()).waiting(what):
            out = self._wait_for_taker()
        elapsed = time.monotonic() - self.started
        out = out.strip()
        entity = self.ctx.identities[self.service].entity
        if self.taker.returncode != 0:
            errno = int(out.split("errno=")[1].split(":")[0]) if "errno=" in out else 0
            error = f"write after the host crash failed after {elapsed:.1f} s: {out}"
            if errno in (1, 13):
                raise PermissionDenied("write (lock takeover)", errno, error)
            if errno == 110:
                raise OpTimedOut("write (lock takeover)", errno, error,
                                 f"the OSDs of pool '{self.pool}' (or the monitors)",
                                 self.ctx.service_access(self.ctx.identities[self.service]
                                                         ).op_timeout)
            raise CephstackError(error)
        # The second host prints the time from its start to its write (its own Python
        # start-up aside); the takeover counts from the crash, the fence included. Its
        # output is read only once the other workflows are done, so `elapsed` is no measure.
        # Fenced, the second host could start at once: the time it was left waiting to be
        # started (while other workflows ran) is not the takeover's. librbd's own path
        # waits from the crash on, so there it counts.
        ready = self.fenced_at if self.path == FENCE else self.spawned
        self.seconds = (ready - self.started + float(out)
                        if out.replace(".", "").isdigit() else elapsed)
        if self.path == FENCE:
            return (f"{self.pool}/{self.disk}: second host wrote {self.seconds:.1f} s after "
                    f"the crash: fenced as {entity} (blocklisted {self.fenced}, broke its "
                    "lock); --evacuate-wait proves librbd's own takeover instead")
        return (f"{self.pool}/{self.disk}: second host wrote {self.seconds:.1f} s after the "
                f"crash as {entity} (librbd's own takeover: bounded by the OSD watch timeout)")

    def _wait_for_taker(self) -> str:
        assert self.taker is not None
        while True:  # in short slices: SIGINT/SIGTERM must not wait for the takeover
            interrupt.check()
            try:
                out, _ = self.taker.communicate(timeout=min(
                    0.2, max(0.0, self.started + TAKEOVER_LIMIT - time.monotonic())))
                return out
            except subprocess.TimeoutExpired:
                if time.monotonic() < self.started + TAKEOVER_LIMIT:
                    continue
                self.taker.kill()
                self.taker.wait()
                raise CheckFailed(f"the second host could not write within "
                                  f"{TAKEOVER_LIMIT:g} s: evacuate hangs") from None

    def stop(self) -> None:
        if self.taker is not None and self.taker.poll() is None:
            self.taker.kill()
            self.taker.wait()


def explain(ctx: Context, error: CephstackError | None = None, service: str = "nova",
            pool: str | None = None) -> Explanation:
    entity = ctx.identities[service].entity
    pool = pool or ctx.spec.services[service].pools[0]
    disk = "its guest disk" if service == "nova" else f"a volume in pool {pool}"
    if isinstance(error, PermissionDenied) and error.prefix.startswith("break_lock"):
        return Explanation(
            f"{entity} cannot break a dead host's lock on {disk}: evacuate hangs "
            "until the OSDs drop the dead client's watch, and a fenced disk stays locked",
            f"grant osd 'profile rbd pool={pool}' (cephstack apply does)")
    if isinstance(error, PermissionDenied) and error.prefix.startswith("rbd create"):
        return Explanation(
            f"{entity} cannot create images in pool {pool}: "
            + ("guest disks" if service == "nova" else "volumes of this backend")
            + " cannot be created or attached",
            f"grant osd 'profile rbd pool={pool}' (cephstack apply does)")
    return Explanation(
        f"{entity} lacks mon 'profile rbd': it cannot blocklist a dead host, so evacuate "
        "will hang",
        "cephstack apply fixes it (mon 'profile rbd')")


def finish(ctx: Context, runner: Runner, takeover: Takeover,
           backend: str = "") -> float | None:
    """Record the takeover step (a volume's: named after its backend's cinder.conf
    section); returns its time in seconds when it succeeded."""
    service, name = takeover.service, STEP
    if service != "nova":
        name = f"{VOLUME_STEP} [{backend}]"
    runner.step(service, name, lambda: takeover.finish(runner.progress),
                explain=lambda e: explain(ctx, e, service, takeover.pool),
                needs=(f"{service}: connect with its own keyring",), backend=backend)
    return takeover.seconds
