"""Evacuate: a host holding a guest disk dies; another host must take the disk over.

A process opens the disk as Nova and writes (taking the exclusive lock), then is killed
with SIGKILL, as a hypervisor crash. A second process, also as Nova, writes to the same
disk. librbd on the new host asks the owner to release the lock; the dead owner never
answers, and its watch lingers until the OSD drops it (osd_client_watch_timeout, 30 s by
default): that bounds the takeover. Then librbd blocklists the dead owner, which needs
mon 'profile rbd', and breaks the lock.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time

from cephstack.errors import CephstackError, PermissionDenied
from cephstack.verify.runner import CheckFailed, Explanation, Runner, expect
from cephstack.verify.workflows import Context, MiB

TAKEOVER_LIMIT = 90.0  # seconds: three times the OSD's default watch timeout


def _probe(ctx: Context, mode: str, pool: str, disk: str) -> list[str]:
    ident = ctx.identities["nova"]
    return [sys.executable, "-m", "cephstack.ceph.lockprobe", mode, ctx.spec.cluster.conf,
            ident.keyring, ident.entity, pool, disk]


def evacuate(ctx: Context, runner: Runner) -> float | None:
    """Returns the takeover time in seconds when it succeeded."""
    conn = ctx.conn("nova")
    pool = ctx.spec.services["nova"].pools[0]
    disk = f"{ctx.names.uuid()}_disk"
    took: list[float] = []

    def run() -> str:
        conn.rbd("create", pool, disk, 8 * MiB, 22, old_format=False,
                 features=conn.features("layering", "exclusive_lock"))
        ctx.disks.append(f"{pool}/{disk}")
        holder = subprocess.Popen(_probe(ctx, "hold", pool, disk), stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        try:
            ready, _, _ = select.select([holder.stdout], [], [], 30)
            line = holder.stdout.readline().strip() if ready else ""
            expect(line == "locked", f"the first host could not take the disk: {line!r}")
        finally:
            holder.kill()  # SIGKILL: no clean release, as in a crash
            holder.wait()
        started = time.monotonic()
        try:
            taker = subprocess.run(_probe(ctx, "take", pool, disk), capture_output=True,
                                   text=True, timeout=TAKEOVER_LIMIT)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"the second host could not write within {TAKEOVER_LIMIT:g} s: "
                              "evacuate hangs") from None
        elapsed = time.monotonic() - started
        out = taker.stdout.strip()
        if taker.returncode != 0:
            errno = int(out.split("errno=")[1].split(":")[0]) if "errno=" in out else 0
            error = f"write after the host crash failed after {elapsed:.1f} s: {out}"
            if errno in (1, 13):
                raise PermissionDenied("write (lock takeover)", errno, error)
            raise CephstackError(error)
        took.append(elapsed)
        return f"second host wrote after {elapsed:.1f} s (bounded by the OSD watch timeout)"

    def explain(e: CephstackError) -> Explanation:
        entity = ctx.identities["nova"].entity
        return Explanation(
            f"{entity} lacks mon 'profile rbd': it cannot blocklist a dead host, so "
            "evacuate will hang",
            "cephstack apply fixes it (mon 'profile rbd')")

    runner.step("nova", "evacuate: take over a crashed host's disk", run, explain=explain,
                needs=("nova: connect with its own keyring",))
    return took[0] if took else None
