"""The reporter's own HTML and SVG: dashboard, function pages, version diffs, quarantine, daily roll-up, files
without source, badges, and the navigation added to coverage.py's pages. Every value is escaped."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable
from datetime import date as calendar_date
from typing import Any
from urllib.parse import quote

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328;background:#fff}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem}
.meta,.note{color:#59636e;font-size:.9rem}.note{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem .75rem;
border-radius:6px;color:#1f2328}table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #d1d9e0;vertical-align:middle}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;width:80px;height:8px;background:#eee;border-radius:4px;margin-left:.4rem;vertical-align:middle}
.bar span{display:block;height:8px;border-radius:4px}.muted{color:#8c959f}a{color:#0969da}
code{font-size:.85rem}code,.nowrap{white-space:nowrap}.wrap code{white-space:normal;word-break:break-all}
h3{font-size:1rem;margin:1.25rem 0 .35rem}.scroll{overflow-x:auto}nav.top{margin-bottom:1rem}
table.lines td:last-child code{white-space:pre}
p code,h1 code{white-space:normal;overflow-wrap:anywhere}h1 code,h2 code{font-size:inherit}
table.lines th:first-child{width:7rem}
@media (max-width:600px){body{margin:1rem}}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def href(*segments: str) -> str:
    """A relative link from path segments; `..` and `.` pass through, everything else is percent-encoded."""
    return esc("/".join(s if s in ("..", ".") else quote(str(s), safe="") for s in segments))


def format_percent(percent: Any) -> str:
    if isinstance(percent, (int, float)) and not isinstance(percent, bool):
        return f"{percent:.1f}%"
    return "n/a"


def badge_color(percent: Any) -> str:
    if not isinstance(percent, (int, float)) or isinstance(percent, bool):
        return "#9f9f9f"
    for floor, color in ((90, "#4c1"), (80, "#97ca00"), (70, "#a4a61d"), (60, "#dfb317"), (50, "#fe7d37")):
        if percent >= floor:
            return color
    return "#e05d44"


def _text_width(text: str) -> int:
    return int(len(text) * 6.6 + 10)


def badge_svg(percent: Any, label: str = "coverage") -> str:
    """A shields.io-style flat badge, colored by percent (grey when unknown)."""
    value = f"{percent:.0f}%" if isinstance(percent, (int, float)) and not isinstance(percent, bool) else "n/a"
    left, right = _text_width(label), _text_width(value)
    width = left + right
    color = badge_color(percent)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{esc(label)}: {esc(value)}"><title>{esc(label)}: {esc(value)}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{color}"/><rect width="{width}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2}" y="15" fill="#010101" fill-opacity=".3">{esc(label)}</text>'
        f'<text x="{left / 2}" y="14">{esc(label)}</text>'
        f'<text x="{left + right / 2}" y="15" fill="#010101" fill-opacity=".3">{esc(value)}</text>'
        f'<text x="{left + right / 2}" y="14">{esc(value)}</text></g></svg>\n'
    )


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _percent_cell(percent: Any) -> str:
    width = max(0.0, min(100.0, float(percent))) if format_percent(percent) != "n/a" else 0.0
    return (
        f'<td class="num percent">{esc(format_percent(percent))}'
        f'<span class="bar"><span style="width:{width:.0f}%;background:{badge_color(percent)}"></span></span></td>'
    )


def line_ranges(lines: Iterable[Any]) -> str:
    """[1, 2, 3, 7] → '1-3, 7'."""
    numbers = sorted({n for n in lines if isinstance(n, int) and not isinstance(n, bool)})
    spans: list[str] = []
    start = previous = None
    for number in numbers + [None]:
        if start is not None and (number is None or previous is None or number != previous + 1):
            spans.append(str(start) if start == previous else f"{start}-{previous}")
            start = None
        if number is not None and start is None:
            start = number
        previous = number
    return ", ".join(spans)


def _unavailable_rows(entries: Iterable[dict]) -> str:
    rows = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        executed = line_ranges(entry.get("executed_lines") or [])
        rows.append(
            f"<tr><td><code>{esc(entry.get('path'))}</code></td><td>{esc(entry.get('reason'))}</td>"
            f"<td>{esc(executed) or '<span class=muted>none</span>'}</td></tr>"
        )
    return "\n".join(rows)


def unavailable_page(summary: dict, standalone: bool) -> str:
    """The files of a group whose source is not available, with the lines that ran; the HTML index when no file has source."""
    group = f"{summary.get('function')} {summary.get('version')} on {summary.get('date')}"
    entries = summary.get("unavailable") or []
    if standalone:
        intro = (
            f"<p class=\"note\">No measured file of this code version has source available, so coverage.py's HTML "
            f"report could not be rendered. {esc(summary.get('note') or '')}</p>"
            f'<p><a href="../summary.json">summary.json</a> · <a href="../coverage.json">coverage.json</a></p>'
        )
    else:
        intro = (
            f'<p class="note">{esc(summary.get("note") or "")}</p>'
            '<p><a href="index.html">Back to the coverage report</a></p>'
        )
    body = (
        f"<h1>Files without source</h1><p class=\"meta\">{esc(group)} · {len(entries)} file(s)</p>{intro}"
        "<table class=\"wrap\"><thead><tr><th>File</th><th>Why</th><th>Executed lines</th></tr></thead><tbody>"
        f"{_unavailable_rows(entries)}</tbody></table>"
    )
    return _page(f"Files without source: {group}", body)


def daily_trend(points: Iterable[dict]) -> list[dict]:
    """One point per day: the day's latest data (the newest rendering of any of its code versions), oldest day first."""
    by_date: dict[str, dict] = {}
    for point in points:
        if not isinstance(point.get("percent"), (int, float)) or isinstance(point.get("percent"), bool):
            continue
        current = by_date.get(str(point.get("date")))
        if current is None or str(point.get("generated_at") or "") > str(current.get("generated_at") or ""):
            by_date[str(point.get("date"))] = point
    return [by_date[date] for date in sorted(by_date)]


