"""`cephstack plan` and `apply` for a spec with `clusters:` (commands/plan_apply.py hands
such a spec here): one plan across the clusters, one JSON document, a failed cluster named
with its error while the others' results are shown and applied."""

from __future__ import annotations

import argparse
import threading
from typing import Any

from cephstack.commands.common import print_err, print_out, settings_of
from cephstack.errors import EXIT_BAD_INPUT, EXIT_FAILED, CephstackError
from cephstack.session import fleet
from cephstack.session.fleet import Fleet
from cephstack.spec.fleet import split
from cephstack.spec.load import Spec


class SeveralClustersUsage(CephstackError):
    exit_code = EXIT_BAD_INPUT
    kind = "bad-arguments"


def refuse_overrides(args: argparse.Namespace, spec: Spec) -> None:
    """--conf, --keyring and --id name one cluster: with several, the spec says each."""
    given = [flag for flag, attr in (("--conf", "conf"), ("--keyring", "keyring"),
                                     ("--id", "client")) if getattr(args, attr, None)]
    if given:
        raise SeveralClustersUsage(
            f"{', '.join(given)}: the spec {spec.path} has several clusters "
            f"({', '.join(spec.clusters)}); each is reached as its clusters: entry says",
            hint="set conf, keyring and client under clusters: in the spec")


def error_json(e: Exception) -> dict[str, Any]:
    if isinstance(e, CephstackError):
        return e.as_json()
    return {"kind": "failed", "message": str(e), "hint": None}


def error_text(e: Exception) -> str:
    return str(e).replace("\n", "\n  ")


def document(spec: Spec, multi: Fleet, /, **extra: Any) -> dict[str, Any]:
    """The one JSON document of a plan or apply across clusters."""
    from cephstack.report.views import FORMAT_VERSION, plan_json

    clusters: dict[str, Any] = {}
    actions: list[dict] = []
    refusals: list[str] = []
    for name, run in multi.runs.items():
        out: dict[str, Any] = {"conf": run.spec.cluster.conf}
        if run.plan is not None:
            shown = fleet.prefixed(name, run.plan)
            out["plan"] = plan_json(shown)
            actions += out["plan"]["actions"]
            refusals += out["plan"]["refusals"]
        if run.applied or "applied" in extra:
            out["applied"] = run.applied
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


def text(spec: Spec, multi: Fleet) -> str:
    from cephstack.report.views import plan_text

    lines: list[str] = []
    for name, run in multi.runs.items():
        lines.append(f"== cluster {name} ({run.spec.cluster.conf}) ==")
        if run.plan is not None:
            lines.append(plan_text(fleet.prefixed(name, run.plan)))
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
    lines.append(summary(multi))
    return "\n".join(lines)


def summary(multi: Fleet) -> str:
    parts = []
    for name, run in multi.runs.items():
        if run.error is not None:
            parts.append(f"{name}: FAILED")
        elif run.plan is not None:
            parts.append(f"{name}: {len(run.plan.actions)} change(s)")
    return f"Across {len(multi.runs)} clusters: " + "; ".join(parts) + "."


_stderr_lock = threading.Lock()


def progress_printer(as_json: bool, name: str):
    """Progress lines on stderr, each whole (the clusters' threads print at once)."""
    def show(line: str) -> None:
        with _stderr_lock:
            print_err(f"  {name}: {line}")

    return (lambda _: None) if as_json else show


def report_failures(multi: Fleet, as_json: bool) -> None:
    """On stderr: each failure in full with --output json; in text, where stdout shows each
    under its cluster, one line naming them."""
    failed = [r.name for r in multi.failed] + (["mirroring"] if multi.mirroring_error else []) \
        + (["rendered files"] if multi.rendered_error else [])
    if not as_json:
        if failed:
            print_err(f"error: failed: {', '.join(failed)} (the errors are shown above)")
        return
    for run in multi.failed:
        print_err(f"error: cluster {run.name}: {error_text(run.error)}")
    if multi.mirroring_error:
        print_err(f"error: mirroring: {error_text(multi.mirroring_error)}")
    if multi.rendered_error:
        print_err(f"error: rendered files: {error_text(multi.rendered_error)}")


