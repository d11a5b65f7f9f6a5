"""The one place that imports the rados/rbd bindings.

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
from dataclasses import dataclass
from typing import Any

import rados

from cephstack.errors import CephCommandError, ClusterUnreachable, PermissionDenied

_DENIED = (errnos.EACCES, errnos.EPERM)
RBD_INFO = "rbd_info"
POOL_VALIDATED = b"overwrite validated"  # what librbd writes once a pool is validated


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach a cluster: ceph.conf, keyring and the cephx client name."""

    conf: str
    keyring: str | None = None
    client: str = "client.admin"
    connect_timeout: float = 10.0


def _rados_id(client: str) -> str:
    return client.removeprefix("client.")


def _error(prefix: str, code: int, text: str, client: str) -> CephCommandError:
    code = abs(code)
    if code in _DENIED:
        return PermissionDenied(
            prefix, code, text,
            hint=f"{client} lacks the caps for '{prefix}'; use an admin client (--id/--keyring)",
        )
    return CephCommandError(prefix, code, text)


def _rbd() -> Any:
    import rbd  # librbd only where images are touched: keeps observe and --help lean

    return rbd


class Translated:
    """A binding object (ioctx, image) whose every call raises typed errors."""

    def __init__(self, target: Any, what: str, conn: CephConnection) -> None:
        self.target = target
        self._what = what
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._conn._translated(f"{name} on {self._what}"):
                return attr(*args, **kwargs)
        return call


