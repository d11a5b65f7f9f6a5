"""What every command shares: printing, the cluster and output options, loading the spec,
connecting, observing and planning."""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

from cephstack.errors import (
    EXIT_AUTH,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_TIMEOUT,
    EXIT_UNREACHABLE,
)

# The codes every cluster command shares (after its own 0/1/2).
CLUSTER_EXIT_CODES = f"""\
  {EXIT_UNREACHABLE}  the cluster could not be reached within the connect timeout
  {EXIT_AUTH}  authentication failed: wrong key, or no such user
  {EXIT_TIMEOUT}  timed out mid-run: a monitor, or the OSDs of a pool, did not answer within
     the operation timeout (the error names which)
  {EXIT_LOCKED}  another cephstack run holds the cluster's lock (apply, verify)
  130/143  interrupted by SIGINT/SIGTERM (after the cleanup the command owes)
"""

EXIT_CODES = f"""\
exit codes:
  0  success (plan: no changes, or changes without --detailed-exitcode)
  {EXIT_FAILED}  failure: a Ceph command failed or was refused (permission denied), the plan
     was refused or did not converge
  {EXIT_BAD_INPUT}  bad input: invalid spec or arguments; with plan --detailed-exitcode: changes
""" + CLUSTER_EXIT_CODES


_printed = {"out": False, "error": ""}


def print_out(text: str = "") -> None:
    _printed["out"] = True
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # The reader went away (`| head`): the output is no longer wanted, but the command's
        # work (an apply half done, say) must not stop over it. Later output goes nowhere.
        _stdout_to_devnull()


def _stdout_to_devnull() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def print_err(text: str) -> None:
    if text.startswith("error: "):
        _printed["error"] = text.removeprefix("error: ")
    print(text, file=sys.stderr, flush=True)


def reset_output() -> None:
    _printed.update(out=False, error="")


def stdout_used() -> bool:
    return bool(_printed["out"])


def last_error() -> str:
    return str(_printed["error"])


def add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", choices=("text", "json"), default="text",
                   help="text for people, json for machines (default: text)")


DEFAULT_SPEC_FILE = "cephstack.yaml"


def add_cluster(p: argparse.ArgumentParser, spec_default: str | None = DEFAULT_SPEC_FILE
                ) -> None:
    """The spec and cluster options. `spec_default` None: the spec is optional (read-only
    commands): ./cephstack.yaml when there is one, as plan and apply read it, else none
    (the cluster from /etc/ceph or --conf)."""
    if spec_default is None:
        shown = f"{DEFAULT_SPEC_FILE} when it exists here, else none"
        spec_default = DEFAULT_SPEC_FILE if Path(DEFAULT_SPEC_FILE).is_file() else None
    else:
        shown = spec_default
    p.add_argument("-f", "--spec", default=spec_default, help=f"spec file (default: {shown})")
    g = p.add_argument_group("reaching the cluster (override the spec's cluster: section)")
    g.add_argument("--conf", type=_path_arg, help="ceph.conf path")
    g.add_argument("--keyring", type=_path_arg, help="admin keyring path")
    g.add_argument("--id", dest="client", type=_client_id,
                   help="admin client name, e.g. client.admin")
    g.add_argument("--connect-timeout", type=_seconds, help="seconds (default 10)")
    g.add_argument("--op-timeout", type=_positive, metavar="SECONDS",
                   help="give up on any monitor command or OSD operation after this many "
                   "seconds, naming what did not answer (default 30)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 3600):
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, got {text!r}")
    return value


def _client_id(text: str) -> str:
    """`client.<name>` or `<name>`, normalised to `client.<name>` (the prefix once)."""
    bare = text.removeprefix("client.")
    if bare.startswith("client.") or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", bare):
        raise argparse.ArgumentTypeError(f"expected client.<name> or <name>, got {text!r}")
    return f"client.{bare}"


def _path_arg(text: str) -> str:
    if not text or not text.isprintable() or text != text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return text


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def add_only_clusters(p: argparse.ArgumentParser, what: str = "only this cluster",
                      default: str = "every cluster of the spec, at once") -> None:
    """--cluster NAME (repeatable): with a spec of several clusters, limit the command."""
    p.add_argument("--cluster", dest="only_clusters", action="append", metavar="NAME",
                   help=f"with a spec of several clusters: {what} (repeatable; default: "
                   f"{default})")


def add_lock_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS",
                   help="when another cephstack run holds the cluster's lock, wait up to "
                   "this long for it instead of failing at once (default 0)")


def settings_of(args: argparse.Namespace):
    """The typed run settings (cephstack.session.connect.Settings) a command line asks for."""
    from cephstack.session.connect import Settings

    return Settings(conf=getattr(args, "conf", None), keyring=getattr(args, "keyring", None),
                    client=getattr(args, "client", None),
                    connect_timeout=getattr(args, "connect_timeout", None),
                    op_timeout=getattr(args, "op_timeout", None),
                    lock_wait=getattr(args, "lock_wait", 0.0) or 0.0,
                    prune=bool(getattr(args, "prune", False)))


def hold_lock(args: argparse.Namespace, conn, command: str, shared: bool = False,
              run: str | None = None, alongside=None):
    from cephstack.session.connect import hold_lock as hold

    return hold(settings_of(args), conn, command, shared, run=run, alongside=alongside)


def op_timeout(args: argparse.Namespace) -> float:
    return settings_of(args).operation_timeout


def would_overwrite(out: Path, force: bool) -> bool:
    if out.exists() and not force:
        print_err(f"error: {out} exists; use --force to overwrite it")
        return True
    return False


def load_spec_of(args: argparse.Namespace):
    from cephstack.spec.load import load_spec

    return load_spec(args.spec, connect_as=getattr(args, "client", None))


def connect(args: argparse.Namespace, spec):
    from cephstack.session.connect import connect as open_connection

    return open_connection(settings_of(args), spec)


def observe_for(conn, spec):
    from cephstack.session.connect import observe_for as observe

    return observe(conn, spec)


def plan_for(spec, state):
    from cephstack.session.connect import plan_for as plan

    return plan(spec, state)


def confirm(args: argparse.Namespace, question: str, refused: str) -> bool:
    """--yes, or "yes" typed at the terminal; without a terminal, refused (nothing done)."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print_err(f"error: not a terminal and --yes not given: {refused}")
        return False
    if input(f"{question} Only 'yes' is accepted: ").strip() == "yes":
        return True
    print_err(f"cancelled: {refused}")
    return False
