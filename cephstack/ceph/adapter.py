"""The connection to a cluster: the rados/rbd bindings are imported only here and in the
other modules of cephstack.ceph, which build on it.

It opens connections, sends mon commands as JSON, runs independent commands
concurrently (the monitor folds concurrent proposals into one commit round), and
turns failures into typed errors carrying the command prefix, errno and Ceph's text.
"""

from __future__ import annotations

import errno as errnos
import json
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import rados

from cephstack import interrupt
from cephstack.ceph.failures import auth_hint, typed_error
from cephstack.errors import AuthFailed, CephCommandError, ClusterUnreachable, OpTimedOut

MAX_CONCURRENT = 4096  # calls in flight at once (threads); see CephConnection.concurrently
# `auth add` of this entity with the caps to check and, last, a cap type no monitor knows:
# the monitor parses every cap before it looks at the entity, so the command always fails
# and never changes anything; the error names the first cap it refused, or the sentinel.
CAPS_CHECK_ENTITY = "client.cephstack-caps-check"
_CAPS_SENTINEL = "cephstack-caps-check"
RBD_INFO = "rbd_info"
POOL_VALIDATED = b"overwrite validated"  # what librbd writes once a pool is validated
POOL_VALIDATING = b"validate"  # ... and before that, once its snapshot is allocated


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach a cluster: ceph.conf, keyring and the cephx client name."""

    conf: str
    keyring: str | None = None
    client: str = "client.admin"
    connect_timeout: float = 10.0
    # Every monitor command and OSD operation gives up after this (rados_mon_op_timeout,
    # rados_osd_op_timeout): no command waits forever on a monitor or a placement group.
    op_timeout: float = 30.0


DEFAULT_OP_TIMEOUT = ClusterAccess.op_timeout


def _rados_id(client: str) -> str:
    return client.removeprefix("client.")


def _seconds(value: float) -> str:
    """librados takes whole seconds; never 0 (which means "wait forever")."""
    return str(max(1, math.ceil(value)))


# librbd calls that also wait for the monitors (self-managed snapshot ids come from them).
_MON_AND_OSD_CALLS = {"create_snap", "remove_snap", "remove_snap2", "remove_snap_by_id"}


def _rbd() -> Any:
    import rbd  # librbd only where images are touched: keeps observe and --help lean

    return rbd


class Translated:
    """A binding object (ioctx, image) whose every call raises typed errors."""

    def __init__(self, target: Any, what: str, conn: CephConnection, pool: str) -> None:
        self.target = target
        self._what = what
        self._conn = conn
        self._pool = pool

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.target, name)
        if not callable(attr):
            return attr

        waited_for = None
        if name == "unprotect_snap":  # librbd looks for clones in every pool first
            waited_for = (f"the OSDs of pool '{self._pool}' or of another pool (unprotecting "
                          "a snapshot reads rbd_children in every pool)")
        elif name in _MON_AND_OSD_CALLS:
            waited_for = f"the monitors or the OSDs of pool '{self._pool}'"

        def call(*args: Any, **kwargs: Any) -> Any:
            self._conn.checkpoint()
            with self._conn._translated(f"{name} on {self._what}", self._pool, waited_for):
                return attr(*args, **kwargs)
        return call


class CephConnection:
    """An open librados connection. Thread-safe: librados releases the GIL on every call.

    `interruptible`: every call first checks for SIGINT/SIGTERM (cephstack.interrupt) and
    raises Interrupted instead of starting; verify's service connections are, so a run
    stops at its next call; the admin connection is not, so cleanup can still use it."""

    def __init__(self, access: ClusterAccess, interruptible: bool = False) -> None:
        self.access = access
        self.interruptible = interruptible
        self.commands_sent = 0
        self.timed_out = False  # something did not answer within the operation timeout
        self.monitors_lost = False  # ... and that something was the monitors
        self._count_lock = threading.Lock()
        self._closed = False
        self._background: set[threading.Thread] = set()  # see in_background
        self._cluster = self._connect(access)

    def checkpoint(self) -> None:
        if self.interruptible:
            interrupt.check()

    @staticmethod
    def _connect(access: ClusterAccess) -> rados.Rados:
        if not os.path.exists(access.conf):
            raise ClusterUnreachable(
                f"ceph.conf not found: {access.conf}",
                hint="pass --conf or set cluster.conf in the spec",
            )
        if access.keyring and not os.path.exists(access.keyring):
            raise ClusterUnreachable(
                f"keyring not found: {access.keyring}",
                hint="pass --keyring or set cluster.keyring in the spec",
            )
        # Connecting, monitor commands and OSD operations all give up after their timeout:
        # nothing waits forever on a monitor, a placement group or a file.
        ops = _seconds(access.op_timeout)
        conf = {"client_mount_timeout": _seconds(access.connect_timeout),
                "rados_mon_op_timeout": ops, "rados_osd_op_timeout": ops,
                "log_to_stderr": "false", "err_to_stderr": "false"}
        if access.keyring:
            conf["keyring"] = access.keyring
        try:
            cluster = rados.Rados(conffile=access.conf, rados_id=_rados_id(access.client),
                                  conf=conf)
            cluster.connect(timeout=int(_seconds(access.connect_timeout)))
        except (rados.PermissionError, rados.PermissionDeniedError):
            raise AuthFailed(
                f"authentication failed: the monitors refused {access.client} "
                f"(cephx, key from {access.keyring or 'the keyring in ceph.conf'})",
                hint=auth_hint(access),
            ) from None
        except (rados.TimedOut, rados.Error, OSError) as e:
            raise ClusterUnreachable(
                f"cannot reach the cluster of {access.conf} as {access.client} within "
                f"{access.connect_timeout:g} s: {e}",
                hint="is a monitor running at the address in mon_host? "
                     "(a sandbox: cephstack sandbox status)",
            ) from None
        return cluster

    # -- mon commands -------------------------------------------------------

    def mon(self, prefix: str, inbuf: bytes = b"", *, binary_output: bool = False,
            **args: Any) -> Any:
        """Send one mon command; return its JSON output (or None when it has none), or with
        binary_output its output as bytes (`osd getcrushmap`)."""
        cmd = {"prefix": prefix, "format": "json", **args}
        self.checkpoint()
        with self._count_lock:
            self.commands_sent += 1
        try:
            # The binding ignores its timeout argument: rados_mon_op_timeout bounds it.
            ret, out, text = self._cluster.mon_command(json.dumps(cmd), inbuf)
        except rados.Error as e:
            raise self._typed(prefix, getattr(e, "errno", None) or errnos.EIO, str(e),
                              "the monitors") from None
        if ret != 0:
            raise self._typed(prefix, ret, text.strip(), "the monitors")
        if binary_output:
            return out
        if not out:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return out.decode(errors="replace")

    def concurrently(self, calls: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run independent calls at once; return results in order, or raise the first error
        after all have finished (so nothing is left half-sent).

        One thread per call (up to MAX_CONCURRENT): the monitor folds into one commit only
        the commands it has received when its proposal fires, so a call still waiting for
        a thread would cost its own commit round, a second later (200 pools with 128
        threads: two rounds per step instead of one). The threads only wait on librados,
        which releases the GIL."""
        if len(calls) <= 1:
            return [c() for c in calls]
        with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT, len(calls))) as pool:
            futures = [pool.submit(c) for c in calls]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]
        return [f.result() for f in futures]

    # -- cephx users -----------------------------------------------------------

    def caps_refused(self, caps: Sequence[tuple[str, str]]) -> str | None:
        """The monitor's own parser on (daemon type, cap string) pairs, changing nothing:
        None when it accepts them all, else its message about the first it refuses. One
        mon command whatever their number (`auth import` itself does not check caps)."""
        args = [word for pair in caps for word in pair] + [_CAPS_SENTINEL, "allow r"]
        try:
            self.mon("auth add", entity=CAPS_CHECK_ENTITY, caps=args)
        except CephCommandError as e:
            if e.errno != errnos.EINVAL:
                raise
            return None if f"'{_CAPS_SENTINEL}'" in e.ceph_message else e.ceph_message
        # Never reached with a monitor that parses caps first (every release since 12):
        # take back what it made and say so.
        with suppress(CephCommandError):
            self.mon("auth rm", entity=CAPS_CHECK_ENTITY)
        raise CephCommandError("auth add", errnos.EPROTO,
                               "the monitor accepted an unknown cap type: caps not checked")

    def import_keyring(self, blob: bytes) -> None:
        """`auth import` of a binary keyring (cephstack.ceph.cephx.keyring_blob): every entity
        in it created or replaced, key and caps, in one monitor commit."""
        self.mon("auth import", inbuf=blob)

    # -- librados / librbd --------------------------------------------------

    def fsid(self) -> str:
        return self._cluster.get_fsid()

    def client_address(self) -> str:
        """This connection's own address (IP:PORT/NONCE), as watchers and lockers show it."""
        return str(self._cluster.get_addrs())

    def set_option(self, name: str, value: str) -> None:
        """A client option of this connection; images opened afterwards see it."""
        self._cluster.conf_set(name, value)

    def wait_for_osdmap(self) -> None:
        """Fetch the monitors' latest OSD map, waiting at most the operation timeout: this
        client's next OSD requests carry its epoch, so the OSDs apply a change just made (a
        blocklist entry: they drop that client's watches, refuse its writes) before serving
        them. librados' blocklist_add does the same after its command, without a bound."""
        done, failed = threading.Event(), []

        def wait() -> None:
            try:
                self._cluster.wait_for_latest_osdmap()
            except rados.Error as e:
                failed.append(e)
            finally:
                done.set()

        self.checkpoint()
        threading.Thread(target=wait, name="cephstack-osdmap", daemon=True).start()
        what = "wait for the latest OSD map"
        if not done.wait(self.access.op_timeout):
            raise self._typed(what, errnos.ETIMEDOUT, "no answer", "the monitors")
        if failed:
            raise self._typed(what, getattr(failed[0], "errno", None) or errnos.EIO,
                              str(failed[0]), "the monitors")

    def read_objects(self, reads: Sequence[tuple[str, str, int]]
                     ) -> list[bytes | CephCommandError]:
        """Read (pool, object, at most length bytes) all at once, with librados' async
        reads: no thread per read. Each result is the data, or the typed error of that
        read (ENOENT for a missing object; a timeout names the pool's OSDs)."""
        results: list[bytes | CephCommandError | None] = [None] * len(reads)
        pending: list[tuple[int, Any]] = []
        ioctxs: dict[str, Any] = {}
        self.checkpoint()
        try:
            for i, (pool, name, length) in enumerate(reads):
                try:
                    if pool not in ioctxs:
                        with self._translated(f"open pool {pool}", None):
                            ioctxs[pool] = self._cluster.open_ioctx(pool)
                    with self._translated(f"read {name} in pool {pool}", pool):
                        pending.append((i, ioctxs[pool].aio_read(
                            name, length, 0,
                            lambda _, data, i=i: results.__setitem__(i, data))))
                except CephCommandError as e:
                    results[i] = e
            for i, completion in pending:
                completion.wait_for_complete_and_cb()
                code = completion.get_return_value()
                if code < 0:
                    pool, name, _ = reads[i]
                    results[i] = self._typed(f"read {name} in pool {pool}", code,
                                             os.strerror(-code), f"the OSDs of pool '{pool}'")
        finally:
            for ioctx in ioctxs.values():
                ioctx.close()
        return [r if r is not None else b"" for r in results]

    # -- objects and RBD images (verify, cleanup) ---------------------------------------

    def _typed(self, what: str, code: int, text: str, waited_for: str) -> CephCommandError:
        error = typed_error(what, code, text, self.access.client, waited_for,
                       self.access.op_timeout)
        if isinstance(error, OpTimedOut):
            self.timed_out = True
            self.monitors_lost = self.monitors_lost or waited_for == "the monitors"
        return error

    @contextmanager
    def _translated(self, what: str, pool: str | None,
                    waited_for: str | None = None) -> Iterator[None]:
        """Turn a binding's error into a typed error naming the operation; a timeout names
        what it waited for: the OSDs of `pool`, or the monitors (pool None)."""
        try:
            yield
        except (rados.Error, _rbd().Error) as e:
            code = getattr(e, "errno", None) or errnos.EIO
            waited_for = waited_for or (f"the OSDs of pool '{pool}'" if pool else "the monitors")
            raise self._typed(what, code, str(e), waited_for) from None

    @contextmanager
    def ioctx(self, pool: str) -> Iterator[Translated]:
        self.checkpoint()
        with self._translated(f"open pool {pool}", None):  # needs the monitors' osdmap
            ioctx = self._cluster.open_ioctx(pool)
        try:
            yield Translated(ioctx, f"pool {pool}", self, pool)
        finally:
            ioctx.close()

    @contextmanager
    def image(self, pool: str, name: str, snapshot: str | None = None,
              read_only: bool = False) -> Iterator[Translated]:
        """An open RBD image; read_only=True registers no watch (works with read-only caps)."""
        where = f"{pool}/{name}" + (f"@{snapshot}" if snapshot else "")
        with self.ioctx(pool) as ioctx, self._translated(f"open image {where}", pool):
            image = _rbd().Image(ioctx.target, name, snapshot=snapshot, read_only=read_only)
        try:
            yield Translated(image, f"image {where}", self, pool)
        finally:
            image.close()

    def rbd(self, method: str, pool: str, *args: Any, **kwargs: Any) -> Any:
        """Call rbd.RBD().<method>(ioctx of pool, *args): create, remove, list, trash_*."""
        with self.ioctx(pool) as ioctx, self._translated(f"rbd {method} {pool} {args[:1]}",
                                                         pool):
            return getattr(_rbd().RBD(), method)(ioctx.target, *args, **kwargs)

    def clone(self, parent_pool: str, parent: str, snap: str, pool: str, name: str,
              features: int | None = None) -> None:
        pools = pool if pool == parent_pool else f"{parent_pool}' or '{pool}"
        with self.ioctx(parent_pool) as p_io, self.ioctx(pool) as c_io, self._translated(
                f"rbd clone {parent_pool}/{parent}@{snap} -> {pool}/{name}", pools):
            _rbd().RBD().clone(p_io.target, parent, snap, c_io.target, name, features=features)

    def features(self, *names: str) -> int:
        """RBD feature bits by name: features('layering', 'exclusive_lock')."""
        return sum(getattr(_rbd(), f"RBD_FEATURE_{n.upper()}") for n in names)

    def in_background(self, what: str, call: Callable[[], object]) -> None:
        """Start `call` and do not wait for it: for a request whose answer nobody needs
        (it lands in the monitors' next commit, a second later). close() leaves the
        shutdown to the last such call still running: shutting librados down under a call
        in flight crashes the process; a process that exits meanwhile just ends it."""
        def run() -> None:
            with suppress(Exception):  # nobody waits for it; what it leaves is harmless
                call()
            with self._count_lock:
                self._background.discard(threading.current_thread())
                last = self._closed and not self._background
            if last:
                self._cluster.shutdown()

        thread = threading.Thread(target=run, name=f"cephstack-{what}", daemon=True)
        with self._count_lock:
            self._background.add(thread)
        thread.start()

    def close(self) -> None:
        with self._count_lock:
            if self._closed:
                return
            self._closed = True
            if self._background:
                return  # the last background call shuts down (in_background)
        self._cluster.shutdown()

    def __enter__(self) -> CephConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