def _day_number(date: str) -> int:
    return calendar_date.fromisoformat(date).toordinal()


def trend_svg(points: list[dict], width: int = 180, height: int = 36, days: int = 30, large: bool = False) -> str:
    """Percent per day over the last `days` days of the function's data, one dot per day, a dashed line where
    the code version changed; every dot and marker has its date and version as a tooltip."""
    values = daily_trend(points)
    if not values:
        return '<span class="muted">no data</span>'
    last = _day_number(values[-1]["date"])
    values = [p for p in values if last - _day_number(p["date"]) < days]
    top, bottom = (14, 18) if large else (4, 4)
    # The axis runs from the first day shown (at least a week back) to the last, so a few days still spread out.
    span = max(6, last - _day_number(values[0]["date"]))

    def x(point: dict) -> float:
        return 6 + (width - 12) * (span - (last - _day_number(point["date"]))) / span

    def y(point: dict) -> float:
        return top + (height - top - bottom) * (1 - max(0.0, min(100.0, point["percent"])) / 100)

    line = " ".join(f"{x(p):.1f},{y(p):.1f}" for p in values)
    marks = []
    for previous, point in zip(values, values[1:]):
        if point.get("version") != previous.get("version"):
            mark_x = (x(previous) + x(point)) / 2
            label = f"version {point.get('version')} from {point.get('date')}"
            marks.append(
                f'<line class="version-change" x1="{mark_x:.1f}" x2="{mark_x:.1f}" y1="2" y2="{height - 2}" '
                f'stroke="#8250df" stroke-dasharray="3,2"><title>{esc(label)}</title></line>'
            )
            if large:
                marks.append(f'<text x="{mark_x + 3:.1f}" y="11" font-size="10" fill="#8250df">{esc(point.get("version"))}</text>')
    dots = "".join(
        f'<circle cx="{x(p):.1f}" cy="{y(p):.1f}" r="{3.5 if large else 2.5}" fill="{badge_color(p["percent"])}">'
        f"<title>{esc(p.get('date'))} {esc(p.get('version'))}: {esc(format_percent(p['percent']))}</title></circle>"
        for p in values
    )
    first_day = calendar_date.fromordinal(last - span).isoformat()
    axis = (
        f'<text x="6" y="{height - 3}" font-size="10" fill="#59636e">{esc(first_day)}</text>'
        f'<text x="{width - 6}" y="{height - 3}" font-size="10" fill="#59636e" text-anchor="end">{esc(values[-1]["date"])}</text>'
        if large else ""
    )
    label = f"{format_percent(values[0]['percent'])} → {format_percent(values[-1]['percent'])}"
    size = f'width="100%" style="max-width:{width}px"' if large else f'width="{width}" height="{height}"'
    changes = sum(1 for previous, point in zip(values, values[1:]) if point.get("version") != previous.get("version"))
    caption = f"{label} ({len(values)} day{'s' if len(values) != 1 else ''}"
    caption += f", {changes} version change{'s' if changes != 1 else ''})" if changes else ")"
    return (
        f'<svg class="trend" {size} viewBox="0 0 {width} {height}" role="img" aria-label="trend {esc(caption)}">'
        f'<polyline points="{line}" fill="none" stroke="#8c959f" stroke-width="1.5"/>{"".join(marks)}{dots}{axis}</svg>'
        f'{"<br>" if large else " "}<span class="meta">{esc(caption)}</span>'
    )


