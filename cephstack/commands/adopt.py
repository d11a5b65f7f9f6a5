"""audit and import: read a hand-made cluster, report what is wrong, describe it."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from cephstack import FORMAT_VERSION
from cephstack.commands.common import (
    CLUSTER_EXIT_CODES,
    EXIT_CODES,
    add_cluster,
    add_output,
    connect,
    load_spec_of,
    print_err,
    print_out,
    settings_of,
    would_overwrite,
)
from cephstack.errors import EXIT_FAILED, CephstackError

AUDIT_EXIT_CODES = """\
exit codes:
  0  clean: no findings
  1  warnings only
  2  errors found (also: invalid spec or arguments)
""" + CLUSTER_EXIT_CODES


def cmd_audit(args: argparse.Namespace) -> int:
    """The audit of every cluster of the spec (or of the one --conf names), at once, each
    against its part of the spec."""
    from cephstack import FORMAT_VERSION
    from cephstack.adopt.audit import exit_code
    from cephstack.errors import error_json, error_text
    from cephstack.report.views import audit_json, audit_text, dumps
    from cephstack.session import fleet
    from cephstack.session.connect import connect as open_connection
    from cephstack.spec.fleet import split

    spec = load_spec_of(args) if args.spec else None
    settings = settings_of(args)
    named = spec is not None and bool(spec.clusters)
    if spec is not None:
        fleet.refuse_overrides(settings, spec)
    runs = [fleet.ClusterRun(name, part, named=named) for name, part in split(spec).items()] \
        if spec is not None else [fleet.ClusterRun("ceph", None, named=False)]
    findings: dict[str, list] = {}

    def audit_one(run: fleet.ClusterRun) -> None:
        with open_connection(settings, run.spec) as conn:
            findings[run.name] = audit_findings(args, run.spec, conn)

    fleet.each(runs, audit_one)
    as_json = args.output == "json"
    if not named:  # a spec's one cluster (or none): its audit, or its error, as it is
        [run] = runs
        if run.error is not None:
            raise run.error
        print_out(dumps(audit_json(findings[run.name])) if as_json
                  else audit_text(findings[run.name]))
        return exit_code(findings[run.name])
    if as_json:
        print_out(dumps({"format_version": FORMAT_VERSION, "clusters": {
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
    return max((exit_code(findings[r.name]) for r in runs), default=0)


def audit_findings(args: argparse.Namespace, spec, conn) -> list:
    """The audit of the cluster behind `conn` (against `spec` when given)."""
    from cephstack.adopt.audit import audit, rbd_users, recognise
    from cephstack.ceph.observe import observe, volume_snapshots
    from cephstack.keyfiles import read_keyring_files
    from cephstack.spec.catalog import desired_clients

    state = observe(conn)
    paths: dict[str, str] = {}
    if spec is not None and spec.keyrings.manage:
        paths = {e: spec.keyrings.path_for(e) for e in desired_clients(spec)}
    if args.keyring_dir:
        name = spec.cluster_name if spec is not None else "ceph"  # <cluster>.<entity>.keyring
        paths.update({e: str(Path(args.keyring_dir) / f"{name}.{e}.keyring")
                      for e in rbd_users(state)})
    # The keyring files are local: read them into the one observed state, no second
    # round of mon commands.
    state = replace(state, keyring_files=read_keyring_files(paths))
    roles, _ = recognise(state, spec)
    volume_pools = sorted({p for r in roles if r.service == "cinder-volume"
                           for p in r.pools} & set(state.pools))
    snapshots = volume_snapshots(conn, volume_pools)
    from cephstack.adopt.recordaudit import record_findings
    from cephstack.adopt.trashaudit import unpurged

    return (audit(state, spec, state.keyring_files, snapshots)
            + unpurged(conn, spec, volume_pools) + record_findings(conn, spec, state))


def _service_files(args: argparse.Namespace):
    """Pins read from existing cinder.conf / nova.conf, so the spec adopts their Ceph
    backends and libvirt secrets instead of adding new ones."""
    if not (args.cinder_conf or args.nova_conf):
        return None
    from cephstack.render.existing import adopted_pins
    from cephstack.session.drift import read_rendered

    def text(path: str | None) -> str | None:
        if path and (found := read_rendered(Path(path))) is None:
            raise CephstackError(f"{path} does not exist")
        return found if path else None

    cinder, nova = text(args.cinder_conf), text(args.nova_conf)
    return lambda users: adopted_pins(cinder, nova, users.get("cinder-volume"),
                                      users.get("nova"))


def cmd_import(args: argparse.Namespace) -> int:
    from cephstack.adopt.describe import import_spec, read_layout
    from cephstack.adopt.trashaudit import trash_facts
    from cephstack.ceph.observe import observe
    from cephstack.keyfiles import write_atomic
    from cephstack.spec.load import ClusterSettings

    out = Path(args.out)
    if would_overwrite(out, args.force):
        return EXIT_FAILED
    with connect(args, None) as conn:
        state = observe(conn)
        state = replace(state, extras=trash_facts(conn))  # Cinder's pools as they are
    access = conn.access
    cluster = ClusterSettings(str(Path(access.conf).absolute()),
                              str(Path(access.keyring).absolute()) if access.keyring else None,
                              access.client, access.connect_timeout)
    keyring_dir = str(Path(args.keyring_dir).absolute()) if args.keyring_dir else None
    write_atomic(str(out), import_spec(state, cluster, keyring_dir, args.fix,
                                       _service_files(args),
                                       read_layout(args.cinder_conf, args.nova_conf)),
                 0o644, dir_mode=0o755)
    if args.output == "json":
        print_out(json.dumps({"format_version": FORMAT_VERSION, "spec": str(out), "fix": args.fix}))
    else:
        print_out(f"Wrote {out}{' (least-privilege caps)' if args.fix else ''}. "
             f"Next: cephstack plan -f {out}")
    return 0


def register(sub, fmt) -> None:
    p = sub.add_parser("audit", help="what is wrong today for OpenStack on RBD",
                       formatter_class=fmt, epilog=AUDIT_EXIT_CODES + (
                           "\nexamples:\n"
                           "  cephstack audit\n"
                           "  cephstack audit --keyring-dir /etc/ceph --output json\n"
                           "  cephstack audit -f cephstack.yaml\n"),
                       description="Read the cluster (with or without a spec) and report "
                       "findings: caps that break evacuate, copy-on-write clones or image "
                       "deletes, over-broad caps, shared keys, pools without the rbd "
                       "application, risky pool sizes and PG counts, keyring files readable "
                       "by others or out of date, backup snapshots piling up. Changes "
                       "nothing.")
    add_cluster(p, spec_default=None)
    p.add_argument("--keyring-dir", help="also check the keyring files in this directory")
    add_output(p)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("import", help="write a spec that describes a hand-made cluster",
                       formatter_class=fmt, epilog=EXIT_CODES + (
                           "\nexamples:\n"
                           "  cephstack import --out cephstack.yaml\n"
                           "  cephstack import --fix --keyring-dir /etc/ceph --out cephstack.yaml\n"
                           "  cephstack import --cinder-conf cinder.conf --nova-conf nova.conf\n"),
                       description="Write a spec describing the cluster as it is (its RBD "
                       "pools; OpenStack users recognised as services when their caps are "
                       "the compiled ones, the rest as explicit clients), so `cephstack "
                       "plan` says No changes. With --fix, the recognised services get "
                       "least-privilege caps, so `plan` shows the fixes the audit asks for. "
                       "Reads the cluster only.")
    add_cluster(p, spec_default=None)
    p.add_argument("--out", default="cephstack.yaml", help="default: cephstack.yaml")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--fix", action="store_true", help="least-privilege caps for services")
    p.add_argument("--keyring-dir", help="manage the keyring files in this directory")
    p.add_argument("--cinder-conf", metavar="FILE", help="adopt the Ceph backends (section, "
                   "volume_backend_name, rbd_secret_uuid) of an existing cinder.conf")
    p.add_argument("--nova-conf", metavar="FILE", help="adopt the libvirt secret UUID of an "
                   "existing nova.conf")
    add_output(p)
    p.set_defaults(func=cmd_import)
