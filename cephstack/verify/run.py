"""run_verify(): every selected service's workflows (Cinder's on each of its backends),
the evacuate takeovers, the least privilege matrix, then cleanup, always (also after a
failure, a timeout, Ctrl-C or SIGTERM).

The run holds the cluster's run lock, shared with other verifies (each touches only what
carries its own run marker) and exclusive of apply; its lock record names the run, so
`verify --cleanup` leaves it alone while it lives. When the cluster stops answering (a
timeout, or a service cannot connect any more) the run stops there, cleans up what it
can within its bound, and reports why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from cephstack import interrupt
from cephstack.ceph import runlock
from cephstack.ceph.adapter import CephConnection
from cephstack.errors import (
    CephstackError,
    CleanupIncomplete,
    Interrupted,
    StoppedInStep,
)
from cephstack.spec.load import SERVICE_KINDS, Spec
from cephstack.verify import cinder, config, privilege, workflows
from cephstack.verify.cleanup import cleanup
from cephstack.verify.evacuate import Takeover, finish
from cephstack.verify.model import RunNames, VerifyReport
from cephstack.verify.progress import Progress
from cephstack.verify.runner import ABORTS, Runner
from cephstack.verify.workflows import Context, Identity


def cleanup_budget(admin: CephConnection) -> float:
    """How long an interrupted run may take to stop and remove what it made: the call in
    flight and the first cleanup call may each wait out the operation timeout."""
    return 2 * admin.access.op_timeout + 20


def _selected(spec: Spec, only: str | None) -> list[str]:
    if only is not None and only not in spec.services and only != config.SERVICE:
        raise CephstackError(f"--only {only}: the spec has no such service",
                             hint=f"one of: {', '.join([*spec.services, config.SERVICE])}")
    return [k for k in SERVICE_KINDS if k in spec.services and only in (None, k)]


def run_verify(spec: Spec, admin: CephConnection, only: str | None = None,
               progress: Progress | None = None,
               lock_wait: float = 0.0, evacuate_wait: bool = False) -> VerifyReport:
    """`evacuate_wait`: prove librbd's own takeover (bounded by osd_client_watch_timeout,
    30 s by default) instead of the fencing path (blocklist, break the lock: seconds).
    `progress`: where each step's result goes as it finishes, and the live line of waits."""
    _selected(spec, only)  # a bad --only fails before anything is locked
    names = RunNames()
    interrupt.configure(grace=cleanup_budget(admin), hint=(
        f"verify removed what run {names.run_id} had made; `cephstack verify --cleanup` "
        "removes what a run killed outright left"))
    waits = (progress.waiting("the cluster's run lock (an apply holds it)")
             if progress is not None and lock_wait > 0 else contextlib.nullcontext())
    with contextlib.ExitStack() as stack:
        with waits:  # the live line only while the lock is awaited
            try:
                lock = stack.enter_context(runlock.hold(admin, "verify", runlock.SHARED,
                                                        lock_wait, run=names.run_id))
            except ABORTS as e:
                raise StoppedInStep(e, "take the cluster's run lock") from None
        try:
            report = _run(spec, admin, only, progress, names, evacuate_wait)
        except CleanupIncomplete:
            lock.keep_record()
            raise
        if report.cleanup_error is not None:
            lock.keep_record()  # names the run for verify --cleanup, once this one is gone
    return report


def _run(spec: Spec, admin: CephConnection, only: str | None,
         progress: Progress | None, names: RunNames,
         evacuate_wait: bool = False) -> VerifyReport:
    services = _selected(spec, only)
    ctx = Context(spec, names, {
        kind: Identity(kind, f"client.{s.user}", spec.keyrings.path_for(f"client.{s.user}"),
                       s.pools) for kind, s in spec.services.items()},
        spec.services["glance"].pools[0] if "glance" in spec.services else None,
        access=admin.access)
    runner = Runner(progress)
    runs = {names.run_id}
    report = VerifyReport(names.run_id)
    # Clones need Glance's image; backups read sources as Cinder's user.
    needed = set(services)
    if only == config.SERVICE:  # the checks compare what the services' users connect to
        needed = {k for k in ("glance", "cinder-volume", "nova") if k in spec.services}
    if needed & {"cinder-volume", "nova"} and "glance" in spec.services:
        needed.add("glance")
    if "cinder-backup" in needed:
        if "cinder-volume" not in spec.services:
            raise CephstackError("cinder-backup needs a cinder-volume service in the spec: "
                                 "the backup driver reads source volumes as Cinder's user")
        needed.add("cinder-volume")
    try:
        _workflows(ctx, runner, report, admin, services, needed, only, evacuate_wait)
    except StoppedInStep as e:
        report.aborted = e
    except ABORTS as e:
        report.aborted = StoppedInStep(e, runner.stopped_in or "between steps")
    except BaseException as e:  # a failure, Ctrl-C or SIGTERM: clean up, then let it go on
        _finish(ctx, runner, report, admin, runs)
        if isinstance(e, Interrupted) and report.cleanup_error is not None:
            raise CleanupIncomplete(
                f"cleanup incomplete: {report.cleanup_error.message}",
                hint=f"what run {names.run_id} made may be left behind; once the cluster "
                     "answers, cephstack verify --cleanup removes it") from None
        raise
    _finish(ctx, runner, report, admin, runs)
    return report


