"""Text (Terraform-like) and JSON views of plans and apply results. Pure: returns strings."""

from __future__ import annotations

import json
from typing import Any

from cephstack import FORMAT_VERSION
from cephstack.adopt.audit import Finding
from cephstack.plan.make import Action, Plan
from cephstack.plan.state import Health
from cephstack.text import printable, printable_lines
from cephstack.verify.model import VerifyReport


def _value(v: object) -> str:
    if v is None:
        return "(none)"
    return f'"{v}"' if isinstance(v, str) and " " in v else str(v)


def _noun(kind: str) -> str:
    for noun in ("crush_rule", "pool", "keyring", "rendered_file"):
        if noun in kind:
            return noun.replace("_", " ")
    return "client"


def summary_line(plan: Plan) -> str:
    if plan.empty:
        return ("No changes cephstack can make: the refusals above say where the cluster "
                "differs from the spec." if plan.refusals else
                "No changes: the cluster matches the spec.")
    creates: dict[str, int] = {}
    changes = removes = destroys = 0
    for a in plan.actions:
        if a.symbol == "+":
            noun = _noun(a.kind)
            creates[noun] = creates.get(noun, 0) + 1
        elif a.kind == "remove_rendered_file":
            removes += 1
        elif a.symbol == "-":  # apply --prune: what cephstack created, no longer declared
            destroys += 1
        else:
            changes += 1
    parts = [f"{n} {noun}{'s' if n != 1 else ''} to create" for noun, n in creates.items()]
    parts.append(f"{changes} to change")
    if removes:
        parts.append(f"{removes} rendered file{'s' if removes != 1 else ''} to remove")
    return f"Plan: {', '.join(parts + [f'{destroys} to destroy'])}."


def health_line(h: Health) -> str:
    """The cluster in one line: "Cluster: HEALTH_OK, 3 OSDs (3 up, 3 in), 128 PGs
    active+clean", or every PG state with its count when they differ."""
    osds = f"{h.osds} OSD{'' if h.osds == 1 else 's'} ({h.osds_up} up, {h.osds_in} in)"
    if not h.pgs_known:
        pgs = f"{h.pgs} PGs, states unknown (no active manager)"
    elif len(h.pg_states) == 1:
        [(state, count)] = h.pg_states.items()
        pgs = f"{count} PG{'' if count == 1 else 's'} {state}"
    elif h.pg_states:
        by_count = sorted(h.pg_states.items(), key=lambda kv: (-kv[1], kv[0]))
        pgs = f"{h.pgs} PGs: " + ", ".join(f"{n} {state}" for state, n in by_count)
    else:
        pgs = f"{h.pgs} PGs"
    raised = f" ({', '.join(printable(c) for c in h.checks)})" if h.checks else ""
    return f"Cluster: {h.status + raised + ', ' if h.status else ''}{osds}, {pgs}"


def _health_json(h: Health) -> dict[str, Any]:
    return {"summary": health_line(h), "status": h.status or None, "checks": list(h.checks),
            "osds": {"total": h.osds, "up": h.osds_up, "in": h.osds_in},
            "pgs": {"total": h.pgs, "states_known": h.pgs_known, "by_state": h.pg_states,
                    "by_pool": h.pool_pg_states}}


def _action_lines(a: Action) -> list[str]:
    lines = [f"  {a.symbol} {a.address}" + ("   # DISRUPTIVE" if a.disruptive else "")]
    for c in a.changes():
        if a.symbol == "+":
            lines.append(f"      {c.field} = {_value(c.after)}")
        else:
            note = f"   # {c.why}" if c.why else ""
            lines.append(f"      {c.field}: {_value(c.before)} -> {_value(c.after)}{note}")
    return lines


def plan_text(plan: Plan) -> str:
    lines: list[str] = [health_line(plan.health), ""] if plan.health else []
    if plan.actions:
        removing = {a.kind for a in plan.actions if a.symbol == "-"}
        minus = ("" if not removing else ", - remove a rendered file"
                 if removing == {"remove_rendered_file"} else ", - remove")
        lines.append(f"cephstack will perform these actions (+ create, ~ change in place{minus}):")
        lines.append("")
        for a in plan.actions:
            lines += _action_lines(a)
        lines.append("")
    if plan.unmanaged_pools or plan.unmanaged_clients:
        lines.append("Not in the spec, left alone (unmanaged):")
        if plan.unmanaged_pools:
            lines.append(f"  pools:   {', '.join(plan.unmanaged_pools)}")
        if plan.unmanaged_clients:
            lines.append(f"  clients: {', '.join(plan.unmanaged_clients)}")
        lines.append("")
    if plan.render_after_apply:
        lines.append(f"Rendered files in {plan.render_after_apply} are checked and refreshed "
                     "once the new users exist (apply does it).")
    for note in plan.notes:
        lines.append(f"Note: {note}")
    for refusal in plan.refusals:
        lines.append(f"Refused: {refusal}")
    if plan.disruptive:
        lines.append(f"{len(plan.disruptive)} disruptive action(s): apply needs "
                     "--allow-disruptive.")
    lines.append(summary_line(plan))
    return printable_lines("\n".join(lines))  # names from the cluster are data


