"""Remove what verify runs created (names holding MARKER), and nothing else."""

from __future__ import annotations

import errno as errnos

from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephCommandError
from cephstack.verify.model import MARKER


def _remove_image(admin: CephConnection, pool: str, name: str) -> None:
    # Any client still watching a verify image is a dead one (a crashed "host" of the
    # evacuate check, or a run that was killed): blocklist it first, or librbd would wait
    # for its exclusive lock until the OSD drops the watch (30 s). Read-only: no watch of
    # our own.
    with admin.image(pool, name, read_only=True) as image:
        stale = list(image.watchers_list())
    for watcher in stale:
        admin.mon("osd blocklist", blocklistop="add", addr=watcher["addr"])
    with admin.image(pool, name) as image:
        for snap in list(image.list_snaps()):
            if image.is_protected_snap(snap["name"]):
                image.unprotect_snap(snap["name"])  # EBUSY while clones exist
            image.remove_snap(snap["name"])
    admin.rbd("remove", pool, name)


def cleanup(admin: CephConnection, pools: list[str], max_passes: int = 8) -> list[str]:
    """Remove verify's images (children first), probe objects and probe pools."""
    removed: list[str] = []
    existing = set(admin.mon("osd pool ls") or [])
    for pool in existing:
        if MARKER in pool:  # a probe pool a too-powerful user managed to create
            admin.mon("osd pool rm", pool=pool, pool2=pool, yes_i_really_really_mean_it=True)
            removed.append(f"pool {pool}")
    pools = [p for p in pools if p in existing]
    for pool in pools:
        with admin.ioctx(pool) as ioctx:
            for obj in [o.key for o in ioctx.list_objects() if MARKER in o.key
                        and o.key.startswith("cephstack-probe.")]:
                ioctx.remove_object(obj)
                removed.append(f"object {pool}/{obj}")
    left = [(p, n) for p in pools for n in admin.rbd("list", p) if MARKER in n]

    def attempt(pool: str, name: str) -> bool:
        try:
            _remove_image(admin, pool, name)
        except CephCommandError as e:
            if e.errno not in (errnos.EBUSY, errnos.ENOTEMPTY, errnos.EEXIST):
                raise
            return False  # it still has clones: the next pass, once they are gone
        return True

    for _ in range(max_passes):
        # All images at once: their snapshot removals share the monitor's commit rounds.
        done = admin.concurrently([lambda p=p, n=n: attempt(p, n) for p, n in left])
        removed += [f"image {p}/{n}" for (p, n), ok in zip(left, done, strict=True) if ok]
        left = [image for image, ok in zip(left, done, strict=True) if not ok]
        if not left:
            break
    if left:
        raise CephCommandError("verify cleanup", errnos.EBUSY,
                               f"could not remove {', '.join(f'{p}/{n}' for p, n in left)}")
    return removed
