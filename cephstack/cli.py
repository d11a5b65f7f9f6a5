"""The cephstack command line: the only place that prints, prompts and picks exit codes.

Heavy imports (yaml, rados) happen inside the commands, so `--help` and a no-op apply
start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from cephstack import __version__
from cephstack.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_UNREACHABLE, CephstackError

EXIT_CODES = f"""\
exit codes:
  0  success (plan: no changes, or changes without --detailed-exitcode)
  {EXIT_FAILED}  failure: a Ceph command failed, the plan was refused or did not converge
  {EXIT_BAD_INPUT}  bad input: invalid spec or arguments; with plan --detailed-exitcode: changes
  {EXIT_UNREACHABLE}  the cluster could not be reached within the connect timeout
"""


AUDIT_EXIT_CODES = f"""\
exit codes:
  0  clean: no findings
  1  warnings only
  2  errors found (also: invalid spec or arguments)
  {EXIT_UNREACHABLE}  the cluster could not be reached within the connect timeout
"""


def _out(text: str = "") -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- shared option groups ---------------------------------------------------------


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", choices=("text", "json"), default="text",
                   help="text for people, json for machines (default: text)")


def _add_cluster(p: argparse.ArgumentParser, spec_default: str | None = "cephstack.yaml") -> None:
    p.add_argument("-f", "--spec", default=spec_default,
                   help=f"spec file (default: {spec_default or 'none'})")
    g = p.add_argument_group("reaching the cluster (override the spec's cluster: section)")
    g.add_argument("--conf", help="ceph.conf path")
    g.add_argument("--keyring", help="admin keyring path")
    g.add_argument("--id", dest="client", help="admin client name, e.g. client.admin")
    g.add_argument("--connect-timeout", type=float, help="seconds (default 10)")


def _would_overwrite(out: Path, force: bool) -> bool:
    if out.exists() and not force:
        _err(f"error: {out} exists; use --force to overwrite it")
        return True
    return False


def _load(args: argparse.Namespace):
    from cephstack.spec import load_spec

    return load_spec(args.spec)


def _connect(args: argparse.Namespace, spec):
    from cephstack.ceph.adapter import CephConnection, ClusterAccess
    from cephstack.spec import ClusterSettings

    c = spec.cluster if spec is not None else ClusterSettings()
    client = args.client or c.client
    if not client.startswith("client."):
        client = f"client.{client}"
    return CephConnection(ClusterAccess(
        conf=args.conf or c.conf, keyring=args.keyring or c.keyring, client=client,
        connect_timeout=args.connect_timeout or c.connect_timeout))


def _observe(conn, spec):
    from cephstack.catalog import desired_clients
    from cephstack.ceph.observe import observe

    paths = {e: spec.keyrings.path_for(e) for e in desired_clients(spec)}
    return observe(conn, paths, monmap=spec.render is not None)


def _plan(spec, state):
    from cephstack.plan import make_plan

    if spec.render is None:
        return make_plan(spec, state)
    from cephstack.render.drift import rendered_on_disk

    return make_plan(spec, state, rendered_on_disk(spec, state))


# -- commands ---------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace) -> int:
    from cephstack.report import dumps, plan_json, plan_text

    spec = _load(args)
    with _connect(args, spec) as conn:
        state = _observe(conn, spec)
        plan = _plan(spec, state)
    if args.out:
        from cephstack.keyfiles import write_atomic

        saved = plan_json(plan, spec=str(Path(args.spec).absolute()),
                          spec_sha256=_sha256(Path(args.spec)))
        write_atomic(args.out, dumps(saved) + "\n", 0o644)
    if args.output == "json":
        _out(dumps(plan_json(plan, mon_commands=conn.commands_sent)))
    else:
        _out(plan_text(plan))
        if args.out:
            _out(f"Saved to {args.out}: cephstack apply --plan {args.out} applies exactly "
                 "this, or refuses if the spec or the cluster changed.")
    if plan.refusals:
        return EXIT_FAILED
    return 2 if args.detailed_exitcode and not plan.empty else 0


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _saved_plan(args: argparse.Namespace) -> dict:
    """Read a saved plan; point args.spec at its spec, refusing if that spec changed."""
    from cephstack.errors import StalePlan

    try:
        saved = json.loads(Path(args.plan).read_text())
        spec_path, digest, fingerprint = saved["spec"], saved["spec_sha256"], \
            saved["fingerprint"]
    except (OSError, ValueError, KeyError) as e:
        raise CephstackError(f"{args.plan}: not a plan saved by cephstack plan --out ({e})") \
            from None
    if not Path(spec_path).is_file() or _sha256(Path(spec_path)) != digest:
        raise StalePlan(f"the spec {spec_path} changed since {args.plan} was made",
                        hint="run cephstack plan --out again")
    args.spec = spec_path
    return {"fingerprint": fingerprint}


def _confirm(args: argparse.Namespace) -> bool:
    if args.yes or args.plan:  # a saved plan was reviewed when it was made
        return True
    if not sys.stdin.isatty():
        _err("error: not a terminal and --yes not given: nothing applied")
        return False
    answer = input("Apply these changes? Only 'yes' is accepted: ")
    return answer.strip() == "yes"


def cmd_apply(args: argparse.Namespace) -> int:
    from cephstack.apply import apply_plan
    from cephstack.report import dumps, plan_json, plan_text

    saved = _saved_plan(args) if args.plan else None
    spec = _load(args)
    as_json = args.output == "json"
    with _connect(args, spec) as conn:
        state = _observe(conn, spec)
        plan = _plan(spec, state)
        if saved and saved["fingerprint"] != plan.fingerprint:
            from cephstack.errors import StalePlan

            raise StalePlan(f"the cluster changed since {args.plan} was made (state "
                            f"{saved['fingerprint']}, now {plan.fingerprint}); nothing applied",
                            hint="run cephstack plan --out again and review it")
        if not as_json:
            _out(plan_text(plan))
        if plan.empty:
            if as_json:
                _out(dumps(plan_json(plan, applied=[], mon_commands=conn.commands_sent)))
            return 0
        applicable = not plan.refusals and not (plan.disruptive and not args.allow_disruptive)
        if applicable and not _confirm(args):
            return EXIT_FAILED
        progress = (lambda _: None) if as_json else (lambda line: _err(f"  {line}"))
        result = apply_plan(conn, plan, state, allow_disruptive=args.allow_disruptive,
                            progress=progress)
        # Converged means: observing again finds nothing left to do.
        after_state = _observe(conn, spec)
        after = _plan(spec, after_state)
        if plan.render_after_apply and not after.empty and all(
                a.kind == "rewrite_rendered_file" for a in after.actions):
            # Files that needed the new users' keys: refresh them now, as the plan said.
            refreshed = apply_plan(conn, after, after_state, progress=progress)
            result.done += refreshed.done
            after = _plan(spec, _observe(conn, spec))
    if as_json:
        _out(dumps(plan_json(plan, applied=result.done, seconds=round(result.seconds, 3),
                             mon_commands=conn.commands_sent, converged=after.empty)))
    else:
        _out(f"Apply complete: {len(result.done)} step(s) in {result.seconds:.1f} s, "
             f"{result.commands_sent} mon command(s).")
    if not after.empty:
        _err("error: the cluster still differs from the spec after apply:\n"
             + plan_text(after))
        return EXIT_FAILED
    return 0


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C, so verify's cleanup (a finally block) runs."""
    raise KeyboardInterrupt


