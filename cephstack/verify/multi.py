"""verify of a spec with `clusters:`: every cluster's one-cluster verify (run.py, unchanged,
on clusters.split()'s part) and the checks that only exist across clusters (across.py), all
at once: one thread per cluster and one per cross-cluster check.

Every step is named by where it ran: `edge1/glance: upload image ...`, a backup across
clusters `central->edge1/cinder-backup: ...`, the mirroring drill
`central->edge1/cinder-volume: failover drill: ...`. A cluster that fails (unreachable, a
timeout) keeps its error in its part; the other clusters' steps still run and are shown.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from cephstack.ceph import runlock
from cephstack.errors import EXIT_FAILED, CephstackError, Interrupted
from cephstack.spec.fleet import split
from cephstack.spec.load import Spec
from cephstack.verify import across
from cephstack.verify.cleanup import cleanup
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
class MultiReport:
    clusters: dict[str, ClusterResult]
    across: list[StepResult] = field(default_factory=list)  # labelled already
    across_run: str = ""
    across_cleanup: list[str] = field(default_factory=list)
    across_errors: dict[str, Exception] = field(default_factory=dict)  # cluster -> error

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


def unreachable_step(cluster: str, error: Exception) -> StepResult:
    return StepResult(f"{cluster}/cluster", "connect as the admin", FAIL, 0.0, error=str(error),
                      cause=f"nothing on {cluster} could be verified; the other clusters were",
                      fix=getattr(error, "hint", None) or "")


def _hint_spec(name: str, e: CephstackError) -> None:
    if any(flag in (e.hint or "") for flag in ("--conf", "--keyring", "--id")):
        e.hint = f"check clusters.{name} (conf, keyring, client) in the spec"


def _cluster(args: argparse.Namespace, name: str, part: Spec, shared: Progress,
             result: ClusterResult) -> None:
    from cephstack.commands.common import connect
    from cephstack.verify.run import run_verify

    try:
        with connect(args, part) as admin:
            result.report = run_verify(part, admin, only=args.only,
                                       progress=Labelled(shared, name),
                                       lock_wait=args.lock_wait,
                                       evacuate_wait=args.evacuate_wait)
    except CephstackError as e:
        _hint_spec(name, e)
        result.error = e
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


def _across(args: argparse.Namespace, spec: Spec, parts: dict[str, Spec], shared: Progress,
            report: MultiReport, outage: Any) -> None:
    """The cross-cluster checks, under a run lock (shared with other verifies) on each
    cluster they touch; then what they made is removed on each."""
    from cephstack.commands.common import connect, op_timeout

    sites = across.Sites(parts, {}, op_timeout(args))
    report.across_run = sites.names.run_id
    lanes = across.lanes(spec, parts, args.only, outage)
    if not lanes:
        return
    needed = [n for n in parts if any(n in lane.clusters for lane in lanes)]
    def open_locked(name: str, stack: contextlib.ExitStack) -> None:
        try:
            admin = connect(args, parts[name])
            stack.callback(admin.close)
            stack.enter_context(runlock.hold(admin, "verify", runlock.SHARED, args.lock_wait,
                                             run=sites.names.run_id))
        except CephstackError as e:
            _hint_spec(name, e)
            report.across_errors[name] = e
            return
        sites.admins[name] = admin

    with contextlib.ExitStack() as stack:
        stacks = [stack.enter_context(contextlib.ExitStack()) for _ in needed]
        # At once: a cluster that does not answer costs its connect timeout once.
        _each([lambda n=n, st=st: open_locked(n, st) for n, st in zip(needed, stacks,
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

        _each([lambda i=i: run_lane(i) for i in range(len(lanes))])
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


def _each(calls: list[Callable[[], None]]) -> None:
    """Run the calls at once, one thread each; return when all have ended."""
    threads = [threading.Thread(target=c, daemon=True, name=f"verify-clusters-{i}")
               for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run_multi_verify(args: argparse.Namespace, spec: Spec, progress: Progress,
                     outage: Any = None) -> MultiReport:
    """Every cluster's verify and the cross-cluster checks, at once. `outage`: the drill's
    cephstack.verify.drill.Outage (a sandbox's primary cut off: the forced failover path);
    None, the orderly one. Ctrl-C: every part cleans up, then Interrupted goes on."""
    parts = split(spec)
    wanted = _wanted(spec, args.only)
    report = MultiReport({n: ClusterResult(n, parts[n].cluster.conf) for n in wanted})
    errors: list[BaseException] = []

    def guarded(call: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                call()
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(e)
        return run

    work = [guarded(lambda n=n: _cluster(args, n, parts[n], progress, report.clusters[n]))
            for n in wanted]
    if args.only != "config":
        work.append(guarded(lambda: _across(args, spec, parts, progress, report, outage)))
    _each(work)
    for e in errors:
        if isinstance(e, Interrupted):
            raise e
    if errors:
        raise errors[0]
    return report


# -- output -------------------------------------------------------------------------


def as_json(report: MultiReport) -> dict[str, Any]:
    from cephstack.report.views import FORMAT_VERSION, verify_json

    def error_json(e: Exception) -> dict[str, Any]:
        return e.as_json() if isinstance(e, CephstackError) else {
            "kind": "failed", "message": str(e), "hint": None}

    clusters = {}
    for name, c in report.clusters.items():
        part: dict[str, Any] = {"conf": c.conf}
        if c.report is not None:
            labelled_report = replace(c.report, steps=[labelled(s, name) for s in c.report.steps])
            part.update(verify_json(labelled_report))
            part.pop("format_version")
        part["error"] = error_json(c.error) if c.error is not None else part.get("error")
        clusters[name] = part
    return {"format_version": FORMAT_VERSION, "passed": report.passed,
            "steps": [vars(s) for s in report.steps], "clusters": clusters,
            "across": {"run_id": report.across_run, "steps": [vars(s) for s in report.across],
                       "cleanup": report.across_cleanup,
                       "errors": {n: error_json(e) for n, e in report.across_errors.items()}},
            "failed": report.failed}


def as_text(report: MultiReport) -> str:
    from cephstack.report.views import verify_text

    lines: list[str] = []
    for name, c in report.clusters.items():
        lines.append(f"== cluster {name} ({c.conf}) ==")
        if c.report is not None:
            lines.append(verify_text(replace(c.report, steps=[labelled(s, name)
                                                              for s in c.report.steps])))
        else:
            lines.append(f"error: {name}: {c.error}")
            if getattr(c.error, "hint", None):
                lines.append(f"  hint: {c.error.hint}")
        lines.append("")
    if report.across or report.across_errors:
        lines.append("== across clusters ==")
        lines.append(verify_text(VerifyReport(report.across_run, steps=report.across,
                                              cleanup=report.across_cleanup)))
        lines += [f"error: {n}: {e}" for n, e in report.across_errors.items()]
        lines.append("")
    failed = report.failed
    lines.append(f"Verify across {len(report.clusters)} clusters "
                 + ("passed." if not failed else f"FAILED: {', '.join(failed)}."))
    return "\n".join(lines)


def cleanup_clusters(args: argparse.Namespace, spec: Spec) -> dict[str, Any]:
    """`verify --cleanup` on every cluster: cluster -> {removed, live_runs_skipped, error}."""
    from cephstack.commands.common import connect
    from cephstack.verify.cleanup import cleanup_leftovers

    out: dict[str, Any] = {}

    def one(name: str, part: Spec) -> None:
        try:
            with connect(args, part) as admin:
                found = cleanup_leftovers(admin, list(part.pools))
            out[name] = {"removed": found.removed, "live_runs_skipped": found.live_runs,
                         "error": None}
        except CephstackError as e:
            _hint_spec(name, e)
            out[name] = {"removed": [], "live_runs_skipped": [], "error": e}

    _each([lambda n=n, p=p: one(n, p) for n, p in split(spec).items()])
    return out
