"""sandbox: a throwaway single-node cluster on loopback."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cephstack import FORMAT_VERSION
from cephstack.commands.common import EXIT_CODES, add_output, print_err, print_out
from cephstack.errors import EXIT_FAILED
from cephstack.sandbox.release import DEFAULT_DIR, RELEASES


def _cluster_in(directory: Path) -> str:
    """The one cluster a sandbox directory holds (its NAME.conf), else "ceph"."""
    confs = [p.stem for p in directory.glob("*.conf")]
    return confs[0] if len(confs) == 1 else "ceph"


def cmd_sandbox(args: argparse.Namespace) -> int:
    from cephstack.sandbox.cluster import Sandbox, SandboxArgumentError

    if args.site and not args.rbd_mirror:
        raise SandboxArgumentError("--site names the rbd-mirror daemon's user: "
                                   "give --rbd-mirror too")
    box = Sandbox(args.dir, cluster=args.cluster or _cluster_in(Path(args.dir)),
                  release=args.release)
    if args.action == "up":
        if args.output == "text":
            print_err(f"starting the sandbox {box.cluster} ({box.release}) in {box.dir} ...")
        was_up = box.status().up
        status = box.up(port=args.port, osds=args.osds, log=print_err)
        if args.rbd_mirror:
            try:
                box.start_rbd_mirror(args.site)
            except BaseException:
                if not was_up:  # a failed up stops every daemon it started
                    box.down()
                raise
            status = box.status()
    elif args.action == "down":
        stopped = box.down()
        if args.output == "text":
            print_out(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        status = box.status()
    else:
        status = box.status()
    if args.output == "json":
        print_out(json.dumps({"format_version": FORMAT_VERSION, "up": status.up,
                              "dir": status.directory,
                              "cluster": status.cluster, "release": status.release,
                              "conf": status.conf,
                              "keyring": status.keyring, "port": status.port,
                              "daemons": status.running}, indent=2))
    elif args.action != "down":
        state = "up" if status.up else "down"
        print_out(f"sandbox {state}: {status.directory}")
        print_out(f"  cluster: {status.cluster}")
        print_out(f"  release: {status.release}")
        print_out(f"  ceph.conf: {status.conf}")
        print_out(f"  admin keyring: {status.keyring}")
        print_out(f"  monitor: 127.0.0.1:{status.port}")
        for daemon, pid in status.running.items():
            print_out(f"  {daemon}: {'pid ' + str(pid) if pid else 'not running'}")
    return 0 if args.action == "down" or status.up else EXIT_FAILED


def register(sub, fmt) -> None:
    p = sub.add_parser("sandbox", help="a throwaway single-node cluster on loopback",
                       formatter_class=fmt, epilog=EXIT_CODES + (
                           "\nexamples:\n"
                           "  cephstack sandbox up\n"
                           "  cephstack sandbox up --dir sandbox-a --cluster site-a --rbd-mirror\n"
                           "  cephstack sandbox status --dir sandbox-a\n"
                           "  cephstack sandbox down --dir sandbox-a\n"),
                       description="up: start (creating if needed; idempotent) a real "
                       "mon + mgr + memstore OSD(s) cluster on 127.0.0.1, with --rbd-mirror "
                       "also an rbd-mirror daemon. down: stop its daemons (rbd-mirror too) by "
                       "the pids in DIR/run (only processes whose command line names "
                       "DIR/CLUSTER.conf), remove nothing but their pid files. status: show "
                       "it. Two clusters (RBD mirroring): two directories, e.g. "
                       "`up --dir sandbox-a --cluster site-a --rbd-mirror` and the same with "
                       "sandbox-b and site-b.")
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--dir", default="sandbox", help="its directory (default: ./sandbox)")
    p.add_argument("--cluster", metavar="NAME",
                   help="the cluster's name: its files are DIR/NAME.conf and "
                   "DIR/NAME.client.admin.keyring; one cluster per DIR (default: the one "
                   "DIR holds, else ceph)")
    p.add_argument("--port", type=int, help="monitor port (default: a free one)")
    p.add_argument("--release", choices=("host", *RELEASES),
                   help="up: the Ceph release to run: the host's own packages (host, the "
                   "default), or pacific, reef, tentacle from a Debian root of that "
                   "release (bookworm, trixie, forky), built on first use (about 2 minutes "
                   "and 1 GB each, as root) in $CEPHSTACK_RELEASES_DIR (default "
                   f"{DEFAULT_DIR}/RELEASE) and reused; remove one with `python -m "
                   "cephstack.sandbox.release remove RELEASE`. A release the host's "
                   "packages already are runs from the host. Default for an existing "
                   "sandbox: the release it was created with (docs/releases.md)")
    p.add_argument("--osds", type=int, metavar="N",
                   help="up: how many memstore OSDs, all on one host, device classes "
                   "alternating hdd, ssd (default: 1, or as many as the stopped sandbox had)")
    p.add_argument("--rbd-mirror", action="store_true",
                   help="up: also run an rbd-mirror daemon as client.rbd-mirror.SITE (caps "
                   "mon 'profile rbd-mirror' osd 'profile rbd'); started again by a later up")
    p.add_argument("--site", metavar="SITE",
                   help="with --rbd-mirror: the site in the daemon's user name (default: "
                   "the cluster name)")
    add_output(p)
    p.set_defaults(func=cmd_sandbox)
