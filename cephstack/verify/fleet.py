"""verify over the fleet: every cluster's verify (run.py, on spec.fleet.split()'s part) and
the checks that only exist across clusters (across.py), all at once: one thread per
cluster and one per cross-cluster check. A spec with `cluster:` is a fleet of one: its one
verify, with no label and no check across clusters.

With several clusters every step is named by where it ran: `edge1/glance: upload image
...`, a backup across clusters `central->edge1/cinder-backup: ...`, the mirroring drill
`central->edge1/cinder-volume: failover drill: ...`. A cluster that fails (unreachable, a
timeout) keeps its error in its part; the other clusters' steps still run and are shown.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from cephstack.ceph import runlock
from cephstack.errors import EXIT_FAILED, CephstackError, Interrupted
from cephstack.session.connect import Settings, connect
from cephstack.session.fleet import refuse_overrides
from cephstack.spec.fleet import split
from cephstack.spec.load import Spec
from cephstack.verify import across
from cephstack.verify.cleanup import Leftovers, cleanup, cleanup_leftovers
from cephstack.verify.model import FAIL, StepResult, VerifyReport
from cephstack.verify.progress import Progress


def labelled(result: StepResult, where: str | Callable[[str], str]) -> StepResult:
    """The step with its service prefixed by where it ran (`edge1/glance`)."""
    place = where(result.service) if callable(where) else where
    return replace(result, service=f"{place}/{result.service}")


class Labelled(Progress):
    """Shows a part's steps on the shared Progress, each service prefixed with where it
    ran; waits are named with it too."""

    def __init__(self, shared: Progress, where: str | Callable[[str], str]) -> None:
        super().__init__(stream=io.StringIO(), tty=False, ticker=False)
        self.shared, self.where = shared, where

    def step_done(self, result: StepResult) -> None:
        self.shared.step_done(labelled(result, self.where))

    @contextlib.contextmanager
    def waiting(self, what: str) -> Iterator[None]:
        place = self.where if isinstance(self.where, str) else "across clusters"
        with self.shared.waiting(f"{what} ({place})"):
            yield

    def close(self) -> None:
        pass


@dataclass
class ClusterResult:
    name: str
    conf: str
    report: VerifyReport | None = None
    error: Exception | None = None  # could not verify at all (unreachable, refused, ...)


@dataclass
class FleetReport:
    clusters: dict[str, ClusterResult]
    across: list[StepResult] = field(default_factory=list)  # labelled already
    across_run: str = ""
    across_cleanup: list[str] = field(default_factory=list)
    across_errors: dict[str, Exception] = field(default_factory=dict)  # cluster -> error
    several: bool = False  # the spec has several clusters (steps are labelled with them)

    @property
    def steps(self) -> list[StepResult]:
        """Every step, labelled: each cluster's, then the cross-cluster ones."""
        out = []
        for name, c in self.clusters.items():
            if c.report is not None:
                out += [labelled(s, name) for s in c.report.steps]
            elif c.error is not None:
                out.append(unreachable_step(name, c.error))
        return out + self.across

    @property
    def failed(self) -> list[str]:
        names = [n for n, c in self.clusters.items()
                 if c.error is not None or (c.report is not None and not c.report.passed)]
        if any(s.result == FAIL for s in self.across) or self.across_errors:
            names.append("across clusters")
        return names

    @property
    def passed(self) -> bool:
        return not self.failed

    def exit_code(self) -> int:
        errors = [c.error or c.report.error for c in self.clusters.values()
                  if c.error is not None or (c.report is not None and c.report.error)]
        if not errors:
            return 0 if self.passed else EXIT_FAILED
        codes = {getattr(e, "exit_code", EXIT_FAILED) for e in errors}
        return codes.pop() if len(codes) == 1 else EXIT_FAILED

    def stops(self) -> list[tuple[str, Exception]]:
        """(cluster, why) of every part that stopped early or could not clean up."""
        out: list[tuple[str, Exception]] = []
        for name, c in self.clusters.items():
            error = c.error or (c.report.error if c.report is not None else None)
            if error is not None:
                out.append((name, error))
        return out + list(self.across_errors.items())


def unreachable_step(cluster: str, error: Exception) -> StepResult:
    return StepResult(f"{cluster}/cluster", "connect as the admin", FAIL, 0.0, error=str(error),
                      cause=f"nothing on {cluster} could be verified; the other clusters were",
                      fix=getattr(error, "hint", None) or "")


def _hint_spec(name: str, e: CephstackError) -> None:
    if any(flag in (e.hint or "") for flag in ("--conf", "--keyring", "--id")):
        e.hint = f"check clusters.{name} (conf, keyring, client) in the spec"


@dataclass(frozen=True)
class Options:
    """What the command line asks of verify (besides how to reach the clusters)."""

    only: str | None = None
    evacuate_wait: bool = False


def _cluster(settings: Settings, options: Options, name: str, part: Spec, shared: Progress,
             result: ClusterResult, several: bool) -> None:
    from cephstack.verify.run import run_verify

    try:
        with connect(settings, part) as admin:
            result.report = run_verify(part, admin, only=options.only,
                                       progress=Labelled(shared, name) if several else shared,
                                       lock_wait=settings.lock_wait,
                                       evacuate_wait=options.evacuate_wait)
    except CephstackError as e:
        result.error = e
        if several:  # one cluster: its error is the command's, as it always was
            _hint_spec(name, e)
            shared.step_done(unreachable_step(name, e))


