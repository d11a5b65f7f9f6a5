"""The connection to a cluster: the rados/rbd bindings are imported only here; the other
modules of cephstack.ceph use its public methods.

It opens connections, sends mon commands as JSON, runs independent commands
concurrently (the monitor folds concurrent proposals into one commit round), and
turns failures into typed errors carrying the command prefix, errno and Ceph's text.
"""

from __future__ import annotations

import errno as errnos
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any

import rados

from cephstack.ceph.clusteraccess import (  # ClusterAccess, DEFAULT_OP_TIMEOUT re-exported
    DEFAULT_OP_TIMEOUT,
    ClusterAccess,
    check_files,
    connect_failure,
    librados_conf,
    whole_seconds,
)
from cephstack.ceph.failures import auth_hint, before_call, note_timeout, reached, typed_error
from cephstack.errors import AuthFailed, CephCommandError, OpTimedOut

MAX_CONCURRENT = 4096  # calls in flight at once (threads); see CephConnection.concurrently
RBD_INFO = "rbd_info"
POOL_VALIDATED = b"overwrite validated"  # what librbd writes once a pool is validated
POOL_VALIDATING = b"validate"  # ... and before that, once its snapshot is allocated

__all__ = ["DEFAULT_OP_TIMEOUT", "CephConnection", "ClusterAccess"]