def _group_base(up: tuple[str, ...], summary: dict) -> tuple[str, ...]:
    return up + ("combined", summary["function"], summary["date"], summary["version"])


def _reports_links(up: tuple[str, ...], summary: dict) -> str:
    base = _group_base(up, summary)
    if not summary.get("rendered", True):
        return '<span class="muted">not rendered yet</span>'
    links = [f'<a class="report" href="{href(*base, "html", "index.html")}">HTML</a>']
    for name, target in (("JSON", "coverage.json"), ("LCOV", "lcov.info"), ("Cobertura", "coverage.xml"), ("summary", "summary.json")):
        links.append(f'<a href="{href(*base, target)}">{name}</a>')
    return " · ".join(links)


def _sources_cell(up: tuple[str, ...], summary: dict) -> str:
    missing = summary.get("files_without_source") or 0
    if not isinstance(missing, int) or missing <= 0:
        return "<td>all available</td>" if summary.get("rendered", True) else "<td></td>"
    link = href(*_group_base(up, summary), "html", "unavailable.html")
    return f'<td class="unavailable"><a href="{link}">{missing} file(s) without source</a></td>'


def _branches(summary: dict) -> str:
    branches = summary.get("branches")
    if not isinstance(branches, dict):
        return '<span class="muted">—</span>'
    return f"{esc(branches.get('covered'))}/{esc(branches.get('total'))}"


def _group_rows(up: tuple[str, ...], summaries: list[dict], with_function: bool = True) -> str:
    rows = []
    for summary in summaries:
        function_cell = f"<td><code>{esc(summary['function'])}</code></td>" if with_function else ""
        rows.append(
            f'<tr class="group" data-function="{esc(summary["function"])}" data-version="{esc(summary["version"])}">{function_cell}'
            f"<td><code>{esc(summary['version'])}</code></td><td class=\"nowrap\">{esc(summary['date'])}</td>"
            f"{_percent_cell(summary.get('percent'))}"
            f"<td class=\"num\">{esc(summary.get('covered', ''))}/{esc(summary.get('statements', ''))}</td>"
            f"<td class=\"num\">{_branches(summary)}</td>"
            f"<td class=\"num\">{esc(summary.get('raw_files') if summary.get('raw_files') is not None else '?')}</td>"
            f"{_sources_cell(up, summary)}<td class=\"nowrap\">{_reports_links(up, summary)}</td></tr>"
        )
    return "\n".join(rows)


