"""The checks that only exist across clusters (verify of a spec with `clusters:`):

- a Cinder backup written to the backups' cluster and restored from it, when the backup
  pool is on another cluster than the volumes' (each side as its own user);
- Nova's copy-on-write clone from its zone's Glance store, proving the parent is in Nova's
  own cluster (images_rbd_glance_store_name points at the local store);
- with `mirroring:`, the failover drill (cephstack/verify/drill.py) on each mirrored pool.

Everything made here carries this run's marker and is removed at the end on each cluster
(the drill's volume carries the drill's own, and the drill removes it on both sides).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from cephstack.ceph.adapter import CephConnection, ClusterAccess
from cephstack.errors import CephstackError
from cephstack.spec.fleet import pool_cluster
from cephstack.spec.load import Spec
from cephstack.verify import cinder
from cephstack.verify.drill import DrillSite, Outage, failover_drill
from cephstack.verify.model import FAIL, PASS, RunNames, StepResult
from cephstack.verify.progress import Progress
from cephstack.verify.runner import ABORTS, Runner, expect
from cephstack.verify.workflows import Context, Identity, MiB, digest, read_all

DRILL_TIMEOUT = 60.0  # seconds each replication wait of the drill may take
_DRILL_LINE = re.compile(r"(ok|FAILED)  (.*) \(([0-9.]+) s\): (.*)", re.S)


@dataclass
class Sites:
    """Each cluster's one-cluster Spec, and admin connections (opened once, by the caller)."""

    parts: dict[str, Spec]
    admins: dict[str, CephConnection]
    op_timeout: float
    names: RunNames = field(default_factory=RunNames)

    def access(self, cluster: str, service: str) -> ClusterAccess:
        """How `service`'s own user reaches `cluster` (its keyring there)."""
        part = self.parts[cluster]
        entity = f"client.{part.services[service].user}"
        return ClusterAccess(part.cluster.conf, part.keyrings.path_for(entity), entity,
                             part.cluster.connect_timeout, self.op_timeout)

    def identity(self, cluster: str, service: str) -> Identity:
        access = self.access(cluster, service)
        return Identity(service, access.client, access.keyring or "",
                        self.parts[cluster].services[service].pools)


def _connect(runner: Runner, sites: Sites, ident: Identity, cluster: str) -> bool:
    """The step `<service>: connect with its own keyring` (the id the workflows need); the
    connection goes into `ident.conn`. Each lane has its own Runner, so the id is its own."""
    def run() -> str:
        if not os.path.exists(ident.keyring):
            raise CephstackError(f"keyring not found: {ident.keyring}",
                                 hint="cephstack apply writes it")
        ident.conn = CephConnection(sites.access(cluster, ident.service), interruptible=True)
        ident.conn.mon("fsid")  # connected and allowed to talk to the monitors
        return f"as {ident.entity} on {cluster} with {ident.keyring}"

    return runner.step(ident.service, "connect with its own keyring", run,
                       generic_fix=f"run cephstack apply: it creates {ident.entity} on {cluster}")


def _close(*idents: Identity) -> None:
    for ident in idents:
        if ident.conn is not None:
            with contextlib.suppress(CephstackError):
                ident.conn.close()


# -- a backup on another cluster ----------------------------------------------------


def backup_pairs(spec: Spec, parts: dict[str, Spec]) -> list[tuple[str, str]]:
    """(volume cluster, backup cluster) where Cinder's backups go to another cluster."""
    if "cinder-backup" not in spec.services or "cinder-volume" not in spec.services:
        return []
    target = pool_cluster(spec, spec.services["cinder-backup"].pools[0])
    volume_clusters = dict.fromkeys(pool_cluster(spec, p)
                                    for p in spec.services["cinder-volume"].pools)
    return [(v, target) for v in volume_clusters if v != target and v in parts]


def remote_backup(sites: Sites, progress: Progress, spec: Spec, volumes: str,
                  backups: str) -> list[StepResult]:
    """cinder.backup() itself, with Cinder's user connected to the volumes' cluster and the
    backup user to the backups' cluster: full and incremental backups, both restored
    byte-equal into new volumes on the volumes' cluster."""
    runner = Runner(progress)
    ctx = Context(spec, sites.names, {
        "cinder-volume": sites.identity(volumes, "cinder-volume"),
        "cinder-backup": sites.identity(backups, "cinder-backup")}, None)
    try:
        if (_connect(runner, sites, ctx.identities["cinder-volume"], volumes)
                and _connect(runner, sites, ctx.identities["cinder-backup"], backups)):
            for b in cinder.backends(sites.parts[volumes]):
                cinder.backup(ctx, runner, cinder.Backend(f"{volumes}/{b.section}", b.pool))
    except ABORTS:
        pass  # the step that found the cluster not answering is recorded
    finally:
        _close(*ctx.identities.values())
    return runner.results


# -- Nova's clone from its zone's Glance store --------------------------------------


def clone_zones(spec: Spec) -> list[tuple[str, str, str]]:
    """(zone's cluster, Glance store pool there, Nova's pool) for every Nova pool whose
    cluster has a Glance store: the store images_rbd_glance_store_name names."""
    if "nova" not in spec.services or "glance" not in spec.services:
        return []
    stores = {pool_cluster(spec, p): p for p in spec.services["glance"].pools}
    return [(c, stores[c], p) for p in spec.services["nova"].pools
            if (c := pool_cluster(spec, p)) in stores]


