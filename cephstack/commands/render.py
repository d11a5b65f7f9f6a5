"""render (bundles, --merge-into) and secrets install."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cephstack.commands.common import (
    EXIT_CODES,
    add_cluster,
    add_output,
    connect,
    load_spec_of,
    print_err,
    print_out,
)
from cephstack.errors import EXIT_BAD_INPUT, EXIT_FAILED


def _render_files(args: argparse.Namespace, spec, out: Path) -> int:
    from cephstack.ceph.observe import observe
    from cephstack.keyfiles import write_atomic
    from cephstack.render.bundle import render
    from cephstack.render.drift import facts_of

    fmt = args.format or (spec.render.format if spec.render else "plain")
    with connect(args, spec) as conn:
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
        print_out(json.dumps({"format_version": "1", "format": fmt, "files": report}, indent=2))
    else:
        for r in report:
            print_out(f"  {r['state']:<9} {r['path']}" + ("   (key: sensitive)" if r["holds_key"]
                                                     else ""))
        counts = {s: sum(r["state"] == s for r in report)
                  for s in ("created", "updated", "unchanged", "removed")}
        print_out(f"Render ({fmt}): " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
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
        print_err(f"error: cannot tell which service {path.name} belongs to; "
             "give --as glance|cinder|nova")
        return EXIT_BAD_INPUT
    if not path.is_file():
        print_err(f"error: {path} does not exist (--merge-into updates an existing file)")
        return EXIT_FAILED
    with connect(args, spec) as conn:
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
        print_out(json.dumps({"format_version": "1", "path": str(path), "changed": after != before,
                         "diff": diff}, indent=2))
    else:
        print_out(diff.rstrip("\n") if diff else f"No changes: {path} already has cephstack's "
             "options.")
        if diff:
            print_out(f"Updated {path}; the previous version is in {path.name}.cephstack.bak.")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    spec = load_spec_of(args)
    if args.merge_into:
        return _merge_into(args, spec)
    out = args.out or (spec.render.directory if spec.render else None)
    if out is None:
        print_err("error: give --out DIR (or render.directory in the spec)")
        return EXIT_BAD_INPUT
    return _render_files(args, spec, Path(out))


def cmd_secrets(args: argparse.Namespace) -> int:
    from cephstack.render.libvirt import install

    done = install(args.dir, args.uri)
    if args.output == "json":
        print_out(json.dumps({"format_version": "1", "secrets": [vars(s) for s in done]}, indent=2))
    else:
        for s in done:
            print_out(f"  {'set' if s.changed else 'unchanged':<9} {s.uuid}  {s.usage}")
        print_out(f"Secrets: {sum(s.changed for s in done)} set, "
             f"{sum(not s.changed for s in done)} unchanged ({args.uri}).")
    return 0


def register(sub, fmt) -> None:
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
    add_cluster(p)
    p.add_argument("--out", help="output directory (default: render.directory in the spec)")
    p.add_argument("--format", choices=("plain", "kolla"), help="default: plain")
    p.add_argument("--merge-into", metavar="PATH", help="an existing service config file")
    p.add_argument("--as", dest="as_service", choices=("glance", "cinder", "nova"),
                   help="which service PATH belongs to (default: from its file name)")
    add_output(p)
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
    add_output(p)
    p.set_defaults(func=cmd_secrets)
