"""A code version's since-deploy reports ({p}versions/{function}/{version}/) and its never-executed page.

The combiner keeps the data (the union of the version's day groups, see lambda_coverage.services.combiner.since_deploy);
this renders it like a day group, adds what `manifest.json` says of it (first and last day seen, days, raw
files, invocations, environments), and lists the code no invocation ran since the version was first seen.
"""

from __future__ import annotations

import json
from typing import Any

from coverage_wrapper import keys
from lambda_coverage.services import storage

from . import function_index, pages
from .render import JSON_REPORT, SUMMARY, Group, render_data, utc_now

DATA = "coverage.sqlite"
MANIFEST = "manifest.json"
NEVER_EXECUTED_JSON = "never-executed.json"
NEVER_EXECUTED_HTML = "never-executed.html"
EVIDENCE = ("first_seen", "last_seen", "days", "raw_files", "invocations", "environments")


def reports_stale(client: Any, bucket: str, prefix: str, function: str, version: str) -> bool:
    """True when the version has since-deploy data and its summary.json was not rendered from that data (ETag)."""
    base = keys.versions_prefix(prefix, function, version)
    data = storage.head_object(client, bucket, base + DATA)
    if data is None:
        return False
    stored = storage.read_object(client, bucket, base + SUMMARY)
    try:
        rendered_from = json.loads(stored.body).get("data_etag") if stored else None
    except (ValueError, AttributeError):
        rendered_from = None
    return rendered_from != data["ETag"]


def never_executed(report: dict, evidence: dict) -> dict:
    """Files and functions with statements of which no invocation ran one, largest first, with the evidence.

    A file nothing ran is listed as a file (its functions with it); a function is listed on its own
    when the rest of its file ran. From coverage.py's JSON report of the since-deploy data.
    """
    files, functions = [], []
    for path, entry in sorted((report.get("files") or {}).items()):
        summary = entry.get("summary") or {}
        if summary.get("num_statements", 0) and not summary.get("covered_lines", 0):
            files.append({"path": path, "statements": summary["num_statements"]})
            continue
        for name, function in (entry.get("functions") or {}).items():
            counts = function.get("summary") or {}
            if name and counts.get("num_statements", 0) and not counts.get("covered_lines", 0):
                functions.append({"path": path, "function": name, "start_line": function.get("start_line"),
                                  "statements": counts["num_statements"]})
    files.sort(key=lambda f: (-f["statements"], f["path"]))
    functions.sort(key=lambda f: (-f["statements"], f["path"], str(f["function"])))
    return {
        **{name: evidence.get(name) for name in EVIDENCE},
        "files": files,
        "functions": functions,
        "statements": sum(f["statements"] for f in files) + sum(f["statements"] for f in functions),
    }


def render_version(client: Any, bucket: str, prefix: str, function: str, version: str, path_prefix: str = "") -> dict:
    """Render a version's since-deploy reports and never-executed page; record them in the function's index.

    Reports of two days of one version can run at once: a rendering whose data changed while it ran (a
    newer day folded in) renders again, so the last summary written is never older than the data.
    """
    for _ in range(3):
        before = storage.head_object(client, bucket, keys.versions_prefix(prefix, function, version) + DATA)
        summary = _render_version(client, bucket, prefix, function, version, path_prefix)
        after = storage.head_object(client, bucket, keys.versions_prefix(prefix, function, version) + DATA)
        if (before or {}).get("ETag") == (after or {}).get("ETag"):
            break
    return summary


def _render_version(client: Any, bucket: str, prefix: str, function: str, version: str, path_prefix: str) -> dict:
    base = keys.versions_prefix(prefix, function, version)
    data_before = storage.head_object(client, bucket, base + DATA)  # taken before the manifest: a fold after it shows as stale
    stored = storage.read_object(client, bucket, base + MANIFEST)
    try:
        manifest: dict[str, Any] = json.loads(stored.body) if stored else {}
    except ValueError:
        manifest = {}
    evidence = {name: manifest.get(name) for name in EVIDENCE}
    last_seen = manifest["last_seen"] if keys.is_date(str(manifest.get("last_seen"))) else utc_now()[:10]
    title = f"Coverage of {function} {version} since {evidence['first_seen'] or 'deploy'}"
    extra = {"since_deploy": True, "data_etag": data_before["ETag"] if data_before else None, **evidence}
    summary, _ = render_data(client, bucket, prefix, base + DATA, base, Group(function, last_seen, version), path_prefix,
                             evidence["raw_files"], title, extra)
    stored_report = storage.read_object(client, bucket, base + JSON_REPORT)
    if stored_report is None:  # render_data wrote it just above
        raise RuntimeError(f"{base + JSON_REPORT} disappeared while its since-deploy reports were written")
    report = json.loads(stored_report.body)
    never = {"function": function, "version": version, "generated_at": summary["generated_at"], **never_executed(report, evidence)}
    for name, body, content_type in (
        (NEVER_EXECUTED_JSON, json.dumps(never, indent=1), "application/json"),
        (NEVER_EXECUTED_HTML, pages.never_executed_page(never), "text/html; charset=utf-8"),
    ):
        storage.put_object(client, bucket, base + name, body.encode("utf-8"), ContentType=content_type, CacheControl="no-cache")
    point = {**function_index.group_point(summary), **evidence, "never_executed_files": len(never["files"]),
             "never_executed_functions": len(never["functions"])}
    function_index.update_index(client, bucket, prefix, function,
                                lambda index: function_index.add_since_deploy(index, version, point))
    return summary