def _wanted(spec: Spec, only: str | None) -> list[str]:
    """Clusters with something to verify: with --only SERVICE, those where it runs."""
    parts = split(spec)
    if only is None or only == "config":
        return list(parts)
    names = [n for n, p in parts.items() if only in p.services]
    if not names:
        raise CephstackError(f"--only {only}: the spec has no such service",
                             hint=f"one of: {', '.join([*spec.services, 'config'])}")
    return names


def _across(settings: Settings, sites: across.Sites, lanes: list[across.Lane],
            shared: Progress, report: FleetReport) -> None:
    """The cross-cluster checks, under a run lock (shared with other verifies) on each
    cluster they touch; then what they made is removed on each."""
    parts = sites.parts
    needed = [n for n in parts if any(n in lane.clusters for lane in lanes)]

    def open_locked(name: str, stack: contextlib.ExitStack) -> None:
        try:
            admin = connect(settings, parts[name])
            stack.callback(admin.close)
            stack.enter_context(runlock.hold(admin, "verify", runlock.SHARED,
                                             settings.lock_wait, run=sites.names.run_id))
        except CephstackError as e:
            _hint_spec(name, e)
            report.across_errors[name] = e
            return
        sites.admins[name] = admin

    with contextlib.ExitStack() as stack:
        stacks = [stack.enter_context(contextlib.ExitStack()) for _ in needed]
        # At once: a cluster that does not answer costs its connect timeout once.
        each([lambda n=n, st=st: open_locked(n, st) for n, st in zip(needed, stacks,
                                                                       strict=True)])
        results: list[list[StepResult]] = [[] for _ in lanes]
        errors: list[BaseException | None] = [None] * len(lanes)

        def run_lane(i: int) -> None:
            lane = lanes[i]
            missing = [c for c in lane.clusters if c not in sites.admins]
            if missing:  # this check needs a cluster that could not be reached
                results[i] = [StepResult("cluster", "reach every cluster of the check", FAIL,
                                         0.0, error=f"{missing[0]}: "
                                         f"{report.across_errors[missing[0]]}",
                                         cause=f"a check across {', '.join(lane.clusters)} "
                                         "needs both")]
                shared.step_done(labelled(results[i][0], lane.where))
                return
            try:
                results[i] = lane.run(sites, Labelled(shared, lane.where))
            except BaseException as e:  # noqa: BLE001 - re-raised in this thread
                errors[i] = e

        each([lambda i=i: run_lane(i) for i in range(len(lanes))])
        for lane, found in zip(lanes, results, strict=True):
            report.across += [labelled(s, lane.where) for s in found]
        for name, admin in sites.admins.items():
            try:
                report.across_cleanup += [f"{name}: {r}" for r in cleanup(
                    admin, list(parts[name].pools), {sites.names.run_id})]
            except CephstackError as e:
                report.across_errors[name] = e
        for e in errors:
            if e is not None:
                raise e


def each(calls: list[Callable[[], None]]) -> None:
    """Run the calls at once, one thread each (one call: in this thread); return when
    all have ended."""
    if len(calls) == 1:
        calls[0]()
        return
    threads = [threading.Thread(target=c, daemon=True, name=f"verify-clusters-{i}")
               for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def verify_fleet(settings: Settings, spec: Spec, options: Options, progress: Progress,
                 outage: Any = None) -> FleetReport:
    """Every cluster's verify and the cross-cluster checks, at once. `outage`: the drill's
    cephstack.verify.drill.Outage (a sandbox's primary cut off: the forced failover path);
    None, the orderly one. Ctrl-C: every part cleans up, then Interrupted goes on."""
    refuse_overrides(settings, spec)  # several clusters: each reached as the spec says
    parts = split(spec)
    wanted = _wanted(spec, options.only)
    several = len(parts) > 1
    report = FleetReport({n: ClusterResult(n, parts[n].cluster.conf) for n in wanted},
                         several=several)
    errors: list[BaseException] = []

    def guarded(call: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                call()
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(e)
        return run

    work = [guarded(lambda n=n: _cluster(settings, options, n, parts[n], progress,
                                         report.clusters[n], several)) for n in wanted]
    if options.only != "config":
        sites = across.Sites(parts, {}, settings.operation_timeout)
        report.across_run = sites.names.run_id
        if lanes := across.lanes(spec, parts, options.only, outage):
            work.append(guarded(lambda: _across(settings, sites, lanes, progress, report)))
    each(work)
    for e in errors:
        if isinstance(e, Interrupted):
            raise e
    if errors:
        raise errors[0]
    return report


@dataclass
class ClusterCleanup:
    found: Leftovers = field(default_factory=Leftovers)
    error: CephstackError | None = None


def cleanup_fleet(settings: Settings, spec: Spec) -> dict[str, ClusterCleanup]:
    """`verify --cleanup` on every cluster at once: cluster -> what it removed, or why not."""
    refuse_overrides(settings, spec)
    parts = split(spec)
    out = {name: ClusterCleanup() for name in parts}

    def one(name: str, part: Spec) -> None:
        try:
            with connect(settings, part) as admin:
                out[name].found = cleanup_leftovers(admin, list(part.pools))
        except CephstackError as e:
            if len(parts) > 1:
                _hint_spec(name, e)
            out[name].error = e

    each([lambda n=n, p=p: one(n, p) for n, p in parts.items()])
    return out
