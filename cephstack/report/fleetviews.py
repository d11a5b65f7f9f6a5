"""Text and JSON views of plan and apply over a spec of several clusters (`clusters:`):
one document, a section per cluster (its addresses under its name), then the rendered
files and mirroring, and a summary line (planviews.py chooses between these and views.py's
one-cluster views). Pure: returns strings."""

from __future__ import annotations

from typing import Any

from cephstack import FORMAT_VERSION
from cephstack.errors import error_json, error_text
from cephstack.plan.fleet import prefixed
from cephstack.report.views import plan_json, plan_text
from cephstack.session.fleet import Fleet
from cephstack.spec.load import Spec


def fleet_json(spec: Spec, multi: Fleet, /, **extra: Any) -> dict[str, Any]:
    """The one JSON document of a plan or apply across clusters."""
    clusters: dict[str, Any] = {}
    actions: list[dict] = []
    refusals: list[str] = []
    for name, run in multi.runs.items():
        out: dict[str, Any] = {"conf": run.spec.cluster.conf}
        if run.plan is not None:
            out["plan"] = plan_json(prefixed(name, run.plan))
            actions += out["plan"]["actions"]
            refusals += out["plan"]["refusals"]
        if run.applied or "applied" in extra:
            out["applied"] = applied_steps(name, run.applied)
        if run.after is not None:
            out["converged"] = run.after.empty
        out["error"] = error_json(run.error) if run.error else None
        clusters[name] = out
    mirroring = None
    if spec.mirroring:
        m = spec.mirroring
        mirroring = {"primary": m.primary, "secondary": m.secondary, "pools": list(m.pools),
                     "schedule": m.schedule,
                     "changes": [{"address": s.address, "detail": s.detail}
                                 for s in multi.mirroring],
                     "pending": multi.mirroring_pending, "note": multi.mirroring_note,
                     "error": error_json(multi.mirroring_error) if multi.mirroring_error
                     else None}
    rendered = None
    if spec.render is not None:
        rendered = {"directory": spec.render.directory, "compared": multi.rendered is not None,
                    "actions": plan_json(multi.rendered)["actions"] if multi.rendered else [],
                    "error": error_json(multi.rendered_error) if multi.rendered_error
                    else None}
        actions += rendered["actions"]
    return {"format_version": FORMAT_VERSION, "fingerprint": multi.fingerprint,
            "changes": not multi.empty, "actions": actions, "refusals": refusals,
            "clusters": clusters,
            "mirroring": mirroring, "rendered": rendered,
            "failed": [r.name for r in multi.failed], **extra}


def applied_steps(name: str, steps: list[str]) -> list[str]:
    return [f"{name}: {step}" for step in steps]


def fleet_text(spec: Spec, multi: Fleet) -> str:
    lines: list[str] = []
    for name, run in multi.runs.items():
        lines.append(f"== cluster {name} ({run.spec.cluster.conf}) ==")
        if run.plan is not None:
            lines.append(plan_text(prefixed(name, run.plan)))
        if run.error is not None:
            lines.append(f"error: {name}: {error_text(run.error)}")
        lines.append("")
    if spec.render is not None:
        lines.append(f"== rendered files ({spec.render.directory}) ==")
        lines.append(plan_text(multi.rendered) if multi.rendered is not None else
                     "Not compared: rendering needs every cluster, and one failed.")
        if multi.rendered_error:
            lines.append(f"error: rendered files: {error_text(multi.rendered_error)}")
        lines.append("")
    if spec.mirroring:
        m = spec.mirroring
        lines.append(f"== mirroring {m.primary} -> {m.secondary} "
                     f"({', '.join(m.pools)}, every {m.schedule}) ==")
        lines += [f"  ~ {s.address}: {s.detail}" for s in multi.mirroring]
        if multi.mirroring_pending:
            lines.append(f"Pending: {multi.mirroring_pending}")
        if multi.mirroring_note:
            lines.append(f"Note: {multi.mirroring_note}")
        if multi.mirroring_error:
            lines.append(f"error: mirroring: {error_text(multi.mirroring_error)}")
        if not (multi.mirroring or multi.mirroring_pending or multi.mirroring_error
                or multi.mirroring_note):
            lines.append("No changes: mirroring is set up as the spec says.")
        lines.append("")
    lines.append(fleet_summary(multi))
    return "\n".join(lines)


def fleet_summary(multi: Fleet) -> str:
    parts = []
    for name, run in multi.runs.items():
        if run.error is not None:
            parts.append(f"{name}: FAILED")
        elif run.plan is not None:
            parts.append(f"{name}: {len(run.plan.actions)} change(s)")
    return f"Across {len(multi.runs)} clusters: " + "; ".join(parts) + "."


def failure_lines(multi: Fleet, as_json: bool) -> list[str]:
    """For stderr: each failure in full with --output json; in text, where stdout shows
    each under its cluster, one line naming them."""
    if not as_json:
        failed = [r.name for r in multi.failed] + (
            ["mirroring"] if multi.mirroring_error else []) + (
            ["rendered files"] if multi.rendered_error else [])
        return [f"error: failed: {', '.join(failed)} (the errors are shown above)"] \
            if failed else []
    lines = [f"error: cluster {run.name}: {error_text(run.error)}" for run in multi.failed]
    if multi.mirroring_error:
        lines.append(f"error: mirroring: {error_text(multi.mirroring_error)}")
    if multi.rendered_error:
        lines.append(f"error: rendered files: {error_text(multi.rendered_error)}")
    return lines


def still_differs(name: str, after: Any) -> str:
    """The error of a cluster that still differs from the spec after apply."""
    return ("the cluster still differs from the spec after apply:\n"
            + plan_text(prefixed(name, after)))
