"""Remove what verify runs created, and nothing else: images and trash entries whose names
carry a run's marker (their snapshots and clones with them), the run's probe object and
probe pool (one name per run, removed by name), and the run's record in the lock store.
Verify works in each pool's default namespace and creates no namespace.

A run stopped at any moment leaves only such names: an image half created (listed, no
header yet) is removed by `rbd remove` like any other, an image half removed sits in the
trash under its name. After removing, the pools are listed again: what is still there
makes the cleanup fail, naming it.

Nothing here lists a pool's objects: images are found with `rbd list` and `rbd trash ls`
(one read each of the pool's rbd_directory and rbd_trash), probes by their name.
`verify --cleanup` removes the leftovers of runs that are no longer alive and never
touches a live run: a run's lock record (with its run id) exists before it creates
anything, and the images are listed before the records are read, so an image of a live
run always has its live record in the same look.
"""

from __future__ import annotations

import contextlib
import errno as errnos
from dataclasses import dataclass, field

from cephstack.ceph import runlock
from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephCommandError
from cephstack.verify.model import MARKER, probe_name, run_of


@dataclass
class Leftovers:
    removed: list[str] = field(default_factory=list)
    live_runs: list[str] = field(default_factory=list)  # skipped: still running


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


def _images(admin: CephConnection, pools: list[str]) -> list[tuple[str, str]]:
    """(pool, image) of every image carrying a run marker: `rbd list` of each pool, at once."""
    listed = admin.concurrently([lambda p=p: admin.rbd("list", p) for p in pools])
    return [(p, n) for p, names in zip(pools, listed, strict=True) for n in names
            if run_of(n) is not None]


def _trash(admin: CephConnection, pools: list[str]) -> list[tuple[str, str, str]]:
    """(pool, image id, name) of every trash entry carrying a run marker, at once."""
    listed = admin.concurrently([lambda p=p: list(admin.rbd("trash_list", p)) for p in pools])
    return [(p, t["id"], t["name"]) for p, entries in zip(pools, listed, strict=True)
            for t in entries if run_of(t["name"]) is not None]


def _remove_trashed(admin: CephConnection, pool: str, image_id: str) -> None:
    try:
        admin.rbd("trash_remove", pool, image_id, force=True)
    except CephCommandError as e:
        if e.errno != errnos.ENOENT:
            raise


def _remove_probe(admin: CephConnection, pool: str, name: str) -> bool:
    try:
        with admin.ioctx(pool) as ioctx:
            ioctx.remove_object(name)
    except CephCommandError as e:
        if e.errno == errnos.ENOENT:
            return False
        raise
    return True


def cleanup(admin: CephConnection, pools: list[str], runs: set[str],
            images: list[tuple[str, str]] | None = None, max_passes: int = 8) -> list[str]:
    """Remove what the verify runs `runs` created in `pools`: probe pools and objects (by
    name), images (children first). `images`: already listed, if the caller did."""
    removed: list[str] = []
    if not runs:
        return removed
    existing = set(admin.mon("osd pool ls") or [])
    for pool in sorted(existing):
        if MARKER in pool and run_of(pool) in runs:  # a probe pool a too-powerful user made
            admin.mon("osd pool rm", pool=pool, pool2=pool, yes_i_really_really_mean_it=True)
            removed.append(f"pool {pool}")
    pools = [p for p in pools if p in existing]
    probes = [(p, probe_name(r)) for p in pools for r in sorted(runs)]
    found = admin.concurrently([lambda p=p, n=n: _remove_probe(admin, p, n) for p, n in probes])
    removed += [f"object {p}/{n}" for (p, n), ok in zip(probes, found, strict=True) if ok]
    if images is None:
        images = _images(admin, pools)
    left = [(p, n) for p, n in images if p in pools and run_of(n) in runs]

    def attempt(pool: str, name: str) -> bool:
        try:
            _remove_image(admin, pool, name)
        except CephCommandError as e:
            if e.errno == errnos.ENOENT:
                # Gone already, or created only half (no header to open): `rbd remove`
                # takes away what there is.
                with contextlib.suppress(CephCommandError):
                    admin.rbd("remove", pool, name)
                return True
            if e.errno not in (errnos.EBUSY, errnos.ENOTEMPTY, errnos.EEXIST):
                raise
            return False  # it still has clones: the next pass, once they are gone
        return True

    for _ in range(max_passes):
        if not left:
            break
        # All images at once: their snapshot removals share the monitor's commit rounds.
        done = admin.concurrently([lambda p=p, n=n: attempt(p, n) for p, n in left])
        removed += [f"image {p}/{n}" for (p, n), ok in zip(left, done, strict=True) if ok]
        left = [image for image, ok in zip(left, done, strict=True) if not ok]
    trashed = [t for t in _trash(admin, pools) if run_of(t[2]) in runs]
    admin.concurrently([lambda p=p, i=i: _remove_trashed(admin, p, i) for p, i, _ in trashed])
    removed += [f"trash {p}/{n} (id {i})" for p, i, n in trashed]
    # Listed again: what is still there (a removal that did nothing) is named, not hidden.
    images, trashed = _images(admin, pools), _trash(admin, pools)
    left = [f"image {p}/{n}" for p, n in images if run_of(n) in runs] + [
        f"trash {p}/{n} (id {i})" for p, i, n in trashed if run_of(n) in runs]
    if left:
        raise CephCommandError("verify cleanup", errnos.EBUSY,
                               f"could not remove {', '.join(left)}")
    return removed


def cleanup_leftovers(admin: CephConnection, pools: list[str]) -> Leftovers:
    """`verify --cleanup`: remove what runs that are no longer alive left behind."""
    existing = set(admin.mon("osd pool ls") or [])
    images = _images(admin, [p for p in pools if p in existing])
    trashed = _trash(admin, [p for p in pools if p in existing])
    # Read after listing: a run that made any of these images has its record already.
    records = [h for h in runlock.holders(admin) if h.run]
    live = {h.run for h in records if h.alive()}
    dead = [h for h in records if h.run not in live]
    runs = {run_of(n) for _, n in images} | {run_of(n) for _, _, n in trashed}
    runs |= {h.run for h in dead}
    runs |= {run_of(p) for p in existing if MARKER in p}
    runs = {r for r in runs if r is not None} - live
    result = Leftovers(live_runs=sorted(r for r in live if r is not None))
    result.removed = cleanup(admin, pools, runs, images)
    runlock.remove_stale(admin, dead)
    return result