def _finish(ctx: Context, runner: Runner, report: VerifyReport, admin: CephConnection,
            runs: set[str]) -> None:
    """Close the services' connections; remove what this run made, and nothing else."""
    report.steps = runner.results
    for ident in ctx.identities.values():
        if ident.conn is not None:
            with contextlib.suppress(CephstackError):
                ident.conn.close()
    try:
        report.cleanup += cleanup(admin, list(ctx.spec.pools), runs)
    except ABORTS as e:
        report.cleanup_error = StoppedInStep(e, "cleanup")
    except CephstackError as e:
        report.cleanup_error = e


def _workflows(ctx: Context, runner: Runner, report: VerifyReport, admin: CephConnection,
               services: list[str], needed: set[str], only: str | None,
               evacuate_wait: bool = False) -> None:
    """Two rounds of lanes run at once (their snapshot ids share the monitors' commits):
    first Glance's upload, each backend's backups and the hosts' crashes and fences; then,
    with the image there to clone, each Cinder backend's volumes and Nova's disks while
    the second hosts take over. Then the checks that read the result, one at a time."""
    spec = ctx.spec
    takeovers: list[tuple[Takeover, str]] = []  # (takeover, its Cinder backend or "")
    try:
        connected = {k for k in SERVICE_KINDS if k in needed and workflows.connect(ctx, runner,
                                                                                    k)}
        volume_backends = cinder.backends(spec)
        if "nova" in services and "nova" in connected:
            takeovers.append((Takeover(ctx, wait=evacuate_wait), ""))
        if "cinder-volume" in services and "cinder-volume" in connected:
            takeovers += [(Takeover(ctx, evacuate_wait, "cinder-volume", b.pool), b.section)
                          for b in volume_backends]
        first: list[Callable[[], object]] = []
        if "glance" in connected:
            first.append(lambda: workflows.glance(ctx, runner))
        if "cinder-backup" in services and {"cinder-backup", "cinder-volume"} <= connected:
            first += [lambda b=b: cinder.backup(ctx, runner, b) for b in volume_backends]
        first += [lambda t=t: t.start(runner.progress, lambda: runner.stopped is not None)
                  for t, _ in takeovers]
        runner.parallel(first)
        for takeover, _ in takeovers:
            takeover.launch()  # from this thread: the second host lives as long as it
        second: list[Callable[[], object]] = []
        if "cinder-volume" in services and "cinder-volume" in connected:
            second += [lambda b=b: cinder.volumes(ctx, runner, b) for b in volume_backends]
        if "nova" in services and "nova" in connected:
            second.append(lambda: workflows.nova(ctx, runner))
        runner.parallel(second)
        for takeover, backend in takeovers:
            seconds = finish(ctx, runner, takeover, backend)
            if takeover.service == "nova":
                report.takeover_seconds, report.takeover_path = seconds, takeover.path
        if only in (None, config.SERVICE):
            config.checks(ctx, runner)
        for kind in services:
            if kind in connected:
                privilege.matrix(ctx, runner, admin, kind)
        if "glance" in services and "glance" in connected:
            # Glance deletes an image only once the volumes and disks cloned from it are
            # gone, as Cinder and Nova would have deleted them.
            others = [p for p in spec.pools if p != ctx.images_pool]
            try:
                report.cleanup += cleanup(admin, others, {ctx.names.run_id})
            except ABORTS as e:
                raise StoppedInStep(e, "remove the clones before Glance's delete") from None
            workflows.glance_delete(ctx, runner)
    finally:
        for takeover, _ in takeovers:
            takeover.stop()
