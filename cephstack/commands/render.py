"""render (bundles, --merge-into) and secrets install."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cephstack import FORMAT_VERSION
from cephstack.commands.common import (
    EXIT_CODES,
    add_cluster,
    add_output,
    load_spec_of,
    print_err,
    print_out,
    settings_of,
)
from cephstack.errors import EXIT_BAD_INPUT, CephstackError


def _render_files(args: argparse.Namespace, spec, out: Path) -> int:
    from cephstack.render.bundle import render
    from cephstack.render.openstack import notes
    from cephstack.session.drift import compare, write_rendered
    from cephstack.session.rendering import observed_facts

    fmt = args.format or (spec.render.format if spec.render else "plain")
    files = render(spec, observed_facts(settings_of(args), spec), fmt)
    if missing := sorted({f.pending for f in files if f.pending}):
        raise CephstackError(f"{', '.join(missing)} does not exist in the cluster: nothing "
                             "rendered", hint="run cephstack apply first")
    report = []
    for item in compare(out, files):
        # Obsolete files (listed by the last render, no longer rendered) go: a renamed
        # user's key must not linger in a bundle.
        state = ("unchanged" if item.in_sync else "removed" if item.wanted is None
                 else "created" if item.on_disk is None else "updated")
        if state != "unchanged" and not args.dry_run:
            write_rendered(item, str(out))
        report.append({"path": item.path, "state": state,
                       "holds_key": bool(item.wanted and item.wanted.secret)})
    if args.output == "json":
        print_out(json.dumps({"format_version": FORMAT_VERSION, "format": fmt, "files": report,
                              "notes": notes(spec), "dry_run": args.dry_run}, indent=2))
        return 0
    would = "would be " if args.dry_run else ""
    for r in report:
        print_out(f"  {would + r['state']:<9} {r['path']}"
                  + ("   (key: sensitive)" if r["holds_key"] else ""))
    counts = {s: sum(r["state"] == s for r in report)
              for s in ("created", "updated", "unchanged", "removed")}
    for note in notes(spec):
        print_out(f"note: {note}")
    summary = ", ".join(f"{n} {would if s != 'unchanged' else ''}{s}"
                        for s, n in counts.items() if n)
    if args.dry_run:
        print_out(f"Render ({fmt}), dry run: {summary}, in {out}. Nothing was written.")
    else:
        print_out(f"Render ({fmt}): {summary}, in {out}." + (
            " Install each bundle on its hosts: cephstack host install "
            f"{out}/<role>" if fmt == "plain" else ""))
    return 0


def _merge_into(args: argparse.Namespace, spec) -> int:
    from cephstack.host.merge import BACKUP_SUFFIX, merge_file
    from cephstack.render.roles import choose, role_sections
    from cephstack.session.rendering import read_fsids

    path = Path(args.merge_into)
    service = args.as_service or {"glance-api.conf": "glance", "cinder.conf": "cinder",
                                  "nova.conf": "nova"}.get(path.name)
    if service is None:
        print_err(f"error: cannot tell which service {path.name} belongs to; "
                  "give --as glance|cinder|nova")
        return EXIT_BAD_INPUT
    chosen = choose(spec, args.role, service)  # refused before any cluster is reached
    fsids = read_fsids(settings_of(args), spec, chosen.clusters, path)
    outcome = merge_file(path, role_sections(spec, chosen, fsids), service, args.dry_run)
    role = {"role": chosen.role, "clusters": list(chosen.clusters)} if chosen.role else {}
    if args.output == "json":
        print_out(json.dumps({"format_version": FORMAT_VERSION, "path": str(path),
                              "changed": outcome.changed, "dry_run": args.dry_run,
                              "diff": outcome.diff, "notes": list(outcome.notes), **role},
                             indent=2))
        return 0
    print_out(outcome.diff.rstrip("\n") if outcome.changed else
              f"No changes: {path} already has cephstack's options.")
    for note in outcome.notes:
        print_out(f"note: {note}")
    if outcome.changed:
        print_out("Dry run: nothing was changed." if args.dry_run else
                  f"Updated {path} (owner and mode kept); the previous version is in "
                  f"{path.name}{BACKUP_SUFFIX}.")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    spec = load_spec_of(args)
    if args.merge_into:
        return _merge_into(args, spec)
    if args.role:
        print_err("error: --role goes with --merge-into (render writes every role's bundle)")
        return EXIT_BAD_INPUT
    out = args.out or (spec.render.directory if spec.render else None)
    if out is None:
        print_err("error: give --out DIR (or render.directory in the spec)")
        return EXIT_BAD_INPUT
    return _render_files(args, spec, Path(out))


def cmd_secrets(args: argparse.Namespace) -> int:
    from cephstack.host.secretdir import install

    done = install(args.dir, args.uri)
    if args.output == "json":
        print_out(json.dumps({"format_version": FORMAT_VERSION, "secrets": done}, indent=2))
    else:
        for s in done:
            print_out(f"  {'set' if s['changed'] else 'unchanged':<9} {s['uuid']}  {s['usage']}")
        print_out(f"Secrets: {sum(s['changed'] for s in done)} set, "
                  f"{sum(not s['changed'] for s in done)} unchanged ({args.uri}).")
    return 0


def register(sub, fmt) -> None:
    p = sub.add_parser("render", help="write ceph.conf, OpenStack config, keyrings, secrets",
                       formatter_class=fmt, epilog=EXIT_CODES + (
                           "\nexamples:\n"
                           "  cephstack render -f cephstack.yaml --out /etc/cephstack/openstack\n"
                           "  cephstack render --format kolla --out /etc/kolla\n"
                           "  cephstack render --merge-into /etc/cinder/cinder.conf --dry-run\n"
                           "  cephstack render --merge-into nova.conf --role compute-edge1\n"),
                       description="From the spec and the live cluster (fsid, monitors, "
                       "keys): client ceph.conf, Glance/Cinder/Cinder-backup/Nova settings, "
                       "libvirt secrets and keyrings, per host role (plain: controller/, "
                       "backup/, compute/, each mirroring the host's /etc/ceph with a "
                       "MANIFEST.json for `cephstack host install`) or as kolla-ansible "
                       "expects (kolla). Keys go only into files, never to the terminal. "
                       "Files an earlier render wrote that are no longer rendered are "
                       "removed. With --merge-into, update an existing glance-api.conf, "
                       "cinder.conf or nova.conf in place: only cephstack's options change "
                       "(other backends stay), owner and mode are kept, a backup is kept and "
                       "the diff shown; with clusters: in the spec, --role names the host's "
                       "role and its bundle's settings for that file are merged.")
    add_cluster(p)
    p.add_argument("--out", help="output directory (default: render.directory in the spec)")
    p.add_argument("--format", choices=("plain", "kolla"), help="default: plain")
    p.add_argument("--merge-into", metavar="PATH", help="an existing service config file")
    p.add_argument("--dry-run", action="store_true",
                   help="show what would be written, removed or merged (the diff with "
                   "--merge-into); change nothing")
    p.add_argument("--as", dest="as_service", choices=("glance", "cinder", "nova"),
                   help="which service PATH belongs to (default: from its file name)")
    p.add_argument("--role", metavar="NAME",
                   help="with --merge-into and a spec with clusters: the host's role, as the "
                   "bundles name it (controller, backup, compute-<zone>): its settings are "
                   "merged")
    add_output(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("secrets", help="install rendered libvirt secrets on a compute host",
                       formatter_class=fmt, epilog=EXIT_CODES + (
                           "\nexamples:\n"
                           "  cephstack secrets install --dir compute/secrets\n"
                           "  cephstack secrets install --dir compute/secrets --uri qemu:///system\n"),
                       description="install: define each <uuid>.xml secret of --dir in "
                       "libvirt and set its value from <uuid>.key, through libvirt's Python "
                       "binding (the key never goes on a command line). Idempotent.")
    p.add_argument("action", choices=("install",))
    p.add_argument("--dir", default="compute/secrets",
                   help="rendered secrets (default: compute/secrets)")
    p.add_argument("--uri", default="qemu:///system", help="libvirt URI (default: "
                   "qemu:///system)")
    add_output(p)
    p.set_defaults(func=cmd_secrets)
