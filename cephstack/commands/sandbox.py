"""sandbox: a throwaway single-node cluster on loopback."""

from __future__ import annotations

import argparse
import json

from cephstack.commands.common import EXIT_CODES, add_output, print_err, print_out
from cephstack.errors import EXIT_FAILED


def cmd_sandbox(args: argparse.Namespace) -> int:
    from cephstack.sandbox import Sandbox

    box = Sandbox(args.dir)
    if args.action == "up":
        if args.output == "text":
            print_err(f"starting the sandbox in {box.dir} ...")
        status = box.up(port=args.port, osds=args.osds)
    elif args.action == "down":
        stopped = box.down()
        if args.output == "text":
            print_out(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        status = box.status()
    else:
        status = box.status()
    if args.output == "json":
        print_out(json.dumps({"format_version": "1", "up": status.up, "dir": status.directory,
                         "conf": status.conf, "keyring": status.keyring, "port": status.port,
                         "daemons": status.running}, indent=2))
    elif args.action != "down":
        state = "up" if status.up else "down"
        print_out(f"sandbox {state}: {status.directory}")
        print_out(f"  ceph.conf: {status.conf}")
        print_out(f"  admin keyring: {status.keyring}")
        print_out(f"  monitor: 127.0.0.1:{status.port}")
        for daemon, pid in status.running.items():
            print_out(f"  {daemon}: {'pid ' + str(pid) if pid else 'not running'}")
    return 0 if args.action == "down" or status.up else EXIT_FAILED


def register(sub, fmt) -> None:
    p = sub.add_parser("sandbox", help="a throwaway single-node cluster on loopback",
                       formatter_class=fmt, epilog=EXIT_CODES,
                       description="up: start (creating if needed; idempotent) a real "
                       "mon + mgr + memstore OSD(s) cluster on 127.0.0.1. down: stop its "
                       "daemons by the pids in DIR/run (only processes whose command line "
                       "names DIR/ceph.conf), remove nothing but their pid files. status: "
                       "show it.")
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--dir", default="sandbox", help="its directory (default: ./sandbox)")
    p.add_argument("--port", type=int, help="monitor port (default: a free one)")
    p.add_argument("--osds", type=int, metavar="N",
                   help="up: how many memstore OSDs, all on one host, device classes "
                   "alternating hdd, ssd (default: 1, or as many as the stopped sandbox had)")
    add_output(p)
    p.set_defaults(func=cmd_sandbox)