def _action_json(a: Action) -> dict[str, Any]:
    return {
        "kind": a.kind, "symbol": a.symbol, "address": a.address, "disruptive": a.disruptive,
        "changes": [{"field": c.field, "before": c.before, "after": c.after,
                     "disruptive": c.disruptive, "why": c.why} for c in a.changes()],
    }


def plan_json(plan: Plan, **extra: Any) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "fingerprint": plan.fingerprint,
        "changes": not plan.empty,
        "summary": summary_line(plan),
        "actions": [_action_json(a) for a in plan.actions],
        "unmanaged": {"pools": list(plan.unmanaged_pools),
                      "clients": list(plan.unmanaged_clients)},
        "refusals": list(plan.refusals),
        "notes": list(plan.notes),
        "cluster": _health_json(plan.health) if plan.health else None,
        "render_after_apply": plan.render_after_apply,
        "settings": plan.settings,
        **extra,
    }


def verify_text(report: VerifyReport) -> str:
    lines: list[str] = []
    services = list(dict.fromkeys(s.service for s in report.steps))
    width = max((len(s.name) for s in report.steps), default=10)
    for service in services:
        lines.append(service)
        for s in (s for s in report.steps if s.service == service):
            lines.append(f"  {s.name:<{width}}  {s.result.upper():<4}  {s.seconds:6.2f}s"
                         + (f"  {s.detail}" if s.detail else ""))
            for label, text in (("error", s.error), ("cause", s.cause), ("fix", s.fix)):
                if text and s.result == "fail":
                    lines.append(f"      {label}: {text}")
        lines.append("")
    if report.takeover_seconds is not None:
        how = {"fence": "fenced: dead client blocklisted, its lock broken",
               "wait": "librbd's own, after the OSD watch timeout"}.get(
                   report.takeover_path or "", "")
        lines.append(f"Evacuate takeover: {report.takeover_seconds:.1f} s"
                     + (f" ({how})" if how else ""))
    counts = {r: sum(s.result == r for s in report.steps) for r in ("pass", "fail", "skip")}
    if report.aborted is not None:
        lines.append(f"Verify stopped early: {report.aborted}")
    if report.cleanup_error is not None:
        lines.append(f"Cleanup incomplete: {report.cleanup_error.message}\n  hint: what "
                     f"run {report.run_id} made may be left behind; once the cluster answers, "
                     "cephstack verify --cleanup removes it")
    lines.append(f"Verify {'passed' if report.passed else 'FAILED'}: {counts['pass']} passed, "
                 f"{counts['fail']} failed, {counts['skip']} skipped "
                 f"(run {report.run_id}; cleaned up {len(report.cleanup)} object(s))")
    return "\n".join(lines)


def verify_json(report: VerifyReport) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "run_id": report.run_id,
        "passed": report.passed,
        "takeover_seconds": report.takeover_seconds,
        "takeover_path": report.takeover_path,
        "steps": [vars(s) for s in report.steps],
        "cleanup": report.cleanup,
        **({"error": report.error.as_json()} if report.error is not None else {}),
        **({"cleanup_error": report.cleanup_error.as_json()}
           if report.cleanup_error is not None else {}),
    }


def audit_text(findings: list[Finding]) -> str:
    if not findings:
        return "Audit clean: no findings."
    lines = []
    for f in findings:  # entities, pools and caps are names from the cluster: printable
        lines += [f"{f.severity.upper():<7} {f.id}  {printable(f.entity)}",
                  f"        {printable(f.what)}", f"        breaks: {printable(f.breaks)}",
                  f"        fix:    {printable(f.fix)}"]
    errors = sum(f.severity == "error" for f in findings)
    lines.append(f"Audit: {errors} error(s), {len(findings) - errors} warning(s).")
    return "\n".join(lines)


def audit_json(findings: list[Finding]) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, "findings": [vars(f) for f in findings]}


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)
