"""report: one self-contained HTML page (plan, audit, verify, status, access), and the
access picture as SVG."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from cephstack.commands.common import (
    CLUSTER_EXIT_CODES,
    add_cluster,
    add_output,
    connect,
    load_spec_of,
    observe_for,
    plan_for,
    print_out,
)
from cephstack.commands.status import add_max_images, read
from cephstack.errors import EXIT_BAD_INPUT, EXIT_FAILED, CephstackError

REPORT_EXIT_CODES = f"""\
exit codes:
  0  the report was written (whatever it shows); with clusters: in the spec, a cluster that
     could not be read gives its code below even though the page was written
  {EXIT_FAILED}  a Ceph command failed or was refused (permission denied), or a file could
     not be written
  {EXIT_BAD_INPUT}  bad input: invalid spec, arguments or verify report
""" + CLUSTER_EXIT_CODES


class BadInput(CephstackError):
    exit_code = EXIT_BAD_INPUT
    kind = "invalid-arguments"


def _verify_report(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise BadInput(f"cannot read the verify report {path}: {e}",
                       hint="cephstack verify --output json > FILE writes one") from None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise BadInput(f"{path} is not a verify report (no steps)",
                       hint="cephstack verify --output json > FILE writes one")
    return data


def _volume_snapshots(facts, status) -> dict[str, list[str]]:
    """Snapshot names of the Cinder volumes status opened, as the audit takes them."""
    cinder = {p.name for p in status.pools if "cinder-volume" in p.services}
    return {f"{pool}/{image.name}": list(image.snapshots)
            for pool, found in facts.pools.items() if pool in cinder
            for image in found.scanned if image.name.startswith("volume-")}


def generated() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %z")


def observe_cluster(args: argparse.Namespace, spec, conn):
    """Observe one cluster (as plan does, given a spec) and read its status: (state, facts,
    status)."""
    started = time.monotonic()
    state = observe_for(conn, spec) if spec is not None else None
    return read(args, spec, conn, state, started)


def page_parts(spec, state, facts, status, access) -> dict[str, Any]:
    """One cluster's part of the page besides verify (htmlreport.cluster_body's arguments):
    its status, plan (keys masked), audit findings and access picture."""
    from cephstack.adopt.audit import audit
    from cephstack.report.views import plan_json

    plan = plan_for(spec, state) if spec is not None else None
    findings = audit(state, spec, state.keyring_files, _volume_snapshots(facts, status))
    return {"status": status, "plan": plan_json(plan) if plan is not None else None,
            "findings": findings, "access": access}


def cmd_report(args: argparse.Namespace) -> int:
    from cephstack.adopt.access import access_svg, build_access
    from cephstack.safefiles import write_atomic

    if not (args.html or args.svg):
        raise BadInput("nothing to write", hint="give --html FILE and/or --svg FILE")
    spec = load_spec_of(args) if args.spec else None
    verify = _verify_report(args.verify) if args.verify else None
    if spec is not None and spec.clusters:  # every cluster at once, a section each
        from cephstack.report.multi import report_clusters

        return report_clusters(args, spec, verify)
    written = []
    if args.html is None and spec is not None:
        # The access picture alone comes from the spec's compiled caps: no cluster needed.
        access = build_access(spec, None, verify)
        write_atomic(args.svg, access_svg(access), 0o644, dir_mode=0o755)
        return _done(args, [args.svg], None)
    with connect(args, spec) as conn:
        state, facts, status = observe_cluster(args, spec, conn)
    access = build_access(spec, state, verify)
    if args.html:
        from cephstack.report.html import html_report

        page = html_report(generated=generated(), fsid=state.fsid, spec_path=args.spec,
                           verify=verify, verify_source=args.verify,
                           **page_parts(spec, state, facts, status, access))
        write_atomic(args.html, page, 0o644, dir_mode=0o755)
        written.append(args.html)
    if args.svg:
        write_atomic(args.svg, access_svg(access), 0o644, dir_mode=0o755)
        written.append(args.svg)
    return _done(args, written, status)


def _done(args: argparse.Namespace, written: list[str], status) -> int:
    if args.output == "json":
        print_out(json.dumps({"format_version": "1", "written": written,
                              "pools": len(status.pools) if status else None}))
    else:
        print_out("\n".join(f"Wrote {w}" for w in written))
    return 0


def register(sub, fmt) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page: plan, audit, verify, "
                       "status, access", formatter_class=fmt, epilog=REPORT_EXIT_CODES,
                       description="Observe the cluster once, then write one HTML page (inline "
                       "CSS and SVG, nothing fetched, printable) with the plan (given a spec), "
                       "the audit findings, the results of a verify run (--verify FILE from "
                       "`cephstack verify --output json`), the status of every pool and the "
                       "access picture: each cephx user -> pool -> what it may do, who holds "
                       "its key, and verify's least-privilege results. --svg writes the access "
                       "picture alone (from the spec's compiled caps, without the cluster, "
                       "when --html is not given). Keys never appear. Changes nothing in the "
                       "cluster. A spec with clusters: is read on every cluster at once and "
                       "gives one page: an overview, a section per cluster (one that cannot "
                       "be read shows its error, the page is still written, and the exit code "
                       "is then that cluster's), and, with --verify from `cephstack verify -f "
                       "SPEC --output json`, the checks across clusters; --svg stacks each "
                       "cluster's picture under its name.")
    add_cluster(p, spec_default=None)
    p.add_argument("--html", metavar="FILE", help="write the HTML report here (mode 0644)")
    p.add_argument("--svg", metavar="FILE", help="write the access picture as SVG here")
    p.add_argument("--verify", metavar="FILE",
                   help="a verify report (cephstack verify --output json > FILE) to include "
                   "and to mark least privilege with")
    add_max_images(p)
    add_output(p)
    p.set_defaults(func=cmd_report)
