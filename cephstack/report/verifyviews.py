"""verify's report over the fleet (cephstack.verify.fleet.FleetReport), as text or JSON: a
fleet of one is its cluster's report as it always was (views.verify_text / verify_json);
several have a section per cluster, one for the checks across them, and their verdict."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cephstack import FORMAT_VERSION
from cephstack.errors import error_json
from cephstack.report.views import verify_json, verify_text
from cephstack.verify.fleet import FleetReport, labelled
from cephstack.verify.model import VerifyReport


def _one(report: FleetReport) -> VerifyReport | None:
    """The report of a fleet of one (None with several clusters)."""
    if report.several:
        return None
    return next(iter(report.clusters.values())).report


def fleet_json(report: FleetReport) -> dict[str, Any]:
    one = _one(report)
    if one is not None:
        return verify_json(one)
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


def fleet_text(report: FleetReport) -> str:
    one = _one(report)
    if one is not None:
        return verify_text(one)
    lines: list[str] = []
    for name, c in report.clusters.items():
        lines.append(f"== cluster {name} ({c.conf}) ==")
        if c.report is not None:
            lines.append(verify_text(replace(c.report, steps=[labelled(s, name)
                                                              for s in c.report.steps])))
        else:
            lines.append(f"error: {name}: {c.error}")
            if getattr(c.error, "hint", None):
                lines.append(f"  hint: {c.error.hint}")  # type: ignore[union-attr]
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
