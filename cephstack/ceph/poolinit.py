"""`rbd pool init`, in halves that many pools share.

It is: enable the rbd application, then librbd's pool validation (ValidatePoolRequest:
allocate a self-managed snapshot, which puts the pool in self-managed snapshot mode for
good; write rbd_info "validate"; release the snapshot; write "overwrite validated", which
an EC pool without overwrites refuses). Done here in two halves so that many pools' steps,
and the application enable, go to the monitor together: one commit round each.

The release is the one step nobody waits for: librbd treats its failure as harmless and,
finding "validate", goes on without it. A pool cephstack has just created has it sent in
the background (CephConnection.in_background): it lands in the monitors' next commit, a
second after the process may have ended, instead of holding the apply up for that second.
"""

from __future__ import annotations

import errno as errnos

from cephstack.ceph.adapter import POOL_VALIDATED, POOL_VALIDATING, RBD_INFO, CephConnection
from cephstack.errors import CephCommandError


def validate_start(conn: CephConnection, pool: str, fresh: bool = False) -> int | None:
    """First half; returns the snapshot id to release, if any. `fresh`: the pool was just
    created, so rbd_info cannot exist yet and need not be read (a read would wait for the
    new PGs to peer and miss the monitor's round)."""
    what = f"rbd pool init {pool}"
    state = b""
    if not fresh:
        [state] = conn.read_objects([(pool, RBD_INFO, 64)])
        if isinstance(state, CephCommandError):
            if state.errno != errnos.ENOENT:
                raise state
            state = b""
    if state in (POOL_VALIDATED, POOL_VALIDATING):
        return None
    with conn.ioctx(pool) as ioctx:
        # A pool that refuses self-managed snapshots (pool snapshots in use) fails here.
        snap_id = ioctx.create_self_managed_snap()
    conn.create_object(pool, RBD_INFO, POOL_VALIDATING, what)  # kept when it exists
    return snap_id


def validate_finish(conn: CephConnection, pool: str, snap_id: int | None,
                    release_in_background: bool = False) -> None:
    """Second half: release the snapshot (in the background when asked); mark the pool
    validated (an EC pool without overwrites fails this write)."""
    if snap_id is not None and release_in_background:
        conn.in_background(f"release-{pool}", lambda: _release(conn, pool, snap_id))
    elif snap_id is not None:
        _release(conn, pool, snap_id)
    with conn.ioctx(pool) as ioctx:
        ioctx.write(RBD_INFO, POOL_VALIDATED, 0)


def _release(conn: CephConnection, pool: str, snap_id: int) -> None:
    with conn.ioctx(pool) as ioctx:
        ioctx.remove_self_managed_snap(snap_id)
