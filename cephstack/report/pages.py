"""The report page and access picture of every cluster: one cluster's page as it always
was (report/html.py's html_report); several in ONE self-contained page: an overview (each
cluster read or its error, plan changes, findings, pools, verify), a section per cluster
with the one-cluster content (html.cluster_body under a heading naming the cluster), and
the checks verify ran across clusters in a section of their own. Pure: data in, HTML out.

Keys never appear: the page is built from the same masked views as the one-cluster page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cephstack import FORMAT_VERSION
from cephstack.adopt.access import AccessPicture, access_svg, build_access
from cephstack.errors import BadArguments, error_json
from cephstack.report.html import html_text
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.spec.fleet import split
from cephstack.spec.load import Spec

_CSS = ("h4{font-size:14px;margin:12px 0 4px}"
        "section.cluster>h2{font-size:20px;background:#f6f8fa;border:1px solid #d0d7de;"
        "padding:6px 8px;margin-top:40px}"
        "@media print{section.cluster{break-before:page}}")


@dataclass
class ClusterPage:
    """What one cluster's section shows (once read): its fsid and cluster_body's parts."""

    fsid: str
    parts: dict[str, Any]  # status, plan, findings, access (page_parts)


@dataclass
class FleetPages:
    """name -> page part of each cluster read (the others' errors are in `fleet`);
    `named`: a spec with clusters: (a section per cluster), else one cluster's page."""

    fleet: Fleet
    pages: dict[str, ClusterPage]
    named: bool


# -- the verify report across clusters ---------------------------------------------------


def check_verify(doc: dict[str, Any], path: str, spec: Spec) -> None:
    """A report of `cephstack verify -f <this spec>`: a document per cluster under
    "clusters" (report/verifyviews.py's fleet_json), at least one of them a cluster of the spec."""
    found = doc.get("clusters")
    hint = f"cephstack verify -f {spec.path} --output json > FILE writes one"
    if not isinstance(found, dict):
        raise BadArguments(f"{path} is a verify report of one cluster; the spec {spec.path} has "
                       f"several ({', '.join(spec.clusters)})", hint=hint)
    if not set(found) & set(spec.clusters):
        raise BadArguments(f"{path} covers cluster(s) {', '.join(found) or '(none)'}, none of "
                       f"the spec's ({', '.join(spec.clusters)})", hint=hint)


def split_verify(doc: dict[str, Any], clusters: list[str]
                 ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The report split for the page: cluster -> its own report (its steps with the
    cluster's name taken off their service: its section names it), and the checks across
    clusters as one report (their steps keep where they ran: `central->edge1/...`). A
    cluster the report does not cover has no entry; one that verify could not reach has
    its error and no steps."""
    found = doc.get("clusters") or {}
    own: dict[str, dict[str, Any]] = {}
    for name in clusters:
        part = found.get(name)
        if not isinstance(part, dict):
            continue
        prefix = f"{name}/"
        steps = [{**s, "service": str(s.get("service", "")).removeprefix(prefix)}
                 for s in part.get("steps", []) if isinstance(s, dict)]
        own[name] = {**part, "steps": steps, "ran": "steps" in part}
    across = doc.get("across") or {}
    steps = [s for s in across.get("steps", []) if isinstance(s, dict)]
    errors = across.get("errors") or {}
    return own, {"run_id": across.get("run_id"), "steps": steps, "errors": errors,
                 "passed": not errors and all(s.get("result") != "fail" for s in steps)}


def verify_by_cluster(verify: dict[str, Any] | None, names: list[str], named: bool
                      ) -> dict[str, dict[str, Any]]:
    """Each cluster's own verify report: several clusters' split (split_verify), one
    cluster's the report itself."""
    if not verify:
        return {}
    return split_verify(verify, names)[0] if named else {names[0]: verify}


# -- the page ----------------------------------------------------------------------------


def _anchor(name: str) -> str:
    """The id of a cluster's section; its sections' ids are this + "/" + the one-cluster
    id ("/" is not in a cluster's name, so no two clusters' ids can meet)."""
    return f"cluster-{name}"


def _overview_row(name: str, run: ClusterRun, page: ClusterPage | None,
                  verify: dict[str, Any] | None, given: bool) -> list[str]:
    cells = [f'<a href="#{html_text(_anchor(name))}">{html_text(name)}</a>',
             f"<code>{html_text(run.spec.cluster.conf)}</code>"]
    if page is None:
        message = html_text(str(run.error).splitlines()[0] if run.error else "not read")
        return [*cells, f'<span class="bad">error: {message}</span>', "-", "-", "-",
                _verify_cell(verify, given)]
    plan, findings = page.parts["plan"], page.parts["findings"]
    changes = len(plan["actions"])
    plan_cell = (f'<span class="bad">refused ({len(plan["refusals"])})</span>'
                 if plan["refusals"] else f"{changes} change(s)" if changes else "no changes")
    errors = sum(f.severity == "error" for f in findings)
    audit_cell = ('<span class="good">clean</span>' if not findings else
                  f'<span class="{"bad" if errors else "warn"}">{errors} error(s), '
                  f"{len(findings) - errors} warning(s)</span>")
    return [*cells, '<span class="good">yes</span>', plan_cell, audit_cell,
            str(len(page.parts["status"].pools)), _verify_cell(verify, given)]


def _verify_cell(verify: dict[str, Any] | None, given: bool) -> str:
    if not given:
        return '<span class="muted">no report given</span>'
    if verify is None:
        return '<span class="muted">not in the report</span>'
    steps = verify["steps"]
    if not verify["ran"]:
        return '<span class="bad">could not run</span>'
    failed = sum(s.get("result") == "fail" for s in steps)
    if verify.get("passed"):
        return f'<span class="good">passed ({len(steps)} steps)</span>'
    return f'<span class="bad">FAILED ({failed} of {len(steps)} steps)</span>'


def _overview(multi: Fleet, pages: dict[str, ClusterPage],
              verify: dict[str, dict[str, Any]], across: dict[str, Any] | None) -> str:
    from cephstack.report.html import table

    failed = [r.name for r in multi.failed]
    head = (f"{len(multi.runs)} clusters, all read." if not failed else
            f'{len(multi.runs)} clusters: <span class="bad">not read: '
            f"{html_text(', '.join(failed))}</span> (each section shows its error).")
    rows = [_overview_row(name, run, pages.get(name), verify.get(name), across is not None)
            for name, run in multi.runs.items()]
    out = ['<section id="overview"><h2>Overview</h2>', f"<p>{head}</p>",
           table("overview-clusters", ["cluster", "conf", "read", "plan", "audit", "pools",
                                       "verify"], rows, {5})]
    if across is not None:
        verdict = (f'<span class="good">passed ({len(across["steps"])} steps)</span>'
                   if across["passed"] else '<span class="bad">FAILED</span>')
        out.append(f'<p><a href="#across">Checks across clusters</a>: '
                   f'{verdict if across["steps"] or across["errors"] else "none in the report"}'
                   ".</p>")
    out.append("</section>")
    return "".join(out)


def _cluster_section(name: str, run: ClusterRun, page: ClusterPage | None,
                     verify: dict[str, Any] | None, source: str | None) -> str:
    from cephstack.report.html import Place, cluster_body

    out = [f'<section class="cluster" id="{html_text(_anchor(name))}">'
           f"<h2>cluster {html_text(name)}</h2>"]
    if page is None:
        hint = getattr(run.error, "hint", None)
        out.append(f'<p class="bad">Could not be read: {html_text(str(run.error))}</p>'
                   + (f'<p class="muted">Hint: {html_text(hint)}</p>' if hint else "")
                   + '<p class="muted">Nothing else of this cluster is shown; the other '
                   "clusters are.</p></section>")
        return "".join(out)
    out.append(f'<p class="meta">conf <code>{html_text(run.spec.cluster.conf)}</code>, fsid '
               f"<code>{html_text(page.fsid)}</code></p>")
    absent = None
    if source is not None and verify is None:
        absent = f"The verify report <code>{html_text(source)}</code> has no steps of this cluster."
    elif verify is not None and not verify["ran"]:
        message = (verify.get("error") or {}).get("message") or "no steps"
        absent = (f'<span class="bad">Verify could not run on this cluster: '
                  f"{html_text(str(message))}</span>")
        verify = None
    out.append(cluster_body(**page.parts, verify=verify, verify_source=source,
                            at=Place(f"{_anchor(name)}/", 3), no_verify=absent))
    out.append("</section>")
    return "".join(out)


def _across(across: dict[str, Any], source: str) -> str:
    from cephstack.report.html import Place, verify_section

    out = ['<section class="cluster" id="across"><h2>Across clusters</h2>']
    out += [f'<p class="bad">{html_text(name)}: {html_text(str((e or {}).get("message")))}</p>'
            for name, e in across["errors"].items()]
    absent = ("No checks across clusters in this report (none apply to the spec, or "
              "<code>--only</code> left them out).") if not across["steps"] else None
    out.append(verify_section(across if across["steps"] else None, source,
                              Place("across/", 3), absent))
    out.append("</section>")
    return "".join(out)


def clusters_html(*, generated: str, spec: Spec, multi: Fleet,
                  pages: dict[str, ClusterPage], verify: dict[str, Any] | None,
                  verify_source: str | None) -> str:
    """The whole page (pure: data in, HTML out). `verify`: the report across clusters as
    `cephstack verify --output json` wrote it."""
    from cephstack.report.html import page

    own, across = split_verify(verify, list(multi.runs)) if verify else ({}, None)
    main = [_overview(multi, pages, own, across)]
    main += [_cluster_section(name, run, pages.get(name), own.get(name), verify_source)
             for name, run in multi.runs.items()]
    nav = [("overview", "Overview"), *((_anchor(n), n) for n in multi.runs)]
    if across is not None:
        main.append(_across(across, verify_source or ""))
        nav.append(("across", "Across clusters"))
    return page(title=f"cephstack report: {len(multi.runs)} clusters "
                f"({', '.join(multi.runs)})", generated=generated, spec_path=spec.path,
                nav=nav, main="".join(main), css=_CSS)


def fleet_html(found: FleetPages, *, generated: str, spec: Spec | None,
               spec_path: str | None, verify: dict[str, Any] | None,
               verify_source: str | None) -> str:
    """One cluster: its page (html_report). Several: clusters_html."""
    if not found.named:
        from cephstack.report.html import html_report

        page = next(iter(found.pages.values()))
        return html_report(generated=generated, fsid=page.fsid, spec_path=spec_path,
                           verify=verify, verify_source=verify_source, **page.parts)
    assert spec is not None, "several clusters come from a spec"
    return clusters_html(generated=generated, spec=spec, multi=found.fleet, pages=found.pages,
                         verify=verify, verify_source=verify_source)


# -- the access picture of every cluster -------------------------------------------------

_SIZE = re.compile(r'<svg[^>]* width="(\d+)" height="(\d+)"')
_HEADING = 36  # room above each cluster's picture for its name


def clusters_svg(pictures: dict[str, AccessPicture]) -> str:
    """One SVG, a group per cluster (its one-cluster picture under its name), stacked.
    Not merged into one graph: a user of the same name on two clusters is two cephx users
    (a key and caps on each), and a pool name can be on both; one box for each would say
    that one key reaches both clusters."""
    groups, y, width = [], 0, 0
    for name, picture in pictures.items():
        inner = access_svg(picture, standalone=False)
        found = _SIZE.match(inner)
        assert found, "access_svg starts with its size"
        w, h = int(found.group(1)), int(found.group(2))
        groups.append(f'<g id="{html_text(_anchor(name))}" transform="translate(0,{y})">'
                      f'<text class="cluster" x="16" y="26">cluster {html_text(name)}</text>'
                      f'<g transform="translate(0,{_HEADING})">{inner}</g></g>')
        y, width = y + _HEADING + h + 16, max(width, w)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
            f'viewBox="0 0 {width} {y}" role="img" aria-label="the cephx users of each '
            'cluster, the pools they reach and the hosts holding their keys">'
            "<style>.cluster{font:bold 16px sans-serif;fill:#1b1f24}</style>\n"
            + "\n".join(groups) + "\n</svg>\n")


def spec_pictures(spec: Spec, verify: dict[str, dict[str, Any]]) -> dict[str, AccessPicture]:
    """Each cluster's picture from its compiled caps (no cluster needed, as one cluster's
    --svg alone), marked with its own verify steps."""
    return {name: build_access(part, None, verify.get(name))
            for name, part in split(spec).items()}


def fleet_svg(pictures: dict[str, AccessPicture], named: bool) -> str:
    """One cluster: its picture (access_svg). Several: clusters_svg."""
    return clusters_svg(pictures) if named else access_svg(next(iter(pictures.values())))


# -- what the command prints -------------------------------------------------------------


def result_json(spec: Spec, written: list[str], multi: Fleet | None,
                pages: dict[str, ClusterPage]) -> dict[str, Any]:
    """{"written": [...], "clusters": {name: {"pools": N, "error": ...}}, "failed": [...]}
    (pools None when not read: --svg alone reads no cluster)."""
    errors = {r.name: r.error for r in multi.failed} if multi is not None else {}
    return {"format_version": FORMAT_VERSION, "written": written,
            "clusters": {name: {"pools": len(pages[name].parts["status"].pools)
                                if name in pages else None,
                                "error": error_json(errors[name]) if name in errors else None}
                         for name in spec.clusters},
            "failed": list(errors)}
