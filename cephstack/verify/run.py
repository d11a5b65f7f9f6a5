"""run_verify(): every selected service's workflows, the evacuate takeover, the least
privilege matrix, then cleanup, always (also after a failure or Ctrl-C)."""

from __future__ import annotations

from collections.abc import Callable

from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephstackError
from cephstack.spec import SERVICE_KINDS, Spec
from cephstack.verify import config, privilege, workflows
from cephstack.verify.cleanup import cleanup
from cephstack.verify.evacuate import Takeover, finish
from cephstack.verify.model import RunNames, VerifyReport
from cephstack.verify.runner import Runner
from cephstack.verify.workflows import Context, Identity


def _selected(spec: Spec, only: str | None) -> list[str]:
    if only is not None and only not in spec.services and only != config.SERVICE:
        raise CephstackError(f"--only {only}: the spec has no such service",
                             hint=f"one of: {', '.join([*spec.services, config.SERVICE])}")
    return [k for k in SERVICE_KINDS if k in spec.services and only in (None, k)]


def run_verify(spec: Spec, admin: CephConnection, only: str | None = None,
               progress: Callable[[str], None] = lambda _: None) -> VerifyReport:
    services = _selected(spec, only)
    names = RunNames()
    ctx = Context(spec, names, {
        kind: Identity(kind, f"client.{s.user}", spec.keyrings.path_for(f"client.{s.user}"),
                       s.pools) for kind, s in spec.services.items()},
        spec.services["glance"].pools[0] if "glance" in spec.services else None)
    runner = Runner(progress)
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
    takeover: Takeover | None = None
    try:
        connected = {k for k in SERVICE_KINDS if k in needed and workflows.connect(ctx, runner,
                                                                                    k)}
        if "nova" in services and "nova" in connected:
            takeover = Takeover(ctx)
            takeover.start()  # the second host waits ~30 s; the other workflows run meanwhile
        if "glance" in connected:
            workflows.glance(ctx, runner)
        if "cinder-volume" in services and "cinder-volume" in connected:
            workflows.cinder(ctx, runner)
        if "cinder-backup" in services and {"cinder-backup", "cinder-volume"} <= connected:
            workflows.backup(ctx, runner)
        if "nova" in services and "nova" in connected:
            workflows.nova(ctx, runner)
        if takeover is not None:
            report.takeover_seconds = finish(ctx, runner, takeover)
        if only in (None, config.SERVICE):
            config.checks(ctx, runner)
        for kind in services:
            if kind in connected:
                privilege.matrix(ctx, runner, admin, kind)
        if "glance" in services and "glance" in connected:
            # Glance deletes an image only once the volumes and disks cloned from it are
            # gone, as Cinder and Nova would have deleted them.
            others = [p for p in spec.pools if p != ctx.images_pool]
            report.cleanup += cleanup(admin, others)
            workflows.glance_delete(ctx, runner)
    finally:
        if takeover is not None:
            takeover.stop()
        report.steps = runner.results
        for ident in ctx.identities.values():
            if ident.conn is not None:
                ident.conn.close()
        report.cleanup += cleanup(admin, list(spec.pools))
    return report