_GROUP_HEAD = (
    "<th>Version</th><th>Date</th><th>Coverage</th><th>Lines</th><th>Branches</th><th>Raw files</th>"
    "<th>Sources</th><th>Reports</th>"
)


def _table(table_id: str, head: str, rows: str) -> str:
    return f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


EMPTY_DASHBOARD = (
    "<p class=\"note\" id=\"empty\">No coverage data yet. To get some: attach the coverage layer to a Python Lambda "
    "function (the CDK construct, or <code>AWS_LAMBDA_EXEC_WRAPPER=/opt/coverage-instrument</code>), set "
    "<code>COVERAGE_S3_BUCKET</code> to this bucket, and invoke the function. Raw files are combined and reported "
    "here after the combine window (<code>COMBINE_WINDOW_SECONDS</code>, 15 minutes by default); a deployment test "
    "or <code>make demo</code> locally shows the whole path. Uploads that were refused are listed below.</p>"
)


def _quarantine_section(quarantine: dict) -> str:
    recent = quarantine.get("recent", 0)
    days = quarantine.get("days")
    if not recent:
        return f'<p id="quarantine">No upload was quarantined in the last {esc(days)} days.</p>'
    more = " (the listing was cut short: there may be more)" if quarantine.get("truncated") else ""
    reasons = ", ".join(f"{esc(code)}: {count}" for code, count in sorted((quarantine.get("reasons") or {}).items()))
    return (
        f'<p id="quarantine" class="note"><a href="{href("quarantine.html")}">{esc(recent)} upload(s) quarantined in the '
        f"last {esc(days)} days</a>{esc(more)} · {reasons}</p>"
    )


def dashboard_page(history: dict, quarantine: dict, generated_at: str) -> str:
    """The dashboard at {p}reports/index.html: per function its badge, latest coverage and 30-day trend with
    version changes, its page and latest diff; the latest day's groups; quarantined uploads; daily roll-ups."""
    functions = history.get("functions") or {}
    by_function: dict[str, list[dict]] = {}
    for point in history.get("points", []):
        by_function.setdefault(str(point.get("function")), []).append(point)
    rows: list[str] = []
    latest_groups: list[dict] = []
    for function in sorted(functions):
        entry = functions[function]
        newest = entry.get("latest") or {}
        latest_groups += entry.get("latest_day_groups") or []
        diffs = entry.get("diffs") or []
        diff = diffs[-1] if diffs else None
        diff_cell = (
            f'<a class="diff" href="{href("diff", function, diff["from"], diff["to"] + ".html")}">'
            f'{esc(diff["from"])} → {esc(diff["to"])}</a>' if diff else '<span class="muted">one version</span>'
        )
        rows.append(
            f'<tr class="function" data-function="{esc(function)}"><td><a class="function-page" '
            f'href="{href("functions", function + ".html")}"><code>{esc(function)}</code></a></td>'
            f'<td><img class="badge" src="{href("badges", function + ".svg")}" alt="coverage badge of {esc(function)}" '
            f'height="20"></td>{_percent_cell(newest.get("percent"))}'
            f"<td><code>{esc(newest.get('version', ''))}</code></td><td class=\"nowrap\">{esc(newest.get('date', ''))}</td>"
            f"<td class=\"nowrap\">{trend_svg(by_function.get(function, []))}</td>"
            f"<td class=\"num\">{len(entry.get('versions') or [])}</td><td class=\"nowrap\">{diff_cell}</td></tr>"
        )
    daily = history.get("daily") or []
    day_links = " · ".join(f'<a href="{href("..", "daily", d, "index.html")}">{esc(d)}</a>' for d in daily)
    if functions:
        content = (
            "<h2>Functions</h2>"
            + _table("functions", "<th>Function</th><th>Badge</th><th>Latest coverage</th><th>Version</th><th>Date</th>"
                     "<th>Last 30 days</th><th>Versions</th><th>Latest diff</th>", "\n".join(rows))
            + "<h2>Latest day of each function</h2>"
            + _table("groups", "<th>Function</th>" + _GROUP_HEAD, _group_rows(("..",), latest_groups))
        )
    else:
        content = EMPTY_DASHBOARD
    body = (
        f"<h1>Lambda coverage</h1><p class=\"meta\">{len(functions)} function(s) · generated {esc(generated_at)}</p>"
        f"{content}<h2>Quarantined uploads</h2>{_quarantine_section(quarantine)}"
        f"<h2>Days</h2><p>{day_links or '<span class=muted>none yet</span>'}</p>"
        '<p class="meta">Percentages are coverage.py\'s: statements plus branches where branches were measured. '
        "Files without source are not in the totals. Each function's page has its other days and versions.</p>"
    )
    return _page("Lambda coverage dashboard", body)


