"""The RBD workflows of Glance, Cinder, Cinder-backup and Nova, run with each one's own key.

Operations, names and snapshot names follow the real drivers (glance_store rbd,
cinder rbd and ceph backup drivers, nova rbd_utils): a pass means the service will work.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

from cephstack.ceph.adapter import CephConnection, ClusterAccess, Translated
from cephstack.errors import CephstackError
from cephstack.render.openstack import CINDER_CHUNK_MIB, GLANCE_CHUNK_MIB
from cephstack.spec import Spec
from cephstack.verify.model import RunNames
from cephstack.verify.runner import Explanation, Runner, expect

MiB = 1024 * 1024


@dataclass
class Identity:
    service: str
    entity: str
    keyring: str
    pools: tuple[str, ...]
    conn: CephConnection | None = None


@dataclass
class Context:
    spec: Spec
    names: RunNames
    identities: dict[str, Identity]
    images_pool: str | None
    image_id: str | None = None  # the Glance image uploaded by this run
    image_data: bytes = b""
    # How the admin reached the cluster (ceph.conf, connect and operation timeouts, as
    # given on the command line): the services' connections use the same.
    access: ClusterAccess | None = None

    def service_access(self, ident: Identity) -> ClusterAccess:
        admin = self.access or ClusterAccess(self.spec.cluster.conf,
                                             connect_timeout=self.spec.cluster.connect_timeout)
        return ClusterAccess(admin.conf, ident.keyring, ident.entity, admin.connect_timeout,
                             admin.op_timeout)

    def conn(self, service: str) -> CephConnection:
        ident = self.identities[service]
        if ident.conn is None:
            raise CephstackError(f"{ident.entity} is not connected")
        return ident.conn


def order_of(chunk_mib: int) -> int:
    return chunk_mib.bit_length() - 1 + 20  # 8 MiB objects -> order 23


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def read_all(image: Translated, chunk: int = 4 * MiB) -> bytes:
    size = image.size()
    return b"".join(image.read(off, min(chunk, size - off)) for off in range(0, size, chunk))


def connect(ctx: Context, runner: Runner, service: str) -> bool:
    ident = ctx.identities[service]

    def run() -> str:
        if not os.path.exists(ident.keyring):
            raise CephstackError(f"keyring not found: {ident.keyring}",
                                 hint="cephstack apply writes it")
        # Interruptible: on SIGINT/SIGTERM its next call raises instead of starting.
        ident.conn = CephConnection(ctx.service_access(ident), interruptible=True)
        return f"as {ident.entity} with {ident.keyring}"

    return runner.step(service, "connect with its own keyring", run,
                       generic_fix="run cephstack apply: it creates the user and its keyring")


def _clone_explained(ctx: Context, service: str) -> Explanation:
    ident = ctx.identities[service]
    return Explanation(
        f"{ident.entity} cannot read pool {ctx.images_pool}: copy-on-write clones of Glance "
        f"images fail, and {service} silently falls back to a full download and copy",
        f"grant osd 'profile rbd-read-only pool={ctx.images_pool}' (cephstack apply does)")


# -- Glance -------------------------------------------------------------------------


def glance(ctx: Context, runner: Runner) -> None:
    svc = "glance"
    spec_service = ctx.spec.services[svc]
    chunk = (spec_service.chunk_size_mib or GLANCE_CHUNK_MIB) * MiB
    pool = spec_service.pools[0]
    conn = ctx.conn(svc)
    image_id = ctx.names.uuid()
    data = os.urandom(chunk // 2 + 3 * MiB)  # spans two chunks, the last one partial

    def upload() -> str:
        conn.rbd("create", pool, image_id, len(data), order_of(chunk // MiB),
                 old_format=False, features=conn.features("layering"))
        ctx.image_id, ctx.image_data = image_id, data
        with conn.image(pool, image_id) as image:
            for off in range(0, len(data), chunk):
                image.write(data[off:off + chunk], off)
            image.create_snap("snap")
            image.protect_snap("snap")
        return f"{pool}/{image_id}@snap, {len(data) // MiB} MiB in {chunk // MiB} MiB chunks"

    def download() -> str:
        with conn.image(pool, image_id, snapshot="snap", read_only=True) as image:
            got = b"".join(image.read(off, min(chunk, len(data) - off))
                           for off in range(0, len(data), chunk))
        expect(got == data, "the image read back differs from what was written")
        return f"sha256 {digest(got)} matches"

    runner.step(svc, "upload image (create, write, snap, protect)", upload)
    runner.step(svc, "download image through its snapshot", download,
                needs=("glance: upload image (create, write, snap, protect)",))


def glance_delete(ctx: Context, runner: Runner) -> None:
    """Delete the image as Glance does; run after the clones made from it are gone."""
    svc = "glance"
    if ctx.image_id is None:
        runner.skip(svc, "delete image (unprotect, remove snap, remove)", "no image uploaded")
        return
    conn, pool, image_id = ctx.conn(svc), ctx.spec.services[svc].pools[0], ctx.image_id

    def delete() -> str:
        with conn.image(pool, image_id) as image:
            image.unprotect_snap("snap")
            image.remove_snap("snap")
        conn.rbd("remove", pool, image_id)
        ctx.image_id = None
        return "deleted"

    def explain(e: CephstackError) -> Explanation:
        return Explanation(
            f"{ctx.identities[svc].entity} cannot unprotect snapshots: unprotecting reads "
            "rbd_children in every pool, which osd 'profile rbd' allows; image deletes "
            "fail and images pile up",
            f"grant osd 'profile rbd pool={pool}' (cephstack apply does)")

    runner.step(svc, "delete image (unprotect, remove snap, remove)", delete, explain=explain)


# -- Cinder volume ------------------------------------------------------------------


def cinder(ctx: Context, runner: Runner) -> None:
    svc = "cinder-volume"
    conn = ctx.conn(svc)
    spec_service = ctx.spec.services[svc]
    pool = spec_service.pools[0]
    order = order_of(spec_service.chunk_size_mib or CINDER_CHUNK_MIB)
    vol_a, snap_id = f"volume-{ctx.names.uuid()}", f"snapshot-{ctx.names.uuid()}"
    data = os.urandom(2 * MiB)

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
        return f"{vol_a}@{snap_id} protected"

    def clone_of(parent_pool: str, parent: str, snap: str, expected: bytes,
                 at: int) -> str:
        child = f"volume-{ctx.names.uuid()}"
        conn.clone(parent_pool, parent, snap, pool, child)
        with conn.image(pool, child) as image:
            parent_pool_got, parent_got, snap_got = image.parent_info()
            expect((parent_pool_got, parent_got, snap_got) == (parent_pool, parent, snap),
                   f"{child} is not a copy-on-write child of {parent_pool}/{parent}@{snap}")
            expect(image.read(at, len(expected)) == expected, "clone data differs")
        return f"{child}: child of {parent_pool}/{parent}@{snap}"

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

    created = "cinder-volume: create volume"
    runner.step(svc, "create volume", create)
    runner.step(svc, "snapshot (create, protect)", snapshot, needs=(created,))
    runner.step(svc, "volume from snapshot (clone)", from_snapshot,
                needs=("cinder-volume: snapshot (create, protect)",))
    runner.step(svc, "clone of a volume (.clone_snap)", clone_volume, needs=(created,))
    if ctx.images_pool:
        runner.step(svc, "volume from image (copy-on-write clone)", from_image,
                    needs=("glance: upload image (create, write, snap, protect)",),
                    explain=lambda e: _clone_explained(ctx, svc))
    runner.step(svc, "extend", extend, needs=(created,))


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


def backup(ctx: Context, runner: Runner) -> None:
    svc = "cinder-backup"
    volume_pool = ctx.spec.services["cinder-volume"].pools[0]
    backup_pool = ctx.spec.services[svc].pools[0]
    cinder, bkp = ctx.conn("cinder-volume"), ctx.conn(svc)
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
        return transfer(None, snap)

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
        return f"{target}: sha256 {got} matches the source at backup {index + 1}"

    full_id = "cinder-backup: full backup (source as Cinder's user)"
    runner.step(svc, "full backup (source as Cinder's user)", full,
                needs=("cinder-volume: connect with its own keyring",))
    runner.step(svc, "incremental backup (diff since the last backup)", incremental,
                needs=(full_id,))
    runner.step(svc, "restore the full backup", lambda: restore(0), needs=(full_id,))
    runner.step(svc, "restore the incremental backup", lambda: restore(1),
                needs=("cinder-backup: incremental backup (diff since the last backup)",))


# -- Nova ---------------------------------------------------------------------------


def nova(ctx: Context, runner: Runner) -> None:
    svc = "nova"
    conn = ctx.conn(svc)
    spec_service = ctx.spec.services[svc]
    pool = spec_service.pools[0]
    booted = f"{ctx.names.uuid()}_disk"
    plain = f"{ctx.names.uuid()}_disk"

    def boot() -> str:
        assert ctx.images_pool and ctx.image_id
        conn.clone(ctx.images_pool, ctx.image_id, "snap", pool, booted)
        extra = os.urandom(MiB)
        with conn.image(pool, booted) as disk:
            expect(disk.parent_info() == (ctx.images_pool, ctx.image_id, "snap"),
                   f"{booted} is not a copy-on-write child of the image")
            disk.resize(16 * MiB)  # to the flavor's disk size
            disk.write(extra, 12 * MiB)
            expect(disk.read(0, len(ctx.image_data)) == ctx.image_data, "image data differs")
            expect(disk.read(12 * MiB, MiB) == extra, "guest writes read back differ")
        return f"{pool}/{booted}: child of {ctx.images_pool}/{ctx.image_id}@snap, 16 MiB"

    def create_plain() -> str:
        # What Nova does when the image is not cloneable: a disk of its own.
        conn.rbd("create", pool, plain, 8 * MiB, order_of(CINDER_CHUNK_MIB), old_format=False)
        with conn.image(pool, plain) as disk:
            disk.write(os.urandom(MiB), 0)
        return f"{pool}/{plain}"

    def resize_revert() -> str:
        with conn.image(pool, plain) as disk:
            before = disk.read(0, MiB)
            disk.create_snap("nova-resize")
            disk.write(os.urandom(MiB), 0)
            disk.rollback_to_snap("nova-resize")
            expect(disk.read(0, MiB) == before, "rollback did not restore the disk")
            disk.remove_snap("nova-resize")
        return "snapshot nova-resize, write, rollback, remove: data restored"

    def direct_snapshot() -> str:
        assert ctx.images_pool
        snap = ctx.names.uuid().replace("-", "")[:32]
        new_image = ctx.names.uuid()
        with conn.image(pool, plain) as disk:
            disk.create_snap(snap)
            disk.protect_snap(snap)
        conn.clone(pool, plain, snap, ctx.images_pool, new_image)
        with conn.image(ctx.images_pool, new_image) as image:
            image.flatten()
        with conn.image(pool, plain) as disk:
            disk.unprotect_snap(snap)
            disk.remove_snap(snap)
        with conn.image(ctx.images_pool, new_image) as image:
            image.create_snap("snap")
            image.protect_snap("snap")
        return f"{ctx.images_pool}/{new_image}@snap, flattened"

    if ctx.images_pool:
        runner.step(svc, "boot from image (copy-on-write clone)", boot,
                    needs=("glance: upload image (create, write, snap, protect)",),
                    explain=lambda e: _clone_explained(ctx, svc))
    runner.step(svc, "create a guest disk", create_plain)
    runner.step(svc, "resize snapshot and revert (nova-resize)", resize_revert,
                needs=("nova: create a guest disk",))
    if not (ctx.images_pool and spec_service.direct_snapshots):
        runner.skip(svc, "direct snapshot into the images pool",
                    "nova.direct_snapshots is off: snapshots go through Glance uploads")
    else:
        runner.step(svc, "direct snapshot into the images pool", direct_snapshot,
                    needs=("nova: create a guest disk",),
                    explain=lambda e: Explanation(
                        f"{ctx.identities[svc].entity} cannot write pool {ctx.images_pool}: "
                        "direct snapshots silently fall back to qemu-img convert and an "
                        "upload through Glance",
                        f"grant osd 'profile rbd pool={ctx.images_pool}' (cephstack apply "
                        "does when nova.direct_snapshots is true)"))
