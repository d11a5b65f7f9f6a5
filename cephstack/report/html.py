"""`cephstack report --html`: one self-contained page (inline CSS and SVG, nothing fetched)
with the plan, the audit findings, the last verify results, the status of every pool and
the access picture. Readable on a laptop, printable (print styles). Keys never appear:
the page is built from the views that mask them (plan_json, status, access), and every
text is escaped, and shown printable (cephstack.text: a name may hold ESC, which no XML
may). Pure: data in, HTML text out. A page of several clusters (cephstack/report/pages.py)
puts cluster_body under each cluster's heading in the same page.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from cephstack.adopt.access import ADMIN, KEYS, AccessPicture, access_svg, refused
from cephstack.adopt.audit import Finding
from cephstack.day2.status import Status
from cephstack.report.statusviews import COLUMNS, pool_row, status_notes
from cephstack.text import printable_lines

_CSS = """
:root{color-scheme:light}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;
 margin:24px auto;max-width:1240px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:18px;border-bottom:1px solid #d0d7de;padding-bottom:4px;margin:32px 0 8px}
h3{font-size:15px;margin:16px 0 4px}
p.meta{color:#57606a;margin:0 0 12px}
nav{margin:12px 0;padding:8px 0;border-top:1px solid #d0d7de;border-bottom:1px solid #d0d7de}
nav a{margin-right:14px;color:#0550ae;text-decoration:none}
.wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13px}
th,td{border:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.bad{color:#b42318;font-weight:600}.warn{color:#9a6700;font-weight:600}.good{color:#1a7f37}
.muted{color:#57606a}
ul.notes{margin:4px 0 8px 18px;padding:0}
svg{max-width:100%;height:auto;border:1px solid #d0d7de;background:#fff}
@media print{
 body{margin:0;max-width:none;font-size:10.5px;padding:0}
 nav{display:none}
 h2{break-after:avoid;margin-top:18px}
 tr,svg,li{break-inside:avoid}
 .wrap{overflow:visible}
 table{font-size:9.5px}
 a{color:inherit;text-decoration:none}
 section{break-before:auto}
}
"""

_SECTIONS = ("status", "plan", "audit", "verify", "access")  # ids, in the page's order
_SOURCES = {"spec": "compiled caps of the spec", "cluster": "caps the cluster has (no spec)"}
_NUMERIC = {"STORED", "MAX AVAIL", "FULL", "IMAGES", "SNAPS", "CLONES", "TRASH", "WATCHED",
            "LOCKS", "STALE"}


@dataclass(frozen=True)
class Place:
    """Where one cluster's sections sit: alone, the page itself (ids as they are, h2); in
    a page of several clusters, under the cluster's heading (ids prefixed, one level down)."""

    prefix: str = ""
    level: int = 2

    def id(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def h(self, text: str, below: int = 0) -> str:
        """A heading `below` levels under the sections' own."""
        return f"<h{self.level + below}>{text}</h{self.level + below}>"


def html_text(value: object) -> str:
    """`value` as HTML (and SVG) text: markup escaped, control characters shown as escapes
    (line breaks kept: an error and its hint)."""
    return escape(printable_lines("" if value is None else value))


_e = html_text


def table(table_id: str, head: list[str], rows: list[list[str]],
          numeric: set[int] | frozenset[int] = frozenset()) -> str:
    """Cells are HTML already (escaped by the caller)."""
    out = [f'<div class="wrap"><table id="{table_id}"><thead><tr>']
    out += [f"<th>{_e(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _status(status: Status, at: Place) -> str:
    from cephstack.report.views import health_line

    out = [f'<section id="{at.id("status")}">{at.h("Status")}',
           f"<p>{_e(health_line(status.health)) if status.health else 'health not observed'}"
           "</p>"]
    numeric = {i for i, c in enumerate(COLUMNS) if c in _NUMERIC}
    rows = []
    for p in status.pools:
        cells = [escape(c) for c in pool_row(p)]  # printable already
        if p.stale_locks:
            cells[COLUMNS.index("STALE")] = f'<span class="bad">{cells[COLUMNS.index("STALE")]}' \
                                            "</span>"
        if p.fill_ratio >= 0.85 or (p.quota_bytes_ratio or 0) >= 0.85:
            cells[COLUMNS.index("FULL")] = f'<span class="bad">{cells[COLUMNS.index("FULL")]}' \
                                           "</span>"
        rows.append(cells)
    out.append(table(at.id("status-pools"), list(COLUMNS), rows, numeric))
    notes = status_notes(status)
    if notes:
        out.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes)
                   + "</ul>")
    out.append(f'<p class="muted">Read in {status.seconds:.1f} s: {status.mon_commands} mon '
               f"commands, {status.images_opened} images opened (at most "
               f"{status.max_images}). FULL: stored / (stored + max_avail).</p></section>")
    return "".join(out)


def _plan(plan: dict[str, Any] | None, at: Place) -> str:
    out = [f'<section id="{at.id("plan")}">{at.h("Plan")}']
    if plan is None:
        out.append('<p class="muted">No spec given (-f): no plan.</p>'
                   f'<table id="{at.id("plan-actions")}"></table></section>')
        return "".join(out)
    out.append(f"<p><strong>{_e(plan['summary'])}</strong></p>")
    rows = []
    for a in plan["actions"]:
        changes = "<br>".join(
            f"<code>{_e(c['field'])}</code>: {_e(c['before'])} &rarr; {_e(c['after'])}"
            + (f' <span class="muted">({_e(c["why"])})</span>' if c.get("why") else "")
            for c in a["changes"])
        rows.append([f"<code>{_e(a['symbol'])}</code>", f"<code>{_e(a['address'])}</code>",
                     '<span class="bad">yes</span>' if a["disruptive"] else "no", changes])
    out.append(table(at.id("plan-actions"), ["", "what", "disruptive", "changes"],
                     rows or [["", '<span class="muted">nothing to change</span>', "", ""]]))
    for label, items in (("Refused", plan.get("refusals", [])), ("Note", plan.get("notes", []))):
        out += [f'<p class="{"bad" if label == "Refused" else "muted"}">{label}: {_e(i)}</p>'
                for i in items]
    unmanaged = plan.get("unmanaged", {})
    if unmanaged.get("pools") or unmanaged.get("clients"):
        out.append(f'<p class="muted">Not in the spec, left alone: pools '
                   f'{_e(", ".join(unmanaged.get("pools", [])) or "-")}; clients '
                   f'{_e(", ".join(unmanaged.get("clients", [])) or "-")}</p>')
    out.append("</section>")
    return "".join(out)


def _audit(findings: list[Finding], at: Place) -> str:
    out = [f'<section id="{at.id("audit")}">{at.h("Audit")}']
    errors = sum(f.severity == "error" for f in findings)
    out.append(f"<p>{'Clean: no findings.' if not findings else ''}"
               f"{f'{errors} error(s), {len(findings) - errors} warning(s).' if findings else ''}"
               "</p>")
    rows = [[f'<span class="{"bad" if f.severity == "error" else "warn"}">{_e(f.severity)}'
             "</span>", f"<code>{_e(f.id)}</code>", _e(f.entity), _e(f.what), _e(f.breaks),
             _e(f.fix)] for f in findings]
    out.append(table(at.id("audit-findings"), ["severity", "finding", "entity", "what",
                                               "breaks", "fix"],
                     rows or [["", '<span class="muted">no findings</span>', "", "", "", ""]]))
    out.append("</section>")
    return "".join(out)


def verify_section(verify: dict[str, Any] | None, source: str | None, at: Place = Place(),
                   absent: str | None = None) -> str:
    """`absent`: what to say instead when `verify` is None (HTML: escaped by the caller)."""
    out = [f'<section id="{at.id("verify")}">{at.h("Verify")}']
    if verify is None and absent is not None:
        out.append(f'<p class="muted">{absent}</p><table id="{at.id("verify-steps")}"></table>'
                   "</section>")
        return "".join(out)
    if verify is None:
        out.append('<p class="muted">No verify report given: <code>cephstack verify --output '
                   'json &gt; verify.json</code>, then <code>cephstack report --verify '
                   f'verify.json</code>.</p><table id="{at.id("verify-steps")}"></table>'
                   "</section>")
        return "".join(out)
    steps = verify.get("steps", [])
    counts = {r: sum(s.get("result") == r for s in steps) for r in ("pass", "fail", "skip")}
    verdict = ('<span class="good">passed</span>' if verify.get("passed")
               else '<span class="bad">FAILED</span>')
    takeover = verify.get("takeover_seconds")
    out.append(f"<p>Run <code>{_e(verify.get('run_id'))}</code> ({_e(source)}): {verdict}, "
               f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"
               + (f"; evacuate takeover {float(takeover):.1f} s" if takeover is not None
                  else "") + ".</p>")
    if verify.get("error"):
        out.append(f'<p class="bad">Stopped early: {_e(verify["error"].get("message"))}</p>')
    rows = []
    for s in steps:
        result = str(s.get("result", ""))
        cls = {"pass": "good", "fail": "bad"}.get(result, "muted")
        text = s.get("detail") or ""
        if result == "fail":
            text = "; ".join(str(s[k]) for k in ("error", "cause", "fix") if s.get(k))
        rows.append([_e(s.get("service")), _e(s.get("name")),
                     f'<span class="{cls}">{_e(result.upper())}</span>',
                     _e(f"{float(s.get('seconds', 0)):.2f}"), _e(text)])
    out.append(table(at.id("verify-steps"), ["service", "step", "result", "seconds", "detail"],
                     rows, {3}))
    out.append("</section>")
    return "".join(out)


def _mark_html(marks: tuple) -> str:
    if not marks:
        return ""
    ok, ran = refused(marks)
    if ran == 0:
        return ' <span class="muted">(not checked)</span>'
    if ok == ran:
        return f' <span class="good">&#10003; refused ({ok}/{ran})</span>'
    failed = "; ".join(m.check for m in marks if m.result == "fail")
    return f' <span class="bad">&#10007; allowed: {_e(failed)}</span>'


def _access(picture: AccessPicture, at: Place) -> str:
    out = [f'<section id="{at.id("access")}">{at.h("Access")}',
           f"<p>From the {_SOURCES[picture.source]}: r read, w write, x class methods (RBD "
           "opens images with them). "
           + ("Marks: verify's least-privilege checks of run "
              f"<code>{_e(picture.verify_run)}</code>." if picture.verify_run
              else "No verify report: least privilege not marked.") + "</p>"]
    head = ["user", "services", "hosts holding the key", *picture.pools, "blocklist",
            "reads other keys", "pool admin / caps"]
    rows = []
    for u in picture.users:
        cells = [f"<code>{_e(u.entity)}</code>", _e(", ".join(u.services) or "-"),
                 _e(", ".join(u.hosts) or "-")]
        for p in picture.pools:
            flags = u.cells[p].flags
            cls = "bad" if flags and any(m.result == "fail" for m in u.marks.get(p, ())) else ""
            cells.append((f'<strong class="{cls}">{_e(flags)}</strong>' if flags else
                          '<span class="muted">-</span>') + _mark_html(u.marks.get(p, ())))
        cells.append('<span class="good">yes</span>' if u.blocklist
                     else '<span class="bad">no: evacuate hangs</span>')
        cells.append(('<span class="bad">yes</span>' if u.read_keys else "no")
                     + _mark_html(u.marks.get(KEYS, ())))
        flow = (f' <span class="muted">workflows {u.workflows[0]}/{u.workflows[1]} passed'
                "</span>") if u.workflows else ""
        cells.append((_mark_html(u.marks.get(ADMIN, ())).strip() or '<span class="muted">-'
                       "</span>") + flow)
        rows.append(cells)
    out.append(table(at.id("access-matrix"), head, rows))
    caps_rows = [[f"<code>{_e(u.entity)}</code>",
                  "<br>".join(f"{_e(t)} <code>{_e(c)}</code>" for t, c in u.caps.items())]
                 for u in picture.users]
    out.append(at.h("Caps", 1) + table(at.id("access-caps"), ["user", "caps"], caps_rows))
    out.append(f'<div id="{at.id("access-graph")}">{access_svg(picture, standalone=False)}'
               "</div>")
    out.append("</section>")
    return "".join(out)


def cluster_body(*, status: Status, plan: dict[str, Any] | None, findings: list[Finding],
                 verify: dict[str, Any] | None, verify_source: str | None,
                 access: AccessPicture, at: Place = Place(),
                 no_verify: str | None = None) -> str:
    """One cluster's sections: status, plan, audit, verify, access (`no_verify`: what the
    verify section says when `verify` is None, as verify_section's `absent`)."""
    return "".join([_status(status, at), _plan(plan, at), _audit(findings, at),
                    verify_section(verify, verify_source, at, no_verify), _access(access, at)])


def page(*, title: str, generated: str, spec_path: str | None, nav: list[tuple[str, str]],
         main: str, css: str = "") -> str:
    """The page around `main` (HTML): head with the inline styles (`css` after them), title,
    when and from what it was made, the links (`nav`: (id, label)), the footer."""
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}{css}</style></head><body>",
        f"<header><h1>{_e(title)}</h1>",
        f'<p class="meta">Generated {_e(generated)}'
        + (f" from spec <code>{_e(spec_path)}</code>" if spec_path else " without a spec")
        + "</p></header>",
        "<nav>" + "".join(f'<a href="#{_e(i)}">{_e(label)}</a>' for i, label in nav) + "</nav>",
        "<main>", main, "</main>",
        '<footer><p class="muted">cephstack report. Keys never appear in this page.</p>'
        "</footer></body></html>\n",
    ])


def html_report(*, generated: str, fsid: str, spec_path: str | None, status: Status,
                plan: dict[str, Any] | None, findings: list[Finding],
                verify: dict[str, Any] | None, verify_source: str | None,
                access: AccessPicture) -> str:
    """The whole page. `plan` as report.plan_json gives it (keys masked)."""
    return page(title=f"cephstack report: cluster {fsid}", generated=generated,
                spec_path=spec_path, nav=[(s, s.title()) for s in _SECTIONS],
                main=cluster_body(status=status, plan=plan, findings=findings, verify=verify,
                                  verify_source=verify_source, access=access))
