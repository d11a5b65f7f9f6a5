"""How to reach a cluster (no binding needed: specs and settings build it)."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from cephstack.errors import AuthFailed, BadArguments, CephstackError, ClusterUnreachable


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
    """Before anything is sent: ceph.conf missing (the cluster cannot be found: exit 3); the
    keyring missing (bad input: exit 2) or holding no key for the user (no monitor was
    asked: an authentication failure of this side, exit 4)."""
    if not os.path.exists(access.conf):
        raise ClusterUnreachable(f"ceph.conf not found: {access.conf}",
                                 hint="pass --conf or set cluster.conf in the spec")
    if not access.keyring:
        return
    if not os.path.exists(access.keyring):
        raise BadArguments(f"keyring not found: {access.keyring}",
                           hint="pass --keyring or set cluster.keyring in the spec")
    try:
        with open(access.keyring, errors="replace") as f:
            holds = f"[{access.client}]" in f.read()
    except OSError:
        return  # unreadable: librados says why
    if not holds:
        raise AuthFailed(f"{access.keyring} holds no key for {access.client}: nothing was "
                         "sent to the monitors", hint="pass --keyring or --id")


def mon_addresses(conf: str) -> str:
    """The monitor addresses ceph.conf gives (mon_host), as written; "" when not found."""
    try:
        with open(conf, errors="replace") as f:
            found = re.search(r"^\s*mon[ _]host\s*=\s*(.+?)\s*$", f.read(), re.M)
    except OSError:
        return ""
    return found.group(1) if found else ""


def connect_failure(access: ClusterAccess, error: BaseException) -> CephstackError:
    """Why librados could not connect, the monitors not having refused it: a key of a type
    this host's librados cannot read (EIO at once: an aes256k key on Pacific or Reef,
    cephx.unreadable_key_failure), else no monitor answered in time."""
    from cephstack.ceph.cephx import unreadable_key_failure

    unreadable = unreadable_key_failure(access.keyring, access.client,
                                        getattr(error, "errno", None))
    if unreadable is not None:
        return unreadable
    tried = mon_addresses(access.conf)
    return ClusterUnreachable(
        f"cannot reach the cluster of {access.conf} as {access.client} within "
        f"{access.connect_timeout:g} s: {error}"
        + (f" (monitors tried: {tried})" if tried else ""),
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
