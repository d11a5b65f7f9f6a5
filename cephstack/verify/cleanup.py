"""Remove what verify runs created (names holding MARKER), and nothing else."""

from __future__ import annotations

import errno as errnos

from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephCommandError
from cephstack.verify.model import MARKER


def _remove_image(admin: CephConnection, pool: str, name: str) -> None:
    with admin.image(pool, name) as image:
        for snap in list(image.list_snaps()):
            if image.is_protected_snap(snap["name"]):
                image.unprotect_snap(snap["name"])  # EBUSY while clones exist
            image.remove_snap(snap["name"])
    try:
        admin.rbd("remove", pool, name)
    except CephCommandError as e:
        if e.errno != errnos.EBUSY:
            raise
        # A crashed client's watch keeps the image busy until the OSD drops it: blocklist
        # those watchers (only ever on images verify made). Read-only: no watch of our own.
        with admin.image(pool, name, read_only=True) as image:
            watchers = list(image.watchers_list())
        if not watchers:
            raise
        for watcher in watchers:
            admin.mon("osd blocklist", blocklistop="add", addr=watcher["addr"])
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
    for _ in range(max_passes):  # clones first: a parent frees up once its children go
        still: list[tuple[str, str]] = []
        for pool, name in left:
            try:
                _remove_image(admin, pool, name)
                removed.append(f"image {pool}/{name}")
            except CephCommandError as e:
                if e.errno not in (errnos.EBUSY, errnos.ENOTEMPTY, errnos.EEXIST):
                    raise
                still.append((pool, name))
        left = still
        if not left:
            break
    if left:
        raise CephCommandError("verify cleanup", errnos.EBUSY,
                               f"could not remove {', '.join(f'{p}/{n}' for p, n in left)}")
    return removed
