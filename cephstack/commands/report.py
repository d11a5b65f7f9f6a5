"""report: one self-contained HTML page (plan, audit, verify, status, access), and the
access picture as SVG."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from cephstack import FORMAT_VERSION
from cephstack.commands.common import (
    CLUSTER_EXIT_CODES,
    add_cluster,
    add_output,
    load_spec_of,
    print_out,
    settings_of,
)
from cephstack.commands.status import add_max_images
from cephstack.errors import EXIT_BAD_INPUT, EXIT_FAILED
from cephstack.errors import BadArguments as BadInput

REPORT_EXIT_CODES = f"""\
exit codes:
  0  the report was written (whatever it shows); with clusters: in the spec, a cluster that
     could not be read gives its code below even though the page was written
  {EXIT_FAILED}  a Ceph command failed or was refused (permission denied), or a file could
     not be written
  {EXIT_BAD_INPUT}  bad input: invalid spec, arguments or verify report
""" + CLUSTER_EXIT_CODES


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


def generated() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %z")


def cmd_report(args: argparse.Namespace) -> int:
    """Every cluster of the spec observed and read at once, then one page (one cluster:
    as it always was; several: an overview and a section each) and/or the access picture."""
    from cephstack.day2.status_read import fleet_of
    from cephstack.report.gather import read_pages
    from cephstack.report.pages import (
        check_verify,
        fleet_html,
        fleet_svg,
        spec_pictures,
        verify_by_cluster,
    )
    from cephstack.safefiles import write_atomic
    from cephstack.session.fleet import refuse_overrides

    if not (args.html or args.svg):
        raise BadInput("nothing to write", hint="give --html FILE and/or --svg FILE")
    spec = load_spec_of(args) if args.spec else None
    verify = _verify_report(args.verify) if args.verify else None
    clusters, named = fleet_of(spec)
    settings = settings_of(args)
    if named:
        refuse_overrides(settings, spec)  # --conf & co. with several clusters
        if verify is not None:
            check_verify(verify, args.verify, spec)
    own = verify_by_cluster(verify, list(clusters.runs), named)
    if args.html is None and spec is not None:
        # The access picture alone comes from the spec's compiled caps: no cluster needed.
        write_atomic(args.svg, fleet_svg(spec_pictures(spec, own), named), 0o644,
                     dir_mode=0o755)
        return _done(args, spec, [args.svg], None, named)
    found = read_pages(settings, spec, args.max_images, own, _progress(args))
    written = []
    if args.html:
        write_atomic(args.html, fleet_html(found, generated=generated(), spec=spec,
                                           spec_path=args.spec, verify=verify,
                                           verify_source=args.verify), 0o644, dir_mode=0o755)
        written.append(args.html)
    if args.svg:
        pictures = spec_pictures(spec, own) if spec is not None else {
            name: page.parts["access"] for name, page in found.pages.items()}
        write_atomic(args.svg, fleet_svg(pictures, named), 0o644, dir_mode=0o755)
        written.append(args.svg)
    return _done(args, spec, written, found, named)


def _progress(args: argparse.Namespace):
    from cephstack.commands.fleetoutput import progress_printer

    return lambda name, line: progress_printer(args.output == "json", name)(line)


def _done(args: argparse.Namespace, spec, written: list[str], found, named: bool) -> int:
    """What was written; with several clusters, each one's pools or error (and each error
    in full on stderr: the page shows it too); the exit code."""
    from cephstack.report.pages import result_json

    if args.output == "json":
        if named:
            doc = result_json(spec, written, found.fleet if found else None,
                              found.pages if found else {})
        else:
            page = next(iter(found.pages.values())) if found else None
            doc = {"format_version": FORMAT_VERSION, "written": written,
                   "pools": len(page.parts["status"].pools) if page else None}
        print_out(json.dumps(doc))
    else:
        print_out("\n".join(f"Wrote {w}" for w in written))
    if found is None or not named:
        return 0
    from cephstack.commands.fleetoutput import report_failures

    report_failures(found.fleet, as_json=True)
    return found.fleet.exit_code()


def register(sub, fmt) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page: plan, audit, verify, "
                       "status, access", formatter_class=fmt, epilog=REPORT_EXIT_CODES + (
                           "\nexamples:\n"
                           "  cephstack report -f cephstack.yaml --html report.html\n"
                           "  cephstack report --html out.html --verify verify.json\n"
                           "  cephstack report -f cephstack.yaml --svg access.svg\n"),
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
