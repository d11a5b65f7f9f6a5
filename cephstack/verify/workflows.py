"""The RBD workflows of Glance and Nova, run with each one's own key (Cinder's, per
backend: cinder.py).

Operations, names and snapshot names follow the real drivers (glance_store rbd,
cinder rbd and ceph backup drivers, nova rbd_utils): a pass means the service will work.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cephstack.ceph.adapter import CephConnection, ClusterAccess, Translated
from cephstack.errors import CephstackError
from cephstack.render.openstack import CINDER_CHUNK_MIB, GLANCE_CHUNK_MIB
from cephstack.spec.load import Spec
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


def clone_explained(ctx: Context, service: str) -> Explanation:
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
                    explain=lambda e: clone_explained(ctx, svc))
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