_NO_ANSWER = object()  # see CephConnection._bounded
# Calls that also wait for the monitors (self-managed snapshot ids come from them).
_MON_AND_OSD_CALLS = {"create_snap", "remove_snap", "remove_snap2", "remove_snap_by_id",
                      "create_self_managed_snap", "remove_self_managed_snap"}


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
            self._conn.checkpoint(f"{name} on {self._what}")
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

    def checkpoint(self, what: str = "a call") -> None:
        before_call(self, what)  # SIGINT/SIGTERM; fails at once if the monitors were lost

    @staticmethod
    def _connect(access: ClusterAccess) -> rados.Rados:
        check_files(access)
        try:
            cluster = rados.Rados(conffile=access.conf, conf=librados_conf(access),
                                  rados_id=access.client.removeprefix("client."))
            cluster.connect(timeout=int(whole_seconds(access.connect_timeout)))
        except (rados.PermissionError, rados.PermissionDeniedError):
            raise AuthFailed(
                f"authentication failed: the monitors refused {access.client} "
                f"(cephx, key from {access.keyring or 'the keyring in ceph.conf'})",
                hint=auth_hint(access),
            ) from None
        except (rados.TimedOut, rados.Error, OSError) as e:
            raise connect_failure(access, e) from None  # or a key type it cannot read
        return reached(access, cluster)  # the monitors answer (again)

    # -- mon commands -------------------------------------------------------

    def mon(self, prefix: str, inbuf: bytes = b"", *, binary_output: bool = False,
            target: str | None = None, **args: Any) -> Any:
        """Send one mon command; return its JSON output (or None when it has none), or with
        binary_output its output as bytes (`osd getcrushmap`). `target`: the monitor that
        answers it itself (`ceph tell mon.<name>`: its sessions, its configuration)."""
        cmd = {"prefix": prefix, "format": "json", **args}
        what = prefix if target is None else f"{prefix} (mon.{target})"
        self.checkpoint(what)
        with self._count_lock:
            self.commands_sent += 1
        try:
            # The binding ignores its timeout argument: rados_mon_op_timeout bounds it.
            ret, out, text = self._cluster.mon_command(json.dumps(cmd), inbuf, target=target)
        except rados.Error as e:
            raise self._typed(what, getattr(e, "errno", None) or errnos.EIO, str(e),
                              "the monitors") from None
        if ret != 0:
            raise self._typed(what, ret, text.strip(), "the monitors")
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

    # -- cephx users (ceph/capscheck.py asks the monitor to parse caps) ----------

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
        what = "wait for the latest OSD map"
        answer = self._bounded(self._cluster.wait_for_latest_osdmap, "osdmap",
                               self.access.op_timeout)
        if isinstance(answer, Exception):
            raise self._typed(what, getattr(answer, "errno", None) or errnos.EIO,
                              str(answer), "the monitors")
        if answer is _NO_ANSWER:
            raise self._typed(what, errnos.ETIMEDOUT, "no answer", "the monitors")

    def _bounded(self, call: Callable[[], Any], name: str, seconds: float) -> Any:
        """call() in a thread of its own, waited for `seconds` at most: its result, the
        exception it raised, or _NO_ANSWER (a binding call that ignores its timeouts)."""
        answer: list[Any] = []
        done = threading.Event()

        def run() -> None:
            try:
                answer.append(call())
            except Exception as e:  # noqa: BLE001 - handed to the caller's thread
                answer.append(e)
            finally:
                done.set()

        self.checkpoint()
        threading.Thread(target=run, name=f"cephstack-{name}", daemon=True).start()
        return answer[0] if done.wait(seconds) else _NO_ANSWER

    def mgr(self, prefix: str, hint: str | None = None, **args: Any) -> Any:
        """One manager command, JSON in and out, answered within the operation timeout
        (librados applies rados_mon_op_timeout to it; waited for here as well, in case).
        `hint`: what to check when the manager does not answer."""
        cmd = json.dumps({"prefix": prefix, "format": "json", **args})
        answer = self._bounded(lambda: self._cluster.mgr_command(cmd, b""), "mgr",
                               self.access.op_timeout + 1)
        if isinstance(answer, Exception):
            answer = (getattr(answer, "errno", None) or errnos.EIO, b"", str(answer))
        ret, out, text = (-errnos.ETIMEDOUT, b"", "no answer") if answer is _NO_ANSWER \
            else answer
        ret = abs(ret)  # the binding gives a timeout as +110, other errors as negative numbers
        if ret == errnos.ETIMEDOUT:
            raise OpTimedOut(prefix, errnos.ETIMEDOUT, text.strip() or "no answer",
                             "the manager", self.access.op_timeout, hint)
        if ret != 0:
            raise typed_error(prefix, ret, text.strip(), self.access.client, "the manager")
        return json.loads(out) if out.strip() else None

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

    def pool_objects(self, pool: str, limit: int) -> list[tuple[str, str, bool]]:
        """(namespace, name, has omap entries) of up to `limit` objects of `pool`, in
        every namespace: what proves a pool empty."""
        out = []
        with self.ioctx(pool) as ioctx:
            ioctx.set_namespace(rados.LIBRADOS_ALL_NSPACES)
            found = [(o.nspace, o.key) for _, o in zip(range(limit), ioctx.list_objects(),
                                                           strict=False)]
            for nspace, name in found:
                ioctx.set_namespace(nspace)
                with rados.ReadOpCtx() as op:
                    entries, _ = ioctx.get_omap_vals(op, "", "", 1)
                    ioctx.operate_read_op(op, name)
                    out.append((nspace, name, bool(list(entries))))
        return out

    # -- objects and RBD images (pool init, verify, cleanup) -----------------------------

    def create_object(self, pool: str, name: str, data: bytes, what: str) -> bool:
        """A new object holding `data`; False (nothing written) when it exists already."""
        with self.ioctx(pool) as io, self._translated(what, pool), rados.WriteOpCtx() as op:
            op.new(rados.LIBRADOS_CREATE_EXCLUSIVE)
            op.write(data, 0)
            try:
                io.target.operate_write_op(op, name)
            except rados.ObjectExists:
                return False
        return True

    def _typed(self, what: str, code: int, text: str, waited_for: str) -> CephCommandError:
        error = typed_error(what, code, text, self.access.client, waited_for,
                       self.access.op_timeout)
        if isinstance(error, OpTimedOut):
            self.timed_out = True
            self.monitors_lost = note_timeout(self, what, waited_for, self._cluster.mon_command)
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
        self.checkpoint(f"open pool {pool}")
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

    def rbd_cluster(self, method: str, *args: Any) -> Any:
        """Call rbd.RBD().<method>(the cluster handle, *args): the mirroring site name."""
        with self._translated(f"rbd {method}", None):
            return getattr(_rbd().RBD(), method)(self._cluster, *args)

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