def cmd_plan(args: argparse.Namespace, spec: Spec) -> int:
    from pathlib import Path

    from cephstack.commands.common import would_overwrite

    refuse_overrides(args, spec)
    if args.out and would_overwrite(Path(args.out), args.force):
        return EXIT_FAILED
    multi = fleet.start(settings_of(args), spec)
    try:
        fleet.plan_mirroring(spec, multi)
        fleet.plan_rendered(spec, multi)
    finally:
        fleet.close(multi)
    if args.out and not multi.failed:
        _save(args, multi, spec)
    if args.output == "json":
        print_out(_dumps(document(spec, multi)))
    else:
        print_out(text(spec, multi))
    report_failures(multi, args.output == "json")
    if code := multi.exit_code():
        return code
    if multi.refused:
        return EXIT_FAILED
    return 2 if args.detailed_exitcode and not multi.empty else 0


def _save(args: argparse.Namespace, multi: Fleet, spec: Spec) -> None:
    """plan --out: the plan (no keys) and what apply --plan checks: the spec's digest and
    every cluster's state (one fingerprint over them)."""
    from pathlib import Path

    from cephstack.commands.plan_apply import file_sha256
    from cephstack.keyfiles import write_atomic

    saved = document(spec, multi, spec=str(Path(args.spec).absolute()),
                     spec_sha256=file_sha256(Path(args.spec)), prune=args.prune)
    write_atomic(args.out, _dumps(saved) + "\n", 0o644, dir_mode=0o755)
    if args.output != "json":
        print_out(f"Saved to {args.out}: cephstack apply --plan {args.out} applies exactly "
                  "this, or refuses if the spec or a cluster changed.")


def _write_rendered(spec: Spec, multi: Fleet) -> list[str]:
    """After the clusters (their new users' keys exist now): the render: files, then check
    that nothing is left to write."""
    from cephstack.render.multidrift import rendered_plan, write_rendered_files

    if spec.render is None:
        return []
    if multi.failed:
        multi.rendered_error = CephstackError(
            "rendered files not written: rendering needs every cluster, and "
            f"{', '.join(r.name for r in multi.failed)} failed")
        return []
    planned = multi.rendered
    try:
        states = {n: r.state for n, r in multi.runs.items()}
        done = write_rendered_files(spec, rendered_plan(spec, states))
        if (left := rendered_plan(spec, states)) and left.actions:
            raise CephstackError("rendered files still differ after apply: " + ", ".join(
                a.address for a in left.actions))
    except CephstackError as e:
        multi.rendered_error, done = e, []
    multi.rendered = planned  # report what was planned
    return done


def _check_saved(args: argparse.Namespace, multi: Fleet) -> None:
    """apply --plan: every reachable cluster must be as it was when the plan was saved."""
    import json
    from pathlib import Path

    from cephstack.errors import StalePlan

    clusters = json.loads(Path(args.plan).read_text()).get("clusters", {})
    changed = [name for name, run in multi.runs.items() if run.ok and run.plan is not None
               and (clusters.get(name) or {}).get("plan", {}).get("fingerprint")
               != run.plan.fingerprint]
    if changed:
        raise StalePlan(f"{', '.join(changed)} changed since {args.plan} was made (or is not "
                        "in it); nothing applied", hint="run cephstack plan --out again and "
                        "review it")


def _dumps(data: dict) -> str:
    from cephstack.report.views import dumps

    return dumps(data)