def cmd_verify(args: argparse.Namespace) -> int:
    from cephstack.report import dumps, verify_json, verify_text
    from cephstack.verify.cleanup import cleanup
    from cephstack.verify.run import run_verify

    spec = _load(args)
    signal.signal(signal.SIGTERM, _interrupt)
    with _connect(args, spec) as admin:
        if args.cleanup:
            removed = cleanup(admin, list(spec.pools))
            if args.output == "json":
                _out(dumps({"format_version": "1", "removed": removed}))
            else:
                _out("\n".join(f"  - {r}" for r in removed) or "  nothing to remove")
                _out(f"Cleanup: removed {len(removed)} leftover(s) of earlier verify runs.")
            return 0
        progress = (lambda _: None) if args.output == "json" else (
            lambda step: _err(f"  ... {step}"))
        report = run_verify(spec, admin, only=args.only, progress=progress)
    _out(dumps(verify_json(report)) if args.output == "json" else verify_text(report))
    return 0 if report.passed else EXIT_FAILED


def cmd_audit(args: argparse.Namespace) -> int:
    from cephstack.audit import audit, exit_code, rbd_users, recognise
    from cephstack.catalog import desired_clients
    from cephstack.ceph.observe import observe, volume_snapshots
    from cephstack.keyfiles import read_keyring_file
    from cephstack.report import audit_json, audit_text, dumps

    spec = _load(args) if args.spec else None
    with _connect(args, spec) as conn:
        state = observe(conn)
        paths: dict[str, str] = {}
        if spec is not None and spec.keyrings.manage:
            paths = {e: spec.keyrings.path_for(e) for e in desired_clients(spec)}
        if args.keyring_dir:
            paths.update({e: str(Path(args.keyring_dir) / f"ceph.{e}.keyring")
                          for e in rbd_users(state)})
        # The keyring files are local: read them into the one observed state, no second
        # round of mon commands.
        state = replace(state, keyring_files={e: read_keyring_file(p, e)
                                              for e, p in paths.items()})
        roles, _ = recognise(state, spec)
        volume_pools = sorted({p for r in roles if r.service == "cinder-volume"
                               for p in r.pools} & set(state.pools))
        snapshots = volume_snapshots(conn, volume_pools)
    findings = audit(state, spec, state.keyring_files, snapshots)
    _out(dumps(audit_json(findings)) if args.output == "json" else audit_text(findings))
    return exit_code(findings)


