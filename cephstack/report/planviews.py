"""The views of plan and apply, chosen once per command (view_of): a spec's one cluster
(`cluster:`) exactly as it always looked (views.py: no cluster prefix, one plan document),
a spec's several clusters (`clusters:`) in sections under their names (fleetviews.py).
Pure: strings, documents and exit codes; commands/plan_apply.py prints them."""

from __future__ import annotations

from typing import Any

from cephstack.errors import EXIT_FAILED, StalePlan
from cephstack.report import fleetviews
from cephstack.report.views import plan_json, plan_text
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.spec.load import Spec

_AGAIN = "run cephstack plan --out again and review it"


def shows_names(spec: Spec) -> bool:
    """Whether addresses and progress lines carry their cluster's name: a spec of several."""
    return bool(spec.clusters)


def view_of(spec: Spec, multi: Fleet) -> OneCluster | SeveralClusters:
    return SeveralClusters(spec, multi) if shows_names(spec) else OneCluster(spec, multi)


class OneCluster:
    """A spec's one cluster: its error is the command's error, its plan the document."""

    saved_line_first = False  # "Saved to ..." after the plan

    def __init__(self, spec: Spec, multi: Fleet) -> None:
        self.spec, self.multi, self.run = spec, multi, multi.only

    def failure(self) -> Exception | None:
        """The error to raise as it is, before any output: anything but not converging."""
        run = self.run
        return run.error if run.error is not None and (run.after is None
                                                       or run.after.empty) else None

    def plan_json(self, mon_commands: bool = False, **extra: Any) -> dict[str, Any]:
        if mon_commands:
            extra["mon_commands"] = self.run.conn.commands_sent
        return plan_json(self.run.plan, **extra)

    def plan_text(self) -> str:
        return plan_text(self.run.plan)

    def saved_line(self, out: str) -> str:
        return (f"Saved to {out}: cephstack apply --plan {out} applies exactly this, or "
                "refuses if the spec or the cluster changed.")

    def stale(self, saved: dict, path: str) -> StalePlan | None:
        """apply --plan: the cluster must be as it was when the plan was saved."""
        now = self.run.plan
        if now is None or saved["fingerprint"] == now.fingerprint:
            return None
        return StalePlan(f"the cluster changed since {path} was made (state "
                         f"{saved['fingerprint']}, now {now.fingerprint}); nothing applied",
                         hint=_AGAIN)

    def shown(self) -> str:
        """The plan about to be applied; and when apply --yes showed it before taking the
        lock, whether it changed meanwhile."""
        run = self.run
        lines = [plan_text(run.shown)] if run.shown is not None else []
        if run.plan is not run.shown:
            if run.shown is not None and run.early is not None:
                lines.append("The cluster changed while the lock was being taken (the new "
                             "pools were created); the plan is now:")
            elif run.shown is not None:
                lines.append("Another run held the lock; looked at again under it, the plan "
                             "is now:")
            lines.append(plan_text(run.plan))
        return "\n".join(lines)

    def still_differs(self, run: ClusterRun) -> str:
        return "the cluster still differs from the spec after apply:\n" + plan_text(run.after)

    def failure_lines(self, as_json: bool) -> list[str]:
        return []  # its error was raised as it is

    def applied(self, as_json: bool, fleet_steps: list[str],
                mirrored: list[str]) -> tuple[Any, list[str], int]:
        """(stdout: a document or a line, stderr lines, exit code) after apply."""
        run, result = self.run, self.run.result
        if as_json:
            out: Any = plan_json(run.plan, applied=run.applied, seconds=round(result.seconds, 3),
                                 mon_commands=run.conn.commands_sent,
                                 converged=run.after.empty)
        else:
            out = (f"Apply complete: {len(run.applied)} step(s) in {result.seconds:.1f} s, "
                   f"{result.commands_sent} mon command(s).")
        if not run.after.empty:
            return out, ["error: " + self.still_differs(run)], EXIT_FAILED
        return out, [], 0


class SeveralClusters:
    """A spec's several clusters: one document with a section each; a failed cluster
    named with its error while the others are shown."""

    saved_line_first = True  # "Saved to ..." before the sections

    def __init__(self, spec: Spec, multi: Fleet) -> None:
        self.spec, self.multi = spec, multi

    def failure(self) -> Exception | None:
        return None  # each cluster's error is shown in its section

    def plan_json(self, mon_commands: bool = False, **extra: Any) -> dict[str, Any]:
        return fleetviews.fleet_json(self.spec, self.multi, **extra)

    def plan_text(self) -> str:
        return fleetviews.fleet_text(self.spec, self.multi)

    def saved_line(self, out: str) -> str:
        return (f"Saved to {out}: cephstack apply --plan {out} applies exactly this, or "
                "refuses if the spec or a cluster changed.")

    def stale(self, saved: dict, path: str) -> StalePlan | None:
        """apply --plan: every reachable cluster must be as it was when it was saved."""
        clusters = saved.get("clusters", {})
        changed = [name for name, run in self.multi.runs.items()
                   if run.ok and run.plan is not None
                   and (clusters.get(name) or {}).get("plan", {}).get("fingerprint")
                   != run.plan.fingerprint]
        if not changed:
            return None
        return StalePlan(f"{', '.join(changed)} changed since {path} was made (or is not "
                         "in it); nothing applied", hint=_AGAIN)

    def shown(self) -> str:
        return self.plan_text()

    def still_differs(self, run: ClusterRun) -> str:
        return fleetviews.still_differs(run.name, run.after)

    def failure_lines(self, as_json: bool) -> list[str]:
        return fleetviews.failure_lines(self.multi, as_json)

    def applied(self, as_json: bool, fleet_steps: list[str],
                mirrored: list[str]) -> tuple[Any, list[str], int]:
        multi = self.multi
        done = [d for name, r in multi.runs.items()
                for d in fleetviews.applied_steps(name, r.applied)] + fleet_steps
        if as_json:
            out: Any = fleetviews.fleet_json(self.spec, multi, applied=done,
                                             mirroring_applied=mirrored)
        else:
            out = (f"Apply across {len(multi.runs)} clusters: {len(done)} step(s) done"
                   + (f"; failed: {', '.join(r.name for r in multi.failed)}."
                      if multi.failed else "."))
        return out, self.failure_lines(as_json), multi.exit_code()
