"""Cinder's RBD workflows, once per backend the spec declares (one cinder.conf section per
pool of cinder-volume, as the renderer writes them), each with that backend's rbd_user and
rbd_pool: volumes, snapshots, clones, a volume from the Glance image, and the backup
service's full and incremental backups of that backend's volumes, restored.

Step names end with the backend's section, e.g. "create volume [rbd-volume]", so a failure
says which backend it was; JSON has the section in each step's `backend`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from cephstack.ceph.adapter import CephConnection, Translated
from cephstack.errors import CephstackError, PermissionDenied
from cephstack.render.openstack import CINDER_CHUNK_MIB
from cephstack.render.openstack import backends as rendered_backends
from cephstack.spec.load import Spec
from cephstack.verify.runner import Explain, Explanation, Runner, expect
from cephstack.verify.workflows import (
    Context,
    MiB,
    clone_explained,
    digest,
    order_of,
    read_all,
)

VOLUME, BACKUP = "cinder-volume", "cinder-backup"
CONNECTED = f"{VOLUME}: connect with its own keyring"


@dataclass(frozen=True)
class Backend:
    """One Cinder RBD backend: its cinder.conf section (volume_backend_name aside) and pool."""

    section: str
    pool: str

    def named(self, step: str) -> str:
        return f"{step} [{self.section}]"

    def step_id(self, service: str, step: str) -> str:
        return f"{service}: {self.named(step)}"


def _pool_explained(ctx: Context, backend: Backend, error: CephstackError) -> Explanation:
    """A refused step on a backend's pool: that backend is broken, the others may work."""
    entity = ctx.identities[VOLUME].entity
    if not isinstance(error, PermissionDenied):
        return Explanation("", "")
    return Explanation(
        f"{entity} (rbd_user of backend {backend.section}) was refused on pool "
        f"{backend.pool}: volumes of volume types on this backend fail to be created, "
        "cloned, attached or backed up",
        f"grant osd 'profile rbd pool={backend.pool}' (cephstack apply does)")


def backends(spec: Spec) -> list[Backend]:
    """Every Cinder backend of the spec, in its order; none without a cinder-volume."""
    if VOLUME not in spec.services:
        return []
    return [Backend(section, pool) for pool, section, _ in rendered_backends(spec)]


# -- Cinder volume ------------------------------------------------------------------


def volumes(ctx: Context, runner: Runner, backend: Backend) -> None:
    svc = VOLUME
    conn = ctx.conn(svc)
    spec_service = ctx.spec.services[svc]
    pool = backend.pool
    order = order_of(spec_service.chunk_size_mib or CINDER_CHUNK_MIB)
    vol_a, snap_id = f"volume-{ctx.names.uuid()}", f"snapshot-{ctx.names.uuid()}"
    data = os.urandom(2 * MiB)

    def step(name: str, run: Callable[[], str], needs: tuple[str, ...] = (),
             explain: Explain | None = None) -> None:
        runner.step(svc, backend.named(name), run, needs=needs,
                    explain=explain or (lambda e: _pool_explained(ctx, backend, e)),
                    backend=backend.section)

    def create() -> str:
        conn.rbd("create", pool, vol_a, 8 * MiB, order, old_format=False)
        with conn.image(pool, vol_a) as image:
            image.write(data, MiB)
            expect(image.read(MiB, len(data)) == data, "data read back differs")
        return f"{pool}/{vol_a}, 8 MiB, data read back intact"

    def snapshot() -> str:
        with conn.image(pool, vol_a) as image:
            image.create_snap(snap_id)
            image.protect_snap(snap_id)
        return f"{pool}/{vol_a}@{snap_id} protected"

    def clone_of(parent_pool: str, parent: str, snap: str, expected: bytes,
                 at: int) -> str:
        child = f"volume-{ctx.names.uuid()}"
        conn.clone(parent_pool, parent, snap, pool, child)
        with conn.image(pool, child) as image:
            parent_pool_got, parent_got, snap_got = image.parent_info()
            expect((parent_pool_got, parent_got, snap_got) == (parent_pool, parent, snap),
                   f"{child} is not a copy-on-write child of {parent_pool}/{parent}@{snap}")
            expect(image.read(at, len(expected)) == expected, "clone data differs")
        return f"{pool}/{child}: child of {parent_pool}/{parent}@{snap}"

    def from_snapshot() -> str:
        return clone_of(pool, vol_a, snap_id, data, MiB)

    def clone_volume() -> str:
        child_snap = f"volume-{ctx.names.uuid()}.clone_snap"
        with conn.image(pool, vol_a) as image:
            image.create_snap(child_snap)
            image.protect_snap(child_snap)
        return clone_of(pool, vol_a, child_snap, data, MiB)

    def from_image() -> str:
        assert ctx.images_pool and ctx.image_id
        detail = clone_of(ctx.images_pool, ctx.image_id, "snap", ctx.image_data, 0)
        return detail + " (no full copy)"

    def extend() -> str:
        with conn.image(pool, vol_a) as image:
            image.resize(16 * MiB)
            expect(image.size() == 16 * MiB, "size after extend is wrong")
            expect(image.read(MiB, len(data)) == data, "data changed by extend")
        return "8 -> 16 MiB, data intact"

    created = (backend.step_id(svc, "create volume"),)
    step("create volume", create)
    step("snapshot (create, protect)", snapshot, needs=created)
    step("volume from snapshot (clone)", from_snapshot,
         needs=(backend.step_id(svc, "snapshot (create, protect)"),))
    step("clone of a volume (.clone_snap)", clone_volume, needs=created)
    if ctx.images_pool:
        step("volume from image (copy-on-write clone)", from_image,
             needs=("glance: upload image (create, write, snap, protect)",),
             explain=lambda e: (clone_explained(ctx, svc) if runner.passed(created[0])
                                else _pool_explained(ctx, backend, e)))
    step("extend", extend, needs=created)


