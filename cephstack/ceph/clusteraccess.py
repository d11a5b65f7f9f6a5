"""How to reach a cluster (no binding needed: specs and settings build it)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from cephstack.errors import CephstackError, ClusterUnreachable


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
    # More client options, e.g. (("ms_mon_client_mode", "crc"),): a client as a service is
    options: tuple[tuple[str, str], ...] = ()


DEFAULT_OP_TIMEOUT = ClusterAccess.op_timeout


def whole_seconds(value: float) -> str:
    """librados takes whole seconds; never 0 (which means "wait forever")."""
    return str(max(1, math.ceil(value)))


def check_files(access: ClusterAccess) -> None:
    """ClusterUnreachable, naming the file, when ceph.conf or the keyring is missing."""
    if not os.path.exists(access.conf):
        raise ClusterUnreachable(f"ceph.conf not found: {access.conf}",
                                 hint="pass --conf or set cluster.conf in the spec")
    if access.keyring and not os.path.exists(access.keyring):
        raise ClusterUnreachable(f"keyring not found: {access.keyring}",
                                 hint="pass --keyring or set cluster.keyring in the spec")


def connect_failure(access: ClusterAccess, error: BaseException) -> CephstackError:
    """Why librados could not connect, the monitors not having refused it: a key of a type
    this host's librados cannot read (EIO at once: an aes256k key on Pacific or Reef,
    cephx.unreadable_key_failure), else no monitor answered in time."""
    from cephstack.ceph.cephx import unreadable_key_failure

    unreadable = unreadable_key_failure(access.keyring, access.client,
                                        getattr(error, "errno", None))
    if unreadable is not None:
        return unreadable
    return ClusterUnreachable(
        f"cannot reach the cluster of {access.conf} as {access.client} within "
        f"{access.connect_timeout:g} s: {error}",
        hint="is a monitor running at the address in mon_host? "
             "(a sandbox: cephstack sandbox status)")


def librados_conf(access: ClusterAccess) -> dict[str, str]:
    """The client options of a connection. Connecting, monitor commands and OSD operations
    all give up after their timeout: nothing waits forever on a monitor, a placement group
    or a file."""
    ops = whole_seconds(access.op_timeout)
    conf = {"client_mount_timeout": whole_seconds(access.connect_timeout),
            "rados_mon_op_timeout": ops, "rados_osd_op_timeout": ops,
            "log_to_stderr": "false", "err_to_stderr": "false"}
    if access.keyring:
        conf["keyring"] = access.keyring
    conf.update(access.options)
    return conf
