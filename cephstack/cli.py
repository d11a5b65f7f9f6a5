"""The cephstack command line: builds the parser from the command modules and maps errors
to exit codes. Commands live in cephstack/commands/, one module per family; with it they
are the only code that prints, prompts or picks exit codes.

Heavy imports (yaml, rados) happen inside the commands, so `--help` and a no-op apply
start fast.
"""

from __future__ import annotations

import argparse
import os

from cephstack import __version__
from cephstack.commands import adopt, init, plan_apply, render, sandbox, verify
from cephstack.commands.common import EXIT_CODES, print_err
from cephstack.errors import CephstackError

# The order of `cephstack --help`.
_FAMILIES = (init, plan_apply, verify, adopt, render, sandbox)


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="cephstack", formatter_class=fmt, epilog=EXIT_CODES,
        description="Ceph RBD for OpenStack: declare pools and services once, "
                    "plan, apply, and keep them so.")
    parser.add_argument("--version", action="version", version=f"cephstack {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for family in _FAMILIES:
        family.register(sub, fmt)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CephstackError as e:
        if args.debug or os.environ.get("CEPHSTACK_DEBUG"):
            raise
        print_err(f"error: {e}")
        return e.exit_code
    except KeyboardInterrupt:
        print_err("interrupted")
        return 130