def cmd_import(args: argparse.Namespace) -> int:
    from cephstack.adopt import import_spec
    from cephstack.ceph.observe import observe
    from cephstack.spec import ClusterSettings

    out = Path(args.out)
    if _would_overwrite(out, args.force):
        return EXIT_FAILED
    with _connect(args, None) as conn:
        state = observe(conn)
    access = conn.access
    cluster = ClusterSettings(str(Path(access.conf).absolute()),
                              str(Path(access.keyring).absolute()) if access.keyring else None,
                              access.client, access.connect_timeout)
    keyring_dir = str(Path(args.keyring_dir).absolute()) if args.keyring_dir else None
    out.write_text(import_spec(state, cluster, keyring_dir, args.fix))
    if args.output == "json":
        _out(json.dumps({"format_version": "1", "spec": str(out), "fix": args.fix}))
    else:
        _out(f"Wrote {out}{' (least-privilege caps)' if args.fix else ''}. "
             f"Next: cephstack plan -f {out}")
    return 0


def _render_files(args: argparse.Namespace, spec, out: Path) -> int:
    from cephstack.ceph.observe import observe
    from cephstack.keyfiles import write_atomic
    from cephstack.render.bundle import render
    from cephstack.render.drift import facts_of

    fmt = args.format or (spec.render.format if spec.render else "plain")
    with _connect(args, spec) as conn:
        files = render(spec, facts_of(observe(conn, monmap=True)), fmt)
    report = []
    for f in files:
        path = out / f.path
        current = path.read_text() if path.is_file() else None
        if current != f.text:
            mode = spec.keyrings.mode if f.secret else f.mode
            write_atomic(str(path), f.text, mode, spec.keyrings.owner if f.secret else None,
                         spec.keyrings.group if f.secret else None)
        state = "unchanged" if current == f.text else "updated" if current else "created"
        report.append({"path": str(path), "state": state, "holds_key": f.secret})
    # compute/secrets/ is cephstack's alone: secrets of another cluster or user left there
    # would be installed by `secrets install`, and their keys should not linger.
    rendered = {out / f.path for f in files}
    for stale in sorted((out / "compute" / "secrets").glob("*")):
        if stale.is_file() and stale not in rendered:
            stale.unlink()
            report.append({"path": str(stale), "state": "removed", "holds_key": False})
    if args.output == "json":
        _out(json.dumps({"format_version": "1", "format": fmt, "files": report}, indent=2))
    else:
        for r in report:
            _out(f"  {r['state']:<9} {r['path']}" + ("   (key: sensitive)" if r["holds_key"]
                                                     else ""))
        counts = {s: sum(r["state"] == s for r in report)
                  for s in ("created", "updated", "unchanged", "removed")}
        _out(f"Render ({fmt}): " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
             + f", in {out}.")
    return 0


