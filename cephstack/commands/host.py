"""host install: put a rendered bundle in place on an OpenStack host and check it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cephstack.commands.common import EXIT_CODES, add_output, print_err, print_out
from cephstack.errors import EXIT_FAILED


def cmd_host(args: argparse.Namespace) -> int:
    from cephstack.host.install import install_bundle

    as_json = args.output == "json"
    progress = (lambda _: None) if as_json else (lambda line: print_err(f"  ... {line}"))
    report = install_bundle(Path(args.bundle), Path(args.root), args.dry_run, args.libvirt_uri,
                            check=not args.no_check, progress=progress)
    if as_json:
        print_out(json.dumps({
            "format_version": "1", "role": report.role, "dry_run": args.dry_run,
            "changed": report.changed, "files": report.changes,
            "merges": [{"path": m.path, "changed": m.changed, "diff": m.diff,
                        "notes": list(m.notes)} for m in report.merges],
            "secrets": report.secrets,
            "checks": [vars(c) for c in report.checks], "restart": report.restart,
            "volume_types": report.volume_types, "notes": report.notes}, indent=2))
    else:
        _text(report, args.dry_run)
    return 0 if report.passed else EXIT_FAILED


def _text(report, dry_run: bool) -> None:
    would = "would be " if dry_run else ""
    for c in report.changes:
        if c["state"] != "unchanged":
            print_out(f"  {would}{c['state']:<9} {c['path']}"
                      + ("   (key: sensitive)" if c["holds_key"] else ""))
    for m in report.merges:
        print_out(m.diff.rstrip("\n") if m.changed else f"  unchanged {m.path}")
    for s in report.secrets:
        print_out(f"  {'would set' if dry_run else 'set' if s['changed'] else 'unchanged'}"
                  f"  libvirt secret {s['uuid']}  {s['usage']}")
    for c in report.checks:
        print_out(f"  {'PASS' if c.ok else 'FAIL'}  as {c.unix_user}: {c.what}: {c.detail}")
    for note in report.notes:
        print_out(f"  note: {note}")
    if not report.changed:
        print_out(f"No changes: the {report.role} bundle is installed.")
    elif dry_run:
        print_out("Dry run: nothing was changed.")
    else:
        print_out(f"Installed the {report.role} bundle. Restart: {', '.join(report.restart)}.")
    if report.volume_types:
        print_out("Volume types (once, with OpenStack credentials):")
        for command in report.volume_types:
            print_out(f"  {command}")


def register(sub, fmt) -> None:
    p = sub.add_parser("host", help="install a rendered bundle on an OpenStack host",
                       formatter_class=fmt, epilog=EXIT_CODES,
                       description="install: run as root on a controller, backup or compute "
                       "host with the bundle `cephstack render` wrote for its role. Installs "
                       "/etc/ceph/ceph.conf and the keyrings atomically with the owner, group "
                       "and mode of MANIFEST.json, merges the service settings into the "
                       "services' own files (keeping everything else, their owner and mode), "
                       "creates QEMU's socket and log directories, defines the libvirt secrets "
                       "(compute), then checks, as each service's own Unix user, that it "
                       "reads its keyring and lists its pool. Prints what changed and what to "
                       "restart. Idempotent. Exit 1 when a check fails.")
    p.add_argument("action", choices=("install",))
    p.add_argument("bundle", help="the role's bundle directory, e.g. out/compute")
    p.add_argument("--root", default="/", help="install under this directory instead of / "
                   "(images, chroots, tests)")
    p.add_argument("--dry-run", action="store_true", help="show what would change; change "
                   "nothing")
    p.add_argument("--libvirt-uri", help="libvirt URI for the secrets (default: "
                   "qemu:///system; with --root, secrets are defined only if given)")
    p.add_argument("--no-check", action="store_true", help="skip the checks as the services' "
                   "users")
    add_output(p)
    p.set_defaults(func=cmd_host)