class CephConnection:
    """An open librados connection. Thread-safe: librados releases the GIL on every call."""

    def __init__(self, access: ClusterAccess) -> None:
        self.access = access
        self.commands_sent = 0
        self._count_lock = threading.Lock()
        self._cluster = self._connect(access)

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
        timeout = str(max(1, round(access.connect_timeout)))
        # Mon commands must give up after the timeout too, not hang forever.
        conf = {"client_mount_timeout": timeout, "rados_mon_op_timeout": timeout,
                "rados_osd_op_timeout": "0", "log_to_stderr": "false",
                "err_to_stderr": "false"}
        if access.keyring:
            conf["keyring"] = access.keyring
        try:
            cluster = rados.Rados(conffile=access.conf, rados_id=_rados_id(access.client),
                                  conf=conf)
            cluster.connect(timeout=int(max(1, access.connect_timeout)))
        except rados.PermissionError as e:
            raise PermissionDenied(
                "connect", errnos.EACCES, str(e),
                hint=f"check that {access.keyring or 'the keyring'} holds the key of "
                     f"{access.client}",
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

    def mon(self, prefix: str, inbuf: bytes = b"", **args: Any) -> Any:
        """Send one mon command; return its JSON output (or None when it has none)."""
        cmd = {"prefix": prefix, "format": "json", **args}
        with self._count_lock:
            self.commands_sent += 1
        try:
            ret, out, text = self._cluster.mon_command(json.dumps(cmd), inbuf,
                                                       timeout=int(self.access.connect_timeout))
        except rados.Error as e:
            raise _error(prefix, getattr(e, "errno", None) or errnos.EIO, str(e),
                         self.access.client) from None
        if ret != 0:
            raise _error(prefix, ret, text.strip(), self.access.client)
        if not out:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return out.decode(errors="replace")

    def concurrently(self, calls: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run independent calls at once; return results in order, or raise the first error
        after all have finished (so nothing is left half-sent)."""
        if len(calls) <= 1:
            return [c() for c in calls]
        with ThreadPoolExecutor(max_workers=min(128, len(calls))) as pool:
            futures = [pool.submit(c) for c in calls]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]
        return [f.result() for f in futures]

    # -- librados / librbd --------------------------------------------------

    def fsid(self) -> str:
        return self._cluster.get_fsid()

    # `rbd pool init` is: enable the rbd application, then librbd's pool validation
    # (allocate a self-managed snapshot, write rbd_info "validate", release the snapshot,
    # write "overwrite validated"). Done here in two halves so that many pools' steps,
    # and the application enable, go to the monitor together: one commit round each.

    def pool_validate_start(self, pool: str, fresh: bool = False) -> int | None:
        """First half of the validation; returns the snapshot id to release, if any.
        `fresh`: the pool was just created, so rbd_info cannot exist yet and need not be
        read (a read would wait for the new PGs to peer and miss the monitor's round)."""
        with self.ioctx(pool) as ioctx, self._translated(f"rbd pool init {pool}"):
            state = b""
            if not fresh:
                with suppress(rados.ObjectNotFound):
                    state = ioctx.target.read(RBD_INFO)
            if state in (POOL_VALIDATED, b"validate"):
                return None
            # A pool that refuses self-managed snapshots (pool snapshots in use) fails here.
            snap_id = ioctx.target.create_self_managed_snap()
            with rados.WriteOpCtx() as op:
                op.new(rados.LIBRADOS_CREATE_EXCLUSIVE)
                op.write(b"validate", 0)
                with suppress(rados.ObjectExists):
                    ioctx.target.operate_write_op(op, RBD_INFO)
            return snap_id

    def pool_validate_finish(self, pool: str, snap_id: int | None) -> None:
        """Second half: release the snapshot; mark the pool validated (an EC pool without
        overwrites fails this write)."""
        with self.ioctx(pool) as ioctx, self._translated(f"rbd pool init {pool}"):
            if snap_id is not None:
                ioctx.target.remove_self_managed_snap(snap_id)
            ioctx.target.write(RBD_INFO, POOL_VALIDATED, 0)

    # -- objects and RBD images (verify, cleanup) ---------------------------------------

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """Turn a binding's error into a typed error naming the operation."""
        try:
            yield
        except (rados.Error, _rbd().Error) as e:
            code = getattr(e, "errno", None) or errnos.EIO
            raise _error(what, code, str(e), self.access.client) from None

    @contextmanager
    def ioctx(self, pool: str) -> Iterator[Translated]:
        with self._translated(f"open pool {pool}"):
            ioctx = self._cluster.open_ioctx(pool)
        try:
            yield Translated(ioctx, f"pool {pool}", self)
        finally:
            ioctx.close()

    @contextmanager
    def image(self, pool: str, name: str, snapshot: str | None = None,
              read_only: bool = False) -> Iterator[Translated]:
        """An open RBD image; read_only=True registers no watch (works with read-only caps)."""
        where = f"{pool}/{name}" + (f"@{snapshot}" if snapshot else "")
        with self.ioctx(pool) as ioctx, self._translated(f"open image {where}"):
            image = _rbd().Image(ioctx.target, name, snapshot=snapshot, read_only=read_only)
        try:
            yield Translated(image, f"image {where}", self)
        finally:
            image.close()

    def rbd(self, method: str, pool: str, *args: Any, **kwargs: Any) -> Any:
        """Call rbd.RBD().<method>(ioctx of pool, *args): create, remove, list, trash_*."""
        with self.ioctx(pool) as ioctx, self._translated(f"rbd {method} {pool} {args[:1]}"):
            return getattr(_rbd().RBD(), method)(ioctx.target, *args, **kwargs)

    def clone(self, parent_pool: str, parent: str, snap: str, pool: str, name: str,
              features: int | None = None) -> None:
        with self.ioctx(parent_pool) as p_io, self.ioctx(pool) as c_io, self._translated(
                f"rbd clone {parent_pool}/{parent}@{snap} -> {pool}/{name}"):
            _rbd().RBD().clone(p_io.target, parent, snap, c_io.target, name, features=features)

    def features(self, *names: str) -> int:
        """RBD feature bits by name: features('layering', 'exclusive_lock')."""
        return sum(getattr(_rbd(), f"RBD_FEATURE_{n.upper()}") for n in names)

    def close(self) -> None:
        self._cluster.shutdown()

    def __enter__(self) -> CephConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
