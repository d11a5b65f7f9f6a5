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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import rados

from cephstack.errors import CephCommandError, ClusterUnreachable, PermissionDenied

_DENIED = (errnos.EACCES, errnos.EPERM)


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
        with ThreadPoolExecutor(max_workers=min(32, len(calls))) as pool:
            futures = [pool.submit(c) for c in calls]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]
        return [f.result() for f in futures]

    # -- librados / librbd --------------------------------------------------

    def fsid(self) -> str:
        return self._cluster.get_fsid()

    def pool_init(self, pool: str) -> None:
        """What `rbd pool init` does: enable the rbd application, validate, write rbd_info."""
        import rbd  # only apply needs librbd; keep it off the observe path

        try:
            with self._cluster.open_ioctx(pool) as ioctx:
                rbd.RBD().pool_init(ioctx, False)
        except (rados.Error, rbd.Error) as e:
            raise _error(f"rbd pool init {pool}", getattr(e, "errno", None) or errnos.EIO,
                         str(e), self.access.client) from None

    def open_ioctx(self, pool: str) -> Any:
        return self._cluster.open_ioctx(pool)

    def close(self) -> None:
        self._cluster.shutdown()

    def __enter__(self) -> CephConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