def _merge_into(args: argparse.Namespace, spec) -> int:
    import difflib

    from cephstack.keyfiles import write_atomic
    from cephstack.render.bundle import service_sections
    from cephstack.render.merge import merge_ini

    path = Path(args.merge_into)
    service = args.as_service or {"glance-api.conf": "glance", "cinder.conf": "cinder",
                                  "nova.conf": "nova"}.get(path.name)
    if service is None:
        _err(f"error: cannot tell which service {path.name} belongs to; "
             "give --as glance|cinder|nova")
        return EXIT_BAD_INPUT
    if not path.is_file():
        _err(f"error: {path} does not exist (--merge-into updates an existing file)")
        return EXIT_FAILED
    with _connect(args, spec) as conn:
        fsid = conn.fsid()  # the only fact merging needs: no mon command
    before = path.read_text()
    after = merge_ini(before, service_sections(spec, fsid, service))
    diff = "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                        after.splitlines(keepends=True),
                                        str(path), f"{path} (cephstack)"))
    if after != before:
        backup = path.with_name(path.name + ".cephstack.bak")
        mode = path.stat().st_mode & 0o777
        write_atomic(str(backup), before, mode)
        write_atomic(str(path), after, mode)
    if args.output == "json":
        _out(json.dumps({"format_version": "1", "path": str(path), "changed": after != before,
                         "diff": diff}, indent=2))
    else:
        _out(diff.rstrip("\n") if diff else f"No changes: {path} already has cephstack's "
             "options.")
        if diff:
            _out(f"Updated {path}; the previous version is in {path.name}.cephstack.bak.")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    spec = _load(args)
    if args.merge_into:
        return _merge_into(args, spec)
    out = args.out or (spec.render.directory if spec.render else None)
    if out is None:
        _err("error: give --out DIR (or render.directory in the spec)")
        return EXIT_BAD_INPUT
    return _render_files(args, spec, Path(out))