def function_page(index: dict, generated_at: str) -> str:
    """A function's page at {p}reports/functions/{function}.html: trend, versions side by side with their diffs,
    and every day group of the last 30 days with its reports."""
    function = index["function"]
    up = ("..",)
    groups = sorted(index.get("groups") or [], key=lambda g: (str(g.get("date")), str(g.get("version"))), reverse=True)
    diffs = {(d.get("from"), d.get("to")): d for d in index.get("diffs") or [] if isinstance(d, dict)}
    versions = index.get("versions") or {}
    ordered = sorted(versions, key=lambda v: (str(versions[v].get("first_seen")), str(versions[v].get("first_recorded")), v))
    version_rows = []
    for position, version in enumerate(reversed(ordered)):
        entry = versions[version]
        latest = entry.get("latest") or {}
        older = ordered[len(ordered) - position - 2] if position < len(ordered) - 1 else None
        diff = diffs.get((older, version))
        if diff and older is not None:
            diff_cell = (
                f'<a class="diff" href="{href(*up, "diff", function, older, version + ".html")}">vs {esc(older)}</a> '
                f'<span class="meta">+{esc(diff.get("started_lines"))} / −{esc(diff.get("stopped_lines"))} lines</span>'
            )
        else:
            diff_cell = '<span class="muted">—</span>' if older is None else f'<span class="muted">vs {esc(older)}: not computed</span>'
        report = (
            f'<a href="{href(*up, "..", "combined", function, latest["date"], version, "html", "index.html")}">{esc(latest["date"])}</a>'
            if latest.get("date") else ""
        )
        since = entry.get("since_deploy") if isinstance(entry.get("since_deploy"), dict) else None
        if since:
            versions_base = (*up, "..", "versions", function, version)
            since_cells = (
                f'{_percent_cell(since.get("percent"))}<td class="nowrap"><a class="since-deploy" '
                f'href="{href(*versions_base, "html", "index.html")}">report</a> · <a class="never-executed" '
                f'href="{href(*versions_base, "never-executed.html")}">never executed</a> '
                f'<span class="meta">{esc(since.get("never_executed_files"))} file(s), '
                f'{esc(since.get("never_executed_functions"))} function(s)</span></td>'
            )
        else:
            since_cells = '<td class="num percent"><span class="muted">n/a</span></td><td></td>'
        version_rows.append(
            f'<tr class="version" data-version="{esc(version)}"><td><code>{esc(version)}</code></td>'
            f"<td class=\"nowrap\">{esc(entry.get('first_seen'))}</td><td class=\"nowrap\">{esc(entry.get('last_seen'))}</td>"
            f"<td class=\"num\">{esc(entry.get('days'))}</td>{since_cells}{_percent_cell(latest.get('percent'))}"
            f"<td class=\"nowrap\">{report}</td><td class=\"nowrap\">{diff_cell}</td></tr>"
        )
    body = (
        f"{_navigation(up)}<h1><code>{esc(function)}</code> "
        f'<img class="badge" src="{href(*up, "badges", function + ".svg")}" alt="coverage badge of {esc(function)}" height="20"></h1>'
        f'<p class="meta">{len(ordered)} code version(s), {len(groups)} day group(s) in the last 30 days · generated {esc(generated_at)}</p>'
        f"<h2>Last 30 days</h2><p>{trend_svg(groups, width=640, height=140, large=True)}</p>"
        "<h2>Code versions</h2>"
        + _table("versions", "<th>Version</th><th>First seen</th><th>Last seen</th><th>Days</th><th>Since deploy</th>"
                 "<th>Since-deploy reports</th><th>Latest day</th><th>Latest report</th><th>Diff</th>", "\n".join(version_rows))
        + "<h2>Days</h2>"
        + _table("groups", _GROUP_HEAD, _group_rows(("..", ".."), groups, with_function=False))
    )
    return _page(f"Coverage of {function}", body)


