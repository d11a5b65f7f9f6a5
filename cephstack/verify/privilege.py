"""Least privilege: what each service's user must NOT be able to do, as a matrix."""

from __future__ import annotations

import errno as errnos
from collections.abc import Callable

from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephCommandError, PermissionDenied
from cephstack.verify.runner import ABORTS, CheckFailed, Explanation, Runner
from cephstack.verify.workflows import Context

_FIX = ("restrict the user to its compiled caps: cephstack apply (--allow-disruptive, "
        "since it removes access)")


def _write_pools(ctx: Context, entity: str) -> set[str]:
    """Pools a user may write: its services' pools, and images for Nova's direct snapshots."""
    pools: set[str] = set()
    for kind, service in ctx.spec.services.items():
        if f"client.{service.user}" == entity:
            pools.update(service.pools)
            if kind == "nova" and service.direct_snapshots and ctx.images_pool:
                pools.add(ctx.images_pool)
    return pools


def _refused(run: Callable[[], object], mon: bool) -> bool:
    """True when Ceph refused for lack of caps (a monitor says EACCES, an OSD EPERM)."""
    try:
        run()
    except ABORTS:
        raise  # no answer is not a refusal: the run stops, it is not a finding
    except PermissionDenied as e:
        return e.errno == errnos.EACCES or not mon
    except CephCommandError:
        return False  # got past the caps check (e.g. "no such entity"): allowed
    return False


def matrix(ctx: Context, runner: Runner, admin: CephConnection, service: str) -> None:
    ident = ctx.identities[service]
    conn = ctx.conn(service)
    entity = ident.entity
    probe = ctx.names.probe()  # one name per run: cleanup removes it by name

    def denied(what: str, run: Callable[[], object], mon: bool,
               cleanup: Callable[[], object] | None = None) -> None:
        def check() -> str:
            if _refused(run, mon):
                return "refused, as it should be"
            if cleanup:
                cleanup()
            raise CheckFailed(f"{entity} can {what}")
        runner.step(service, f"must not {what}", check, explain=lambda e: Explanation(
            f"{entity} can {what}: more access than {service} needs", _FIX))

    def write_into(pool: str) -> None:
        with conn.ioctx(pool) as ioctx:
            ioctx.write_full(probe, b"cephstack verify probe")

    for pool in sorted(set(ctx.spec.pools) - _write_pools(ctx, entity)):
        denied(f"write to pool {pool}", lambda p=pool: write_into(p), mon=False)
    others = sorted({f"client.{s.user}" for s in ctx.spec.services.values()} - {entity})
    for other in others:
        denied(f"read the key of {other}", lambda o=other: conn.mon("auth get", entity=o),
               mon=True)
    denied("create pools", lambda: conn.mon("osd pool create", pool=probe, pg_num=1),
           mon=True, cleanup=lambda: admin.mon("osd pool rm", pool=probe, pool2=probe,
                                               yes_i_really_really_mean_it=True))
    denied("delete pools", lambda: conn.mon("osd pool rm", pool=probe, pool2=probe,
                                            yes_i_really_really_mean_it=True), mon=True)
    # A user that does not exist: if this is allowed, nothing real was changed.
    denied("change caps", lambda: conn.mon("auth caps", entity=f"client.{probe}",
                                           caps=["mon", "allow r"]), mon=True)