def cmd_secrets(args: argparse.Namespace) -> int:
    from cephstack.render.libvirt import install

    done = install(args.dir, args.uri)
    if args.output == "json":
        _out(json.dumps({"format_version": "1", "secrets": [vars(s) for s in done]}, indent=2))
    else:
        for s in done:
            _out(f"  {'set' if s.changed else 'unchanged':<9} {s.uuid}  {s.usage}")
        _out(f"Secrets: {sum(s.changed for s in done)} set, "
             f"{sum(not s.changed for s in done)} unchanged ({args.uri}).")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from cephstack.defaults import DEFAULT_SPEC

    out = Path(args.out)
    if _would_overwrite(out, args.force):
        return EXIT_FAILED
    text = DEFAULT_SPEC
    replacements = {
        "  conf: /etc/ceph/ceph.conf": args.conf and f"  conf: {args.conf}",
        "  keyring: /etc/ceph/ceph.client.admin.keyring": args.keyring
        and f"  keyring: {args.keyring}",
        "  directory: /var/openstack/ceph": args.keyring_dir
        and f"  directory: {args.keyring_dir}",
        "# render: {directory: /etc/cephstack/openstack, format: plain}": args.render_dir
        and f"render: {{directory: {args.render_dir}, format: plain}}",
    }
    for old, new in replacements.items():
        if new:
            text = text.replace(old, new, 1)
    out.write_text(text)
    if args.output == "json":
        _out(json.dumps({"format_version": "1", "spec": str(out)}))
    else:
        _out(f"Wrote {out}. Next: cephstack plan -f {out}")
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from cephstack.sandbox import Sandbox

    box = Sandbox(args.dir)
    if args.action == "up":
        if args.output == "text":
            _err(f"starting the sandbox in {box.dir} ...")
        status = box.up(port=args.port)
    elif args.action == "down":
        stopped = box.down()
        if args.output == "text":
            _out(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        status = box.status()
    else:
        status = box.status()
    if args.output == "json":
        _out(json.dumps({"format_version": "1", "up": status.up, "dir": status.directory,
                         "conf": status.conf, "keyring": status.keyring, "port": status.port,
                         "daemons": status.running}, indent=2))
    elif args.action != "down":
        state = "up" if status.up else "down"
        _out(f"sandbox {state}: {status.directory}")
        _out(f"  ceph.conf: {status.conf}")
        _out(f"  admin keyring: {status.keyring}")
        _out(f"  monitor: 127.0.0.1:{status.port}")
        for daemon, pid in status.running.items():
            _out(f"  {daemon}: {'pid ' + str(pid) if pid else 'not running'}")
    return 0 if args.action == "down" or status.up else EXIT_FAILED


# -- parser -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="cephstack", formatter_class=fmt, epilog=EXIT_CODES,
        description="Ceph RBD for OpenStack: declare pools and services once, "
                    "plan, apply, and keep them so.")
    parser.add_argument("--version", action="version", version=f"cephstack {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="write the default spec", formatter_class=fmt,
                       epilog=EXIT_CODES, description="Write the default spec (the seed "
                       "guide's layout with least-privilege caps), commented.")
    p.add_argument("--out", default="cephstack.yaml", help="default: cephstack.yaml")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--conf", help="ceph.conf to put in the spec")
    p.add_argument("--keyring", help="admin keyring to put in the spec")
    p.add_argument("--keyring-dir", help="where service keyrings go "
                   "(default /var/openstack/ceph)")
    p.add_argument("--render-dir", help="where `cephstack render` writes (default: unset)")
    _add_output(p)
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("plan", help="show what apply would change", formatter_class=fmt,
                       epilog=EXIT_CODES, description="Observe the cluster and show, "
                       "Terraform-style, what apply would change. Changes nothing.")
    _add_cluster(p)
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 0 when there is nothing to do, 2 when there are changes")
    p.add_argument("--out", metavar="FILE", help="also save the plan (no keys in it) for "
                   "apply --plan FILE")
    _add_output(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("apply", help="make the cluster match the spec", formatter_class=fmt,
                       epilog=EXIT_CODES, description="Plan, show the plan, ask, apply, "
                       "then observe again to prove the cluster matches. Never deletes.")
    _add_cluster(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--plan", metavar="FILE", help="apply a plan saved by plan --out: refused "
                   "if the spec or the cluster changed since (its spec replaces -f)")
    p.add_argument("--allow-disruptive", action="store_true",
                   help="also apply changes that move data or remove a client's access")
    _add_output(p)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("verify", help="prove each service's RBD workflows with its own key",
                       formatter_class=fmt, epilog=EXIT_CODES,
                       description="Connect as each service's own user (its keyring file) "
                       "and run its real RBD workflows: Glance upload/download/delete, Cinder "
                       "volumes, snapshots and clones (copy-on-write from images), backups "
                       "and restores, Nova guest disks, an evacuate takeover after a host "
                       "crash; then a least-privilege matrix. Everything it creates carries "
                       "one run marker and is removed at the end, even after a failure or "
                       "Ctrl-C. Never changes caps or pool settings. Exit 0 only if every "
                       "step passed.")
    _add_cluster(p)
    p.add_argument("--only", metavar="SERVICE",
                   help="glance, cinder-volume, cinder-backup, nova, or config (the "
                   "checks of rendered files only)")
    p.add_argument("--cleanup", action="store_true",
                   help="only remove leftovers of a killed verify run, touching nothing else")
    _add_output(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("audit", help="what is wrong today for OpenStack on RBD",
                       formatter_class=fmt, epilog=AUDIT_EXIT_CODES,
                       description="Read the cluster (with or without a spec) and report "
                       "findings: caps that break evacuate, copy-on-write clones or image "
                       "deletes, over-broad caps, shared keys, pools without the rbd "
                       "application, risky pool sizes and PG counts, keyring files readable "
                       "by others or out of date, backup snapshots piling up. Changes "
                       "nothing.")
    _add_cluster(p, spec_default=None)
    p.add_argument("--keyring-dir", help="also check the keyring files in this directory")
    _add_output(p)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("import", help="write a spec that describes a hand-made cluster",
                       formatter_class=fmt, epilog=EXIT_CODES,
                       description="Write a spec describing the cluster as it is (its RBD "
                       "pools; OpenStack users recognised as services when their caps are "
                       "the compiled ones, the rest as explicit clients), so `cephstack "
                       "plan` says No changes. With --fix, the recognised services get "
                       "least-privilege caps, so `plan` shows the fixes the audit asks for. "
                       "Reads the cluster only.")
    _add_cluster(p, spec_default=None)
    p.add_argument("--out", default="cephstack.yaml", help="default: cephstack.yaml")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--fix", action="store_true", help="least-privilege caps for services")
    p.add_argument("--keyring-dir", help="manage the keyring files in this directory")
    _add_output(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("render", help="write ceph.conf, OpenStack config, keyrings, secrets",
                       formatter_class=fmt, epilog=EXIT_CODES,
                       description="From the spec and the live cluster (fsid, monitors, "
                       "keys): client ceph.conf, Glance/Cinder/Cinder-backup/Nova settings, "
                       "libvirt secrets and keyrings, per host role (plain: controller/, "
                       "backup/, compute/) or as kolla-ansible expects (kolla). Keys go only "
                       "into files (mode of keyrings.mode), never to the terminal. With "
                       "--merge-into, update an existing glance-api.conf, cinder.conf or "
                       "nova.conf in place: only cephstack's options change; a backup is "
                       "kept and the diff shown.")
    _add_cluster(p)
    p.add_argument("--out", help="output directory (default: render.directory in the spec)")
    p.add_argument("--format", choices=("plain", "kolla"), help="default: plain")
    p.add_argument("--merge-into", metavar="PATH", help="an existing service config file")
    p.add_argument("--as", dest="as_service", choices=("glance", "cinder", "nova"),
                   help="which service PATH belongs to (default: from its file name)")
    _add_output(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("secrets", help="install rendered libvirt secrets on a compute host",
                       formatter_class=fmt, epilog=EXIT_CODES,
                       description="install: define each <uuid>.xml secret of --dir in "
                       "libvirt and set its value from <uuid>.key, through libvirt's Python "
                       "binding (the key never goes on a command line). Idempotent.")
    p.add_argument("action", choices=("install",))
    p.add_argument("--dir", default="compute/secrets",
                   help="rendered secrets (default: compute/secrets)")
    p.add_argument("--uri", default="qemu:///system", help="libvirt URI (default: "
                   "qemu:///system)")
    _add_output(p)
    p.set_defaults(func=cmd_secrets)

    p = sub.add_parser("sandbox", help="a throwaway single-node cluster on loopback",
                       formatter_class=fmt, epilog=EXIT_CODES,
                       description="up: start (creating if needed; idempotent) a real "
                       "mon + mgr + memstore OSD cluster on 127.0.0.1. down: stop its "
                       "daemons by pid, remove nothing. status: show it.")
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--dir", default="sandbox", help="its directory (default: ./sandbox)")
    p.add_argument("--port", type=int, help="monitor port (default: a free one)")
    _add_output(p)
    p.set_defaults(func=cmd_sandbox)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CephstackError as e:
        if args.debug or os.environ.get("CEPHSTACK_DEBUG"):
            raise
        _err(f"error: {e}")
        return e.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


