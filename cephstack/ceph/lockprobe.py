"""A guest-disk client in its own process, for the evacuate check.

`hold` opens the image read-write as the given user, writes (taking the exclusive lock),
prints "locked" and waits to be killed, as a hypervisor that crashes. `take` opens the
same image and writes, as the host that takes over; it prints the seconds it took or
the error. `serve` holds like `hold`, then writes again for each line read on stdin and
prints "ok" or the error: a host cut off from the cloud but alive (fence tests). The
keyring is passed by path: the key never appears on a command line.

    python -m cephstack.ceph.lockprobe hold|take|serve CONF KEYRING ENTITY POOL IMAGE \
        [CONNECT_TIMEOUT OP_TIMEOUT]
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
import time

from cephstack.ceph.adapter import CephConnection, ClusterAccess
from cephstack.errors import CephstackError


def _die_with_parent() -> None:
    """A holder must not outlive a verify run that was killed (Linux prctl)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main(argv: list[str]) -> int:
    mode, conf, keyring, entity, pool, image = argv[:6]
    connect_timeout, op_timeout = (float(a) for a in (argv[6:8] or ["10", "30"]))
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group:
    # verify decides when this process ends (it kills it), not the terminal
    started = time.monotonic()
    try:
        with (CephConnection(ClusterAccess(conf, keyring, entity, connect_timeout,
                                           op_timeout)) as conn,
              conn.image(pool, image) as disk):
            disk.write(b"\xab" * 4096, 4096 if mode == "take" else 0)
            disk.flush()
            if mode == "hold":
                print("locked", flush=True)
                time.sleep(3600)
            elif mode == "serve":
                print("locked", flush=True)
                for _ in sys.stdin:
                    try:
                        disk.write(b"\xcd" * 4096, 0)
                        disk.flush()
                        print("ok", flush=True)
                    except CephstackError as e:
                        print(f"error errno={getattr(e, 'errno', 0)}: {e.message}", flush=True)
            else:
                print(f"{time.monotonic() - started:.3f}", flush=True)
    except CephstackError as e:
        print(f"error errno={getattr(e, 'errno', 0)}: {e.message}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