def quarantine_page(quarantine: dict, generated_at: str) -> str:
    """{p}reports/quarantine.html: the uploads quarantined in the last days, newest first, each linked to its reason."""
    rows = []
    for entry in quarantine.get("entries", []):
        rows.append(
            f"<tr><td class=\"nowrap\">{esc(entry.get('quarantined_at'))}</td><td><code>{esc(entry.get('reason'))}</code></td>"
            f"<td>{esc(entry.get('message'))}</td><td class=\"wrap\"><code>{esc(entry.get('original_key'))}</code></td>"
            f'<td><a class="reason" href="{href("..", *entry["reason_path"].split("/"))}">reason</a></td></tr>'
        )
    shown = len(rows)
    body = (
        f"{_navigation(('.',))}<h1>Quarantined uploads</h1>"
        f"<p class=\"meta\">{esc(quarantine.get('recent', 0))} in the last {esc(quarantine.get('days'))} days"
        f"{f', the newest {shown} listed' if shown < quarantine.get('recent', 0) else ''} · generated {esc(generated_at)}</p>"
        "<p>Each was moved out of <code>raw/</code> with a <code>.reason.json</code> beside it; the rest of its batch was combined.</p>"
        + _table("quarantined", "<th>When</th><th>Reason</th><th>Message</th><th>Upload</th><th></th>", "\n".join(rows))
    )
    return _page("Quarantined uploads", body)


def daily_page(rollup: dict) -> str:
    """The daily roll-up at {p}daily/{date}/index.html."""
    totals = rollup.get("totals", {})
    body = (
        f"{_navigation(('..', '..', 'reports'))}"
        f"<h1>Coverage on {esc(rollup.get('date'))}</h1>"
        f"<p class=\"meta\">{esc(rollup.get('functions'))} function(s), {len(rollup.get('groups', []))} group(s) · "
        f"{esc(format_percent(totals.get('percent')))} over {esc(totals.get('statements'))} statements · generated "
        f"{esc(rollup.get('generated_at'))}</p>"
        + _table("groups", "<th>Function</th>" + _GROUP_HEAD, _group_rows(("..", ".."), rollup.get("groups", [])))
    )
    return _page(f"Coverage on {rollup.get('date')}", body)


# -- navigation added to coverage.py's pages -------------------------------------------------------

_REPORT_NAV_STYLE = (
    "font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;padding:6px 12px;background:#f6f8fa;"
    "border-bottom:1px solid #d1d9e0;color:#1f2328"
)


def report_navigation(function: str, up: tuple[str, ...]) -> str:
    """Links from a group's report to the dashboard and to its function's page (its other days and versions)."""
    return (
        f'<nav class="lc-nav" style="{_REPORT_NAV_STYLE}"><a href="{href(*up, "reports", "index.html")}">Dashboard</a> · '
        f'<a href="{href(*up, "reports", "functions", function + ".html")}">{esc(function)}: other days and versions</a></nav>'
    )


