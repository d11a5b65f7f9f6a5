"""init: write the default spec."""

from __future__ import annotations

import argparse
import json
import secrets
from pathlib import Path

from cephstack import FORMAT_VERSION
from cephstack.commands.common import EXIT_CODES, add_output, print_out, would_overwrite
from cephstack.errors import EXIT_FAILED


def cmd_init(args: argparse.Namespace) -> int:
    from cephstack.keyfiles import write_atomic
    from cephstack.spec.defaults import DEFAULT_SPEC

    out = Path(args.out)
    if would_overwrite(out, args.force):
        return EXIT_FAILED
    text = DEFAULT_SPEC
    q = json.dumps  # a JSON string is a YAML scalar: paths with ': ' or '#' stay paths
    replacements = {
        "  conf: /etc/ceph/ceph.conf": args.conf and f"  conf: {q(args.conf)}",
        "  keyring: /etc/ceph/ceph.client.admin.keyring": args.keyring
        and f"  keyring: {q(args.keyring)}",
        "  directory: /var/openstack/ceph": args.keyring_dir
        and f"  directory: {q(args.keyring_dir)}",
        "# render: {directory: /etc/cephstack/openstack, format: plain}": args.render_dir
        and f"render: {{directory: {q(args.render_dir)}, format: plain}}",
    }
    for old, new in replacements.items():
        if new:
            text = text.replace(old, new, 1)
    # A name of its own for this spec's records in the cluster: another spec (cloud) on
    # the same cluster never prunes what this one created (docs/spec.md).
    text = text.replace("\ncluster:\n", f"\nid: cloud-{secrets.token_hex(4)}  # names this "
                        "spec's records in the cluster\n\ncluster:\n", 1)
    write_atomic(str(out), text, 0o644, dir_mode=0o755)  # never through a planted link
    if args.output == "json":
        print_out(json.dumps({"format_version": FORMAT_VERSION, "spec": str(out)}))
    else:
        print_out(f"Wrote {out}. Next: cephstack plan -f {out}")
    return 0


def register(sub, fmt) -> None:
    p = sub.add_parser("init", help="write the default spec", formatter_class=fmt,
                       epilog=EXIT_CODES + (
                           "\nexamples:\n"
                           "  cephstack init\n"
                           "  cephstack init --render-dir /etc/cephstack/openstack\n"
                           "  cephstack init --out site.yaml --conf /etc/ceph/site.conf --force\n"),
                       description="Write the default spec (the seed "
                       "guide's layout with least-privilege caps), commented.")
    p.add_argument("--out", default="cephstack.yaml", help="default: cephstack.yaml")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--conf", help="ceph.conf to put in the spec")
    p.add_argument("--keyring", help="admin keyring to put in the spec")
    p.add_argument("--keyring-dir", help="where service keyrings go "
                   "(default /var/openstack/ceph)")
    p.add_argument("--render-dir", help="where `cephstack render` writes (default: unset)")
    add_output(p)
    p.set_defaults(func=cmd_init)
