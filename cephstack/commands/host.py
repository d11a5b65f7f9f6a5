"""host install: put a rendered bundle in place on an OpenStack host and check it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cephstack import FORMAT_VERSION
from cephstack.commands.common import EXIT_CODES, add_output, print_err, print_out
from cephstack.errors import EXIT_FAILED


def cmd_host(args: argparse.Namespace) -> int:
    from cephstack.host.install import install_bundle

    as_json = args.output == "json"
    if args.action == "check":
        return _check(args, as_json)
    progress = (lambda _: None) if as_json else (lambda line: print_err(f"  ... {line}"))
    report = install_bundle(Path(args.bundle), Path(args.root), args.dry_run, args.libvirt_uri,
                            check=not args.no_check, progress=progress,
                            trust_bundle_permissions=args.trust_bundle_permissions,
                            services=tuple(args.service or ()))
    if as_json:
        print_out(json.dumps({
            "format_version": FORMAT_VERSION, "role": report.role, "dry_run": args.dry_run,
            "changed": report.changed, "files": report.changes,
            "merges": [{"path": m.path, "changed": m.changed, "diff": m.diff,
                        "notes": list(m.notes)} for m in report.merges],
            "secrets": report.secrets,
            "checks": [vars(c) for c in report.checks], "restart": report.restart,
            "volume_types": report.volume_types, "notes": report.notes,
            "key_support": report.key_support, "services": report.service_keys}, indent=2))
    else:
        _text(report, args.dry_run)
    return 0 if report.passed else EXIT_FAILED


def _check(args: argparse.Namespace, as_json: bool) -> int:
    """host check: read-only; exit 1 when a service's key is of a type this host's Ceph
    client cannot use."""
    from cephstack.host import keysupport
    from cephstack.host.bundle import Bundle
    from cephstack.host.install import only_services
    from cephstack.host.manifest import read_manifest

    with Bundle(Path(args.bundle), args.trust_bundle_permissions) as opened:
        manifest = read_manifest(opened)
    if args.service:
        manifest = only_services(manifest, tuple(args.service))
    support = keysupport.host_key_support()
    services = keysupport.service_keys(manifest, support)
    ok = all(s["usable"] is not False for s in services)
    if as_json:
        print_out(json.dumps({"format_version": FORMAT_VERSION, "role": manifest.role,
                              "key_support": keysupport.as_dict(support),
                              "services": services, "passed": ok}, indent=2))
    else:
        summary = support.summary()
        print_out(summary[:1].upper() + summary[1:])
        print_out(f"The {manifest.role} bundle:")
        print_out("\n".join(keysupport.service_lines(services)))
        if not ok:
            print_err("error: a service's key is of a type this host's Ceph client cannot "
                      "use: upgrade its librados/librbd before installing this bundle")
    return 0 if ok else EXIT_FAILED


def _text(report, dry_run: bool) -> None:
    from cephstack.host.keysupport import KeySupport, service_lines

    if report.key_support:
        print_out("  " + KeySupport(**report.key_support).summary())
        print_out("\n".join(service_lines(report.service_keys)))
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
        print_out(f"Installed the {report.role} bundle. Restart: "
                  f"{', '.join(report.restart) or 'nothing (no service reads what changed)'}.")
    if report.volume_types:
        print_out("Volume types (once, with OpenStack credentials):")
        for command in report.volume_types:
            print_out(f"  {command}")


def register(sub, fmt) -> None:
    p = sub.add_parser("host", help="install (or check) a rendered bundle on an OpenStack host",
                       formatter_class=fmt, epilog=EXIT_CODES + (
                           "\nexamples:\n"
                           "  cephstack host install /etc/cephstack/openstack/compute\n"
                           "  cephstack host check ./compute\n"
                           "  cephstack host install ./controller --service cinder-volume\n"
                           "  cephstack host install ./compute --root /srv/image --libvirt-uri qemu:///system\n"),
                       description="install: run as root on a controller, backup or compute "
                       "host with the bundle `cephstack render` wrote for its role. Installs "
                       "/etc/ceph/ceph.conf and the keyrings atomically with the owner, group "
                       "and mode of MANIFEST.json, merges the service settings into the "
                       "services' own files (keeping everything else, their owner and mode), "
                       "creates QEMU's socket and log directories, defines the libvirt secrets "
                       "(compute), then checks, as each service's own Unix user, that it "
                       "reads its keyring and lists its pool. Prints what changed and what to "
                       "restart. Idempotent. The bundle is untrusted input: MANIFEST.json "
                       "may name only the files, directories, modes and settings render "
                       "writes for the role, and every one is checked before the first change "
                       "(a refusal changes nothing). Exit 1 when a check fails, 2 when the "
                       "bundle is refused. check: read-only: this host's Ceph client "
                       "version and whether it can use aes256k keys, and per service of the "
                       "bundle its key type and whether this host can use it (exit 1 when "
                       "not). install reports the same.")
    p.add_argument("action", choices=("install", "check"))
    p.add_argument("bundle", help="the role's bundle directory, e.g. out/compute")
    p.add_argument("--service", action="append", metavar="NAME",
                   choices=("glance", "cinder-volume", "cinder-backup", "nova"),
                   help="only this service of the role runs here (repeatable; e.g. a "
                   "storage node with cinder-volume alone): only its keyrings, settings, "
                   "checks and restarts (default: every service of the bundle)")
    p.add_argument("--root", default="/", help="install under this directory instead of / "
                   "(images, chroots, tests)")
    p.add_argument("--dry-run", action="store_true", help="show what would change; change "
                   "nothing")
    p.add_argument("--libvirt-uri", help="libvirt URI for the secrets (default: "
                   "qemu:///system; with --root, secrets are defined only if given)")
    p.add_argument("--no-check", action="store_true", help="skip the checks as the services' "
                   "users")
    p.add_argument("--trust-bundle-permissions", action="store_true", help="install a bundle "
                   "whose directories or files others than their owner may write (refused "
                   "otherwise: whoever can write the bundle decides what root installs)")
    add_output(p)
    p.set_defaults(func=cmd_host)
