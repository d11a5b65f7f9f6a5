"""The monitor's own cap parser, asked without changing anything."""

from __future__ import annotations

import errno as errnos
from collections.abc import Sequence
from contextlib import suppress

from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephCommandError

# `auth add` of this entity with the caps to check and, last, a cap type no monitor knows:
# the monitor parses every cap before it looks at the entity, so the command always fails
# and never changes anything; the error names the first cap it refused, or the sentinel.
CAPS_CHECK_ENTITY = "client.cephstack-caps-check"
_CAPS_SENTINEL = "cephstack-caps-check"


def caps_refused(conn: CephConnection, caps: Sequence[tuple[str, str]]) -> str | None:
    """The monitor's own parser on (daemon type, cap string) pairs, changing nothing:
    None when it accepts them all, else its message about the first it refuses. One
    mon command whatever their number (`auth import` itself does not check caps)."""
    args = [word for pair in caps for word in pair] + [_CAPS_SENTINEL, "allow r"]
    try:
        conn.mon("auth add", entity=CAPS_CHECK_ENTITY, caps=args)
    except CephCommandError as e:
        if e.errno != errnos.EINVAL:
            raise
        return None if f"'{_CAPS_SENTINEL}'" in e.ceph_message else e.ceph_message
    # Never reached with a monitor that parses caps first (every release since 12):
    # take back what it made and say so.
    with suppress(CephCommandError):
        conn.mon("auth rm", entity=CAPS_CHECK_ENTITY)
    raise CephCommandError("auth add", errnos.EPROTO,
                           "the monitor accepted an unknown cap type: caps not checked")
