"""records: what cephstack recorded having created on each cluster, by spec; adopt the
records kept from before they were per spec."""

from __future__ import annotations

import argparse
import json

from cephstack.commands.common import (
    CLUSTER_EXIT_CODES,
    add_cluster,
    add_output,
    confirm,
    load_spec_of,
    print_err,
    print_out,
    settings_of,
)
from cephstack.errors import EXIT_BAD_INPUT, EXIT_FAILED

RECORDS_EXIT_CODES = f"""\
exit codes:
  0  success
  {EXIT_FAILED}  a Ceph command failed or was refused; adopt: cancelled at the prompt
  {EXIT_BAD_INPUT}  bad input: invalid spec or arguments
""" + CLUSTER_EXIT_CODES

_OLD = "from before records were kept per spec"


def cmd_records(args: argparse.Namespace) -> int:
    from cephstack import FORMAT_VERSION
    from cephstack.ceph.records import adopt_old_records, list_records
    from cephstack.session import fleet
    from cephstack.session.connect import hold_lock
    from cephstack.spec.fleet import split

    spec = load_spec_of(args)
    settings = settings_of(args)
    if args.action == "adopt" and not confirm(
            args, "Make every record from before records were kept per spec this spec's "
            "(prune may then remove what it names)?", "no record adopted"):
        return EXIT_FAILED
    runs = [fleet.ClusterRun(name, part) for name, part in split(spec).items()]
    found: dict[str, object] = {}

    def work(run: fleet.ClusterRun) -> None:
        with fleet.connect_run(settings, run) as conn:
            if args.action == "adopt":
                with hold_lock(settings, conn, "apply"):
                    found[run.name] = adopt_old_records(conn, run.spec.records_owner)
            else:
                found[run.name] = list_records(conn)

    fleet.each(runs, work)
    doc = {"format_version": FORMAT_VERSION, "action": args.action, "clusters": {
        r.name: {"spec": r.spec.records_owner, **({"records": found[r.name]} if r.ok else
                                                  {"error": str(r.error)})} for r in runs}}
    if args.output == "json":
        print_out(json.dumps(doc, indent=2))
    else:
        for r in runs:
            print_out(_text(r.name, r.spec.records_owner, args.action, found.get(r.name),
                            r.error, len(runs) > 1))
    failed = [r.error for r in runs if not r.ok]
    for e in failed:
        print_err(f"error: {e}")
    return getattr(failed[0], "exit_code", EXIT_FAILED) if failed else 0


def _text(cluster: str, owner: str, action: str, found, error, several: bool) -> str:
    head = f"{cluster}: " if several else ""
    if error is not None:
        return f"{head}not read: {error}"
    if action == "adopt":
        moved = "; ".join(f"{kind} {', '.join(names)}" for kind, names in found.items()
                          if names) or "nothing"
        return f"{head}adopted as this spec's ({owner}): {moved}"
    if not found:
        return f"{head}no records of what cephstack created"
    lines = [f"{head}records of what cephstack created, by spec:"]
    for who, had in found.items():
        name = (f"this spec ({who})" if who == owner else f"spec {who}") if who else _OLD
        lines.append(f"  {name}: pools {', '.join(had['pools']) or '-'}; "
                     f"users {', '.join(had['users']) or '-'}")
    return "\n".join(lines)


def register(sub, fmt) -> None:
    p = sub.add_parser(
        "records", formatter_class=fmt,
        help="what cephstack recorded having created, by spec; adopt older records",
        description="cephstack records what it creates in the cluster (config-key "
        "cephstack/created/), under the spec's own name (its `id:`, else one derived from "
        "its keyring directory), so --prune of one spec never touches what another spec on "
        "the same cluster created. `list` shows every spec's records; `adopt` makes the "
        "records kept from before records were per spec this spec's (they are never "
        "pruned until then).",
        epilog=RECORDS_EXIT_CODES + "\nexamples:\n"
        "  cephstack records list\n"
        "  cephstack records list -f cloud-b.yaml --output json\n"
        "  cephstack records adopt -f cephstack.yaml --yes\n")
    p.add_argument("action", choices=("list", "adopt"), help="list, or adopt older records")
    p.add_argument("--yes", action="store_true", help="adopt without asking")
    add_cluster(p)
    add_output(p)
    p.set_defaults(func=cmd_records)