# -- Cinder backup ------------------------------------------------------------------


def _copy_diff(src: Translated, dst: Translated, from_snap: str | None) -> int:
    """What `rbd export-diff | rbd import-diff` does: copy the changed extents."""
    extents: list[tuple[int, int, bool]] = []
    src.diff_iterate(0, src.size(), from_snap, lambda off, length, exists:
                     extents.append((off, length, exists)))
    for off, length, exists in extents:
        if exists:
            dst.write(src.read(off, length), off)
        else:
            dst.discard(off, length)
    return sum(length for _, length, _ in extents)


def backup(ctx: Context, runner: Runner, backend: Backend) -> None:
    """The Ceph backup driver on a volume of `backend`: the source is read as that
    backend's rbd_user (Cinder's), the backup written as the backup service's user."""
    svc = BACKUP
    volume_pool = backend.pool
    backup_pool = ctx.spec.services[svc].pools[0]
    cinder, bkp = ctx.conn(VOLUME), ctx.conn(svc)
    source = f"volume-{ctx.names.uuid()}"
    backup_id = ctx.names.uuid()
    base = f"{source}.backup.{backup_id}"
    snaps: list[str] = []
    size = 8 * MiB

    def snapshot_source() -> str:
        name = f"backup.{backup_id}.snap.{time.time():.6f}"
        with cinder.image(volume_pool, source) as image:
            image.create_snap(name)
        snaps.append(name)
        return name

    def checksum(conn: CephConnection, pool: str, name: str, snap: str) -> str:
        with conn.image(pool, name, snapshot=snap, read_only=True) as image:
            return digest(read_all(image))

    def transfer(from_snap: str | None, to_snap: str) -> str:
        with (cinder.image(volume_pool, source, snapshot=to_snap, read_only=True) as src,
              bkp.image(backup_pool, base) as dst):
            moved = _copy_diff(src, dst, from_snap)
            dst.create_snap(to_snap)  # import-diff recreates the snapshot on the base
        want = checksum(cinder, volume_pool, source, to_snap)
        got = checksum(bkp, backup_pool, base, to_snap)
        expect(got == want, f"backup {base}@{to_snap} differs from the source")
        return f"{moved // 1024} KiB copied, sha256 {got} matches the source"

    def full() -> str:
        cinder.rbd("create", volume_pool, source, size, order_of(CINDER_CHUNK_MIB),
                   old_format=False)
        with cinder.image(volume_pool, source) as image:
            image.write(os.urandom(3 * MiB), 0)
        snap = snapshot_source()
        bkp.rbd("create", backup_pool, base, size, order_of(CINDER_CHUNK_MIB),
                old_format=False, features=bkp.features("layering"))
        return f"{volume_pool}/{source} -> {backup_pool}/{base}: " + transfer(None, snap)

    def incremental() -> str:
        with cinder.image(volume_pool, source) as image:
            image.write(os.urandom(MiB), 5 * MiB)
        snap = snapshot_source()
        return transfer(snaps[0], snap)

    def restore(index: int) -> str:
        target = f"volume-{ctx.names.uuid()}"
        cinder.rbd("create", volume_pool, target, size, order_of(CINDER_CHUNK_MIB),
                   old_format=False)
        with (bkp.image(backup_pool, base, snapshot=snaps[index], read_only=True) as src,
              cinder.image(volume_pool, target) as dst):
            _copy_diff(src, dst, None)
            got = digest(read_all(dst))
        want = checksum(cinder, volume_pool, source, snaps[index])
        expect(got == want, f"restored {target} differs from the source at {snaps[index]}")
        return f"{volume_pool}/{target}: sha256 {got} matches the source at backup {index + 1}"

    def explain(e: CephstackError) -> Explanation:
        if not isinstance(e, PermissionDenied):
            return Explanation("", "")
        return Explanation(
            f"refused: {e.prefix}: backups of volumes on backend {backend.section} fail (the "
            f"driver reads pool {volume_pool} as {ctx.identities[VOLUME].entity} and writes "
            f"pool {backup_pool} as {ctx.identities[svc].entity})",
            f"grant osd 'profile rbd pool={volume_pool}' to Cinder's user and 'profile rbd "
            f"pool={backup_pool}' to the backup user (cephstack apply does)")

    def step(name: str, run: Callable[[], str], needs: tuple[str, ...]) -> None:
        runner.step(svc, backend.named(name), run, needs=needs, explain=explain,
                    backend=backend.section)

    full_name = "full backup (source as Cinder's user)"
    incremental_name = "incremental backup (diff since the last backup)"
    step(full_name, full, (CONNECTED,))
    step(incremental_name, incremental, (backend.step_id(svc, full_name),))
    step("restore the full backup", lambda: restore(0), (backend.step_id(svc, full_name),))
    step("restore the incremental backup", lambda: restore(1),
         (backend.step_id(svc, incremental_name),))
