"""Text and JSON views of `cephstack rotate` (cephstack.day2.rotating runs it): a spec's one
cluster shown as ever (its plan's numbered steps, one JSON document of that plan), several
as a section per cluster with cluster-prefixed steps and one document keyed by cluster.
No key in any of it. Pure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cephstack import FORMAT_VERSION
from cephstack.day2.rotate import RotationPlan
from cephstack.day2.rotating import RECORD_REMOVED, Rotation
from cephstack.errors import error_json, error_text
from cephstack.plan.actions import Plan
from cephstack.report.views import plan_json, plan_text


def rotation_plan_json(plan: RotationPlan) -> dict[str, Any]:
    """One cluster's rotation plan: who, how, the steps and the files (no key)."""
    return {"rotate": list(plan.rotate), "finish": list(plan.finish), "method": plan.method,
            "steps": plan.steps(), "files": plan_json(Plan(tuple(plan.files)))["actions"],
            "install_bundles": list(plan.roles), "notes": list(plan.notes),
            "mode": plan.mode, "key_type": plan.key_type,
            "refusals": list(plan.refusals)}


def rotation_plan_text(plan: RotationPlan) -> str:
    lines = ["cephstack will rotate keys in this order (no key is ever shown):", ""]
    lines += [f"  {i}. {step}" for i, step in enumerate(plan.steps(), 1)]
    lines.append("")
    lines += [f"Note: {n}" for n in plan.notes]
    lines += [f"Refused: {r}" for r in plan.refusals]
    return "\n".join(lines)


def one_cluster_json(plan: RotationPlan, dry_run: bool, done: list[str],
                     seconds: float | None = None, mon_commands: int | None = None
                     ) -> dict[str, Any]:
    """The document of a spec's one cluster; once rotated, with its time and commands."""
    return {"format_version": FORMAT_VERSION, "dry_run": dry_run, **rotation_plan_json(plan),
            "done": done, **({} if seconds is None else {
                "seconds": round(seconds, 3), "mon_commands": mon_commands})}


def one_cluster_done(plan: RotationPlan, steps: int, seconds: float,
                     mon_commands: int) -> str:
    users = ", ".join((*plan.rotate, *plan.finish))
    done = {"pending": "Pending keys staged and files rewritten", "commit":
            "Pending keys committed (the old keys are refused from now on)"}.get(
                plan.mode, "Rotation complete")
    lines = [f"{done} for {users}: {steps} step(s) in {seconds:.1f} s, "
             f"{mon_commands} mon command(s)."]
    lines += [f"Next, on each {role} host: cephstack host install "
              f"{plan.render_directory}/{role}  (then restart what its README.txt names)"
              for role in plan.roles]
    if plan.mode == "pending":
        lines.append(f"Then: cephstack rotate --commit {' '.join(plan.rotate)}")
    return "\n".join(lines)


def plan_text_by_cluster(rotation: Rotation) -> str:
    lines = ["cephstack will rotate keys in this order, on each cluster at once (no key is "
             "ever shown):", ""]
    for name, run in rotation.multi.runs.items():
        if name not in rotation.chosen:
            continue
        lines.append(f"== cluster {name} ({run.spec.cluster.conf}) ==")
        plan = rotation.plans.get(name)
        if plan is None:
            lines += [f"error: {name}: {error_text(run.error)}" if run.error
                      else f"error: {name}: not read", ""]
            continue
        steps = [s for s in plan.steps() if s != "remove the rotation record"]
        lines += [f"  {i}. {name}: {s}" for i, s in enumerate(steps, 1)]
        lines += [f"Note: {name}: {n}" for n in plan.notes]
        lines += [f"Refused: {name}: {r}" for r in plan.refusals]
        lines.append("")
    if rotation.render_directory:
        lines.append(f"== rendered files ({rotation.render_directory}) ==")
        if rotation.rendered is None:
            lines.append("Not compared: rendering needs every cluster, and one failed.")
        else:
            lines.append(plan_text(rotation.rendered))
        lines.append("")
    lines.append("Then: " + "; ".join(
        f"{name}: remove the rotation record" for name in rotation.chosen
        if name in rotation.plans) + ".")
    lines += [f"Then on each {role} host: cephstack host install "
              f"{Path(rotation.render_directory or '') / role}" for role in rotation.roles]
    return "\n".join(lines)


def document_by_cluster(rotation: Rotation, dry_run: bool) -> dict[str, Any]:
    multi = rotation.multi
    rendered = None
    if rotation.render_directory:
        rendered = {"directory": rotation.render_directory,
                    "compared": rotation.rendered is not None,
                    "files": plan_json(rotation.rendered)["actions"] if rotation.rendered
                    else [], "done": rotation.rendered_done or [],
                    "note": rotation.rendered_note,
                    "error": error_json(multi.rendered_error) if multi.rendered_error
                    else None}
    return {"format_version": FORMAT_VERSION, "dry_run": dry_run,
            "clusters": {name: {**(rotation_plan_json(rotation.plans[name])
                                   if name in rotation.plans else {}),
                                "done": rotation.done.get(name, []),
                                "error": error_json(run.error) if run.error else None}
                         for name, run in multi.runs.items() if name in rotation.chosen},
            "rendered": rendered, "install_bundles": list(rotation.roles),
            "refusals": rotation.refusals,
            "failed": [r.name for r in multi.failed]}


def done_by_cluster(rotation: Rotation) -> str:
    """After rotating several clusters: each one's outcome, then what is left to do."""
    lines = []
    for name, done in rotation.done.items():
        run = rotation.multi.runs[name]
        lines.append(f"{name}: " + (
            f"FAILED: {error_text(run.error)}" if not run.ok else
            f"rotation complete, {len(done)} step(s)" if RECORD_REMOVED in done else
            "keys and keyring files rewritten; rotation record kept (the rendered "
            "files were not): run the same rotate again"))
    if rotation.rendered_note:
        lines.append(f"Note: {rotation.rendered_note}")
    if rotation.multi.rendered_error:
        lines.append(f"error: rendered files: {error_text(rotation.multi.rendered_error)}")
    lines += [f"Next, on each {role} host: cephstack host install "
              f"{rotation.render_directory}/{role}  (then restart what its README.txt names)"
              for role in (rotation.roles if rotation.rendered_done is not None else ())]
    return "\n".join(lines)
