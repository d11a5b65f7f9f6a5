"""What every command shares: printing, the cluster and output options, loading the spec,
connecting, observing and planning."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cephstack.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_UNREACHABLE

EXIT_CODES = f"""\
exit codes:
  0  success (plan: no changes, or changes without --detailed-exitcode)
  {EXIT_FAILED}  failure: a Ceph command failed, the plan was refused or did not converge
  {EXIT_BAD_INPUT}  bad input: invalid spec or arguments; with plan --detailed-exitcode: changes
  {EXIT_UNREACHABLE}  the cluster could not be reached within the connect timeout
"""


def print_out(text: str = "") -> None:
    print(text, flush=True)


def print_err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", choices=("text", "json"), default="text",
                   help="text for people, json for machines (default: text)")


def add_cluster(p: argparse.ArgumentParser, spec_default: str | None = "cephstack.yaml") -> None:
    p.add_argument("-f", "--spec", default=spec_default,
                   help=f"spec file (default: {spec_default or 'none'})")
    g = p.add_argument_group("reaching the cluster (override the spec's cluster: section)")
    g.add_argument("--conf", help="ceph.conf path")
    g.add_argument("--keyring", help="admin keyring path")
    g.add_argument("--id", dest="client", help="admin client name, e.g. client.admin")
    g.add_argument("--connect-timeout", type=float, help="seconds (default 10)")


def would_overwrite(out: Path, force: bool) -> bool:
    if out.exists() and not force:
        print_err(f"error: {out} exists; use --force to overwrite it")
        return True
    return False


def load_spec_of(args: argparse.Namespace):
    from cephstack.spec import load_spec

    return load_spec(args.spec)


def connect(args: argparse.Namespace, spec):
    from cephstack.ceph.adapter import CephConnection, ClusterAccess
    from cephstack.spec import ClusterSettings

    c = spec.cluster if spec is not None else ClusterSettings()
    client = args.client or c.client
    if not client.startswith("client."):
        client = f"client.{client}"
    return CephConnection(ClusterAccess(
        conf=args.conf or c.conf, keyring=args.keyring or c.keyring, client=client,
        connect_timeout=args.connect_timeout or c.connect_timeout))


def observe_for(conn, spec):
    from cephstack.catalog import desired_clients
    from cephstack.ceph.observe import observe

    paths = {e: spec.keyrings.path_for(e) for e in desired_clients(spec)}
    return observe(conn, paths, monmap=spec.render is not None)


def plan_for(spec, state):
    from cephstack.plan import make_plan

    if spec.render is None:
        return make_plan(spec, state)
    from cephstack.render.drift import rendered_on_disk

    return make_plan(spec, state, rendered_on_disk(spec, state))