def local_clone(sites: Sites, progress: Progress, cluster: str, store: str,
                pool: str) -> list[StepResult]:
    """Glance uploads an image to the zone's store, Nova clones it into its pool: the
    clone's parent is that store's image, on the same cluster (same fsid) as Nova."""
    runner = Runner(progress)
    glance = sites.identity(cluster, "glance")
    nova = sites.identity(cluster, "nova")
    image_id, disk = sites.names.uuid(), f"{sites.names.uuid()}_disk"
    data = os.urandom(2 * MiB)

    def run() -> str:
        g, n = glance.conn, nova.conn
        assert g is not None and n is not None
        g.rbd("create", store, image_id, len(data), old_format=False,
              features=g.features("layering"))
        with g.image(store, image_id) as image:
            image.write(data, 0)
            image.create_snap("snap")
            image.protect_snap("snap")
        n.clone(store, image_id, "snap", pool, disk)
        with n.image(pool, disk) as child:
            parent = child.parent_info()
            expect(parent == (store, image_id, "snap"),
                   f"{pool}/{disk}'s parent is {parent}, not {store}/{image_id}@snap")
            expect(read_all(child) == data, "the clone reads differently from the image")
        fsids = {n.fsid(), g.fsid(), sites.admins[cluster].fsid()}
        expect(len(fsids) == 1, "Nova's and Glance's users reach different clusters: "
               f"{sorted(fsids)}")
        return (f"{pool}/{disk}: child of {store}/{image_id}@snap in cluster {cluster} "
                f"(fsid {fsids.pop()}), sha256 {digest(data)} read through")

    try:
        if (_connect(runner, sites, glance, cluster) and _connect(runner, sites, nova, cluster)):
            runner.step("nova", f"boot from the zone's Glance store {store} (copy-on-write, "
                        f"parent in {cluster})", run,
                        generic_fix=f"grant Nova osd 'profile rbd-read-only pool={store}' on "
                        f"{cluster} (cephstack apply does)")
    except ABORTS:
        pass
    finally:
        _close(glance, nova)
    return runner.results


# -- the mirroring drill ------------------------------------------------------------


def drill(sites: Sites, progress: Progress, spec: Spec, pool: str,
          outage: Outage | None = None) -> list[StepResult]:
    """The failover drill on `pool`, as Cinder's user on each side; each drill step is a
    step here (`failover drill: <step> [<pool>]`), shown as it finishes."""
    m = spec.mirroring
    svc = "cinder-volume"
    results: list[StepResult] = []

    def record(result: StepResult) -> None:
        results.append(result)
        progress.step_done(result)

    def shown(line: str) -> None:
        found = _DRILL_LINE.fullmatch(line)
        if found:
            ok, step, seconds, detail = found.groups()
            passed = ok == "ok"
            record(StepResult(svc, f"failover drill: {step} [{pool}]", PASS if passed else FAIL,
                              float(seconds), detail=detail if passed else "",
                              error="" if passed else detail))

    for side in (m.primary, m.secondary):
        access = sites.access(side, svc)
        if not os.path.exists(access.keyring or ""):
            record(StepResult(svc, f"failover drill [{pool}]", FAIL, 0.0,
                              error=f"keyring not found: {access.keyring}",
                              fix="cephstack apply writes it"))
            return results
    steps = failover_drill(DrillSite(m.primary, sites.admins[m.primary],
                                     sites.access(m.primary, svc)),
                           DrillSite(m.secondary, sites.admins[m.secondary],
                                     sites.access(m.secondary, svc)),
                           pool, timeout=DRILL_TIMEOUT, outage=outage, progress=shown)
    if len(results) != len(steps):  # a line not understood: the drill's own list counts
        results[:] = [StepResult(svc, f"failover drill: {s.name} [{pool}]",
                                 PASS if s.ok else FAIL, s.seconds,
                                 detail=s.detail if s.ok else "",
                                 error="" if s.ok else s.detail) for s in steps]
    return results


@dataclass(frozen=True)
class Lane:
    """One cross-cluster check: the clusters it needs, where each service's steps ran
    (`where(service)` prefixes its steps: `central->edge1/cinder-backup`), and `run`,
    given the Progress to show its steps on, returns its steps (unlabelled)."""

    clusters: tuple[str, ...]
    where: Callable[[str], str]
    run: Callable[[Sites, Progress], list[StepResult]]


def lanes(spec: Spec, parts: dict[str, Spec], only: str | None,
          outage: Outage | None = None) -> list[Lane]:
    """The cross-cluster checks `only` selects (they run at once, one thread each); none
    in a fleet of one."""
    out: list[Lane] = []
    if len(parts) < 2:
        return out
    if only in (None, "cinder-backup"):
        # The source volumes' side is Cinder's on its cluster; the backups' side is named
        # from -> to.
        out += [Lane((v, b), lambda svc, v=v, b=b: v if svc == "cinder-volume" else f"{v}->{b}",
                     lambda sites, progress, v=v, b=b: remote_backup(sites, progress, spec, v, b))
                for v, b in backup_pairs(spec, parts)]
    if only in (None, "nova"):
        out += [Lane((c,), lambda svc, c=c: c,
                     lambda sites, progress, c=c, s=s, p=p: local_clone(sites, progress, c, s, p))
                for c, s, p in clone_zones(spec)]
    if spec.mirroring is not None and only in (None, "cinder-volume"):
        m = spec.mirroring
        pair = f"{m.primary}->{m.secondary}"
        out += [Lane((m.primary, m.secondary), lambda svc: pair,
                     lambda sites, progress, p=p: drill(sites, progress, spec, p, outage))
                for p in m.pools]
    return out