def cmd_apply(args: argparse.Namespace, spec: Spec, confirm, saved: dict | None = None) -> int:
    """`confirm(args)`: plan_apply's prompt (or --yes); `saved`: apply --plan's plan."""
    from cephstack.commands.common import hold_lock
    from cephstack.commands.plan_apply import creates_pools_early, lock_creating_pools
    from cephstack.session.apply import ApplyFailed, apply_plan

    refuse_overrides(args, spec)
    as_json = args.output == "json"

    def lock_and_replan(run: fleet.ClusterRun) -> None:
        # As one-cluster apply: changes ahead take the lock (with --yes, creating the new
        # pools in the lock's own monitor round), then look again under it.
        if run.plan is None or run.plan.empty:
            return
        if creates_pools_early(args, run.plan):
            shown = run.plan
            run.plan, run.state, run.early = lock_creating_pools(
                args, run.conn, run.spec, run.plan, run.locked, progress_printer(as_json, run.name))
            run.pools_created = run.plan is shown
        else:
            run.locked.enter_context(hold_lock(args, run.conn, "apply"))
            fleet.replan(run)

    multi = fleet.start(settings_of(args), spec, then=lock_and_replan)
    try:
        if saved is not None:
            _check_saved(args, multi)
        fleet.plan_mirroring(spec, multi)
        fleet.plan_rendered(spec, multi)
        if not as_json:
            print_out(text(spec, multi))
        if multi.empty:
            if as_json:
                print_out(_dumps(document(spec, multi, applied=[])))
            report_failures(multi, args.output == "json")
            return multi.exit_code() or (EXIT_FAILED if multi.refused else 0)
        if not confirm(args):
            return EXIT_FAILED

        def apply_one(run: fleet.ClusterRun) -> None:
            if run.plan is None or run.plan.empty:
                return
            early = [f"{run.name}: {d}" for d in (run.early.done if run.early else [])]
            try:
                result = apply_plan(run.conn, run.plan, run.state,
                                    allow_disruptive=args.allow_disruptive,
                                    progress=progress_printer(as_json, run.name),
                                    pools_created=run.pools_created)
            except ApplyFailed as e:
                run.applied = early + [f"{run.name}: {d}" for d in e.done]
                raise
            run.applied = early + [f"{run.name}: {d}" for d in result.done]

        fleet.each(list(multi.runs.values()), apply_one)
        mirrored = fleet.apply_mirroring(spec, multi, progress_printer(as_json, "mirroring"))

        def converged(run: fleet.ClusterRun) -> None:
            fleet.replan(run, records=False)
            run.after = run.plan
            if not run.after.empty:
                from cephstack.report.views import plan_text

                raise CephstackError("the cluster still differs from the spec after apply:\n"
                                     + plan_text(fleet.prefixed(run.name, run.after)))

        plans = {n: r.plan for n, r in multi.runs.items()}
        fleet.each(list(multi.runs.values()), converged)
        fleet.check_mirroring(spec, multi)
        rendered = _write_rendered(spec, multi)
        for name, run in multi.runs.items():  # report the plan that was applied
            run.plan = plans[name]
    finally:
        fleet.close(multi)
    done = [d for r in multi.runs.values() for d in r.applied] + mirrored + rendered
    if as_json:
        print_out(_dumps(document(spec, multi, applied=done, mirroring_applied=mirrored)))
    else:
        print_out(f"Apply across {len(multi.runs)} clusters: {len(done)} step(s) done"
                  + (f"; failed: {', '.join(r.name for r in multi.failed)}."
                     if multi.failed else "."))
    report_failures(multi, args.output == "json")
    return multi.exit_code()


def cmd_audit(args: argparse.Namespace, spec: Spec) -> int:
    """The audit of every cluster, at once, each against its part of the spec."""
    from cephstack.adopt.audit import exit_code
    from cephstack.commands.adopt import audit_findings
    from cephstack.commands.common import connect
    from cephstack.report.views import FORMAT_VERSION, audit_json, audit_text

    refuse_overrides(args, spec)
    runs = [fleet.ClusterRun(name, part) for name, part in split(spec).items()]
    findings: dict[str, list] = {}

    def audit_one(run: fleet.ClusterRun) -> None:
        with connect(args, run.spec) as conn:
            findings[run.name] = audit_findings(args, run.spec, conn)

    fleet.each(runs, audit_one)
    codes = [exit_code(findings[r.name]) for r in runs if r.ok]
    if args.output == "json":
        print_out(_dumps({"format_version": FORMAT_VERSION, "clusters": {
            r.name: {**(audit_json(findings[r.name]) if r.ok else {}),
                     "error": error_json(r.error) if r.error else None} for r in runs},
            "failed": [r.name for r in runs if not r.ok]}))
    else:
        for r in runs:
            print_out(f"== cluster {r.name} ({r.spec.cluster.conf}) ==")
            print_out(audit_text(findings[r.name]) if r.ok else
                      f"error: {r.name}: {error_text(r.error)}")
    failed = [r for r in runs if not r.ok]
    for r in failed:
        print_err(f"error: cluster {r.name}: {error_text(r.error)}")
    if failed:
        return getattr(failed[0].error, "exit_code", EXIT_FAILED)
    return max(codes, default=0)