def add_report_navigation(html_dir: str, function: str, depth: int = 5) -> None:
    """Put the navigation at the top of every HTML page of a report, `depth` folders below {p}
    (5 for a day group's {p}combined/f/d/v/html/, 4 for a version's {p}versions/f/v/html/)."""
    nav = report_navigation(function, ("..",) * depth)
    for name in os.listdir(html_dir) if os.path.isdir(html_dir) else ():
        if not name.endswith(".html"):
            continue
        path = os.path.join(html_dir, name)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        text, count = re.subn(r"(<body\b[^>]*>)", lambda m: m.group(1) + nav, text, count=1)
        if count:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)


_NOT_MEASURED_STYLE = (
    "font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:8px 12px;padding:6px 12px;"
    "background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;color:#1f2328"
)


def not_measured_note(not_measured: dict) -> str:
    """The note on a report's index page: lines shown as missing whose execution at import was not measured, by file."""
    files = "".join(
        f"<li><code>{esc(entry.get('path'))}</code>: lines {esc(line_ranges(entry.get('lines') or []))}</li>"
        for entry in not_measured.get("files") or [] if isinstance(entry, dict)
    )
    return f'<div id="not-measured" style="{_NOT_MEASURED_STYLE}"><p>{esc(not_measured.get("note"))}</p><ul>{files}</ul></div>'


def add_not_measured_note(html_dir: str, not_measured: dict) -> None:
    """Put the not-measured note at the top of coverage.py's index page (the navigation, added later, goes above it)."""
    path = os.path.join(html_dir, "index.html")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    note = not_measured_note(not_measured)
    text, count = re.subn(r"(<body\b[^>]*>)", lambda m: m.group(1) + note, text, count=1)
    if count:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)


# -- version diff ---------------------------------------------------------------------------------


def _diff_files(entries: list[dict], version: str) -> str:
    if not entries:
        return '<p class="muted">nothing</p>'
    parts = []
    for entry in entries:
        status = "file not executed before" if not entry.get("file_ran_before") else ""
        if not entry.get("file_in_other_version"):
            status = "file not in the other version"
        rows = "".join(
            f'<tr><td class="num">{esc(line.get("line"))}</td><td><code>{esc(line.get("text"))}</code></td></tr>'
            for line in entry.get("lines", [])
        )
        parts.append(
            f'<h3><code>{esc(entry.get("path"))}</code> <span class="meta">{len(entry.get("lines", []))} line(s)'
            f'{" · " + esc(status) if status else ""}</span></h3>'
            f'<div class="scroll"><table class="lines"><thead><tr><th>Line in {esc(version)}</th><th>Code</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
        )
    return "\n".join(parts)


def diff_page(diff: dict) -> str:
    """The version diff at {p}reports/diff/{function}/{from}/{to}.html."""
    function, old, new = diff["function"], diff["from"], diff["to"]
    up = ("..", "..", "..")
    dates = diff.get("dates") or {}

    def seen(version: str) -> str:
        days = dates.get(version) or []
        return f"{esc(days[0])} to {esc(days[-1])}, {len(days)} day(s)" if days else "no days"

    missing = "".join(
        f"<tr><td><code>{esc(e.get('path'))}</code></td><td><code>{esc(e.get('version'))}</code></td><td>{esc(e.get('reason'))}</td></tr>"
        for e in diff.get("without_source", [])
    )
    started, stopped = diff["started"], diff["stopped"]
    body = (
        f"{_navigation(up, function)}"
        f"<h1>What changed in execution: <code>{esc(function)}</code></h1>"
        f'<p class="meta"><code>{esc(old)}</code> ({seen(old)}) → <code>{esc(new)}</code> ({seen(new)}) · '
        f'generated {esc(diff.get("generated_at"))} · <a href="{href(new + ".json")}">JSON</a></p>'
        '<p class="note">Lines are matched by file path and text (indentation ignored), so code that only moved is '
        "not listed. A version's lines are every line any invocation ran on any day of that version.</p>"
        f'<h2 id="started">Executed by <code>{esc(new)}</code>, not by <code>{esc(old)}</code></h2>'
        f'<p class="meta">{started["line_count"]} line(s) in {len(started["lines"])} file(s); '
        f'{len(started["files"])} file(s) executed now that did not run before</p>'
        f"{_diff_files(started['lines'], new)}"
        f'<h2 id="stopped">Executed by <code>{esc(old)}</code>, not by <code>{esc(new)}</code></h2>'
        f'<p class="meta">{stopped["line_count"]} line(s) in {len(stopped["lines"])} file(s); '
        f'{len(stopped["files"])} file(s) no longer executed</p>'
        f"{_diff_files(stopped['lines'], old)}"
        + (
            '<h2 id="without-source">Files without source</h2><p class="meta">Their lines cannot be matched by text.</p>'
            f'<div class="scroll"><table><thead><tr><th>File</th><th>Version</th><th>Why</th></tr></thead><tbody>{missing}</tbody></table></div>'
            if missing else ""
        )
    )
    return _page(f"Version diff of {function}: {old} → {new}", body)


def _navigation(up: tuple[str, ...], function: str | None = None) -> str:
    """The links at the top of the reporter's own pages; `up` leads from the page to {p}reports/."""
    links = [f'<a href="{href(*up, "index.html")}">Dashboard</a>']
    if function is not None:
        links.append(f'<a href="{href(*up, "functions", function + ".html")}">{esc(function)}</a>')
    return f'<nav class="top">{" · ".join(links)}</nav>'


def never_executed_page(never: dict) -> str:
    """{p}versions/{function}/{version}/never-executed.html: the code no invocation ran since the version was first seen."""
    function, version = never["function"], never["version"]
    up = ("..", "..", "..", "reports")
    file_rows = "".join(
        f'<tr><td class="wrap"><code>{esc(f["path"])}</code></td><td class="num">{esc(f["statements"])}</td></tr>'
        for f in never.get("files", [])
    )
    function_rows = "".join(
        f'<tr><td class="wrap"><code>{esc(f["path"])}</code></td><td><code>{esc(f["function"])}</code></td>'
        f'<td class="num">{esc(f.get("start_line"))}</td><td class="num">{esc(f["statements"])}</td></tr>'
        for f in never.get("functions", [])
    )
    evidence = (
        f"seen on {esc(never.get('days'))} day(s), {esc(never.get('first_seen'))} to {esc(never.get('last_seen'))}; "
        f"{esc(never.get('invocations'))} invocation(s) in {esc(never.get('environments'))} execution environment(s); "
        f"{esc(never.get('raw_files'))} raw file(s)"
    )
    body = (
        f"{_navigation(up, function)}<h1>Never executed since deploy: <code>{esc(function)}</code> <code>{esc(version)}</code></h1>"
        f'<p class="meta">{evidence} · generated {esc(never.get("generated_at"))} · '
        f'<a href="{href("never-executed.json")}">JSON</a> · <a href="{href("html", "index.html")}">since-deploy report</a></p>'
        '<p class="note">No invocation of this code version ran any statement of these, on any day it was seen: '
        "candidates for deletion, largest first. Files whose source is not in the snapshot are not listed.</p>"
        f'<h2 id="files">Files ({len(never.get("files", []))})</h2>'
        + (_table("never-files", "<th>File</th><th>Statements</th>", file_rows) if file_rows else '<p class="muted">none</p>')
        + f'<h2 id="functions">Functions in files that otherwise ran ({len(never.get("functions", []))})</h2>'
        + (_table("never-functions", "<th>File</th><th>Function</th><th>Line</th><th>Statements</th>", function_rows)
           if function_rows else '<p class="muted">none</p>')
    )
    return _page(f"Never executed since deploy: {function} {version}", body)
