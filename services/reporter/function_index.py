"""The per-function index ({p}reports/index/{function}.json): recent day groups, code versions and diffs, updated by each report.

Small and bounded whatever the history: the groups of the function's newest MAX_DAYS dates, its
MAX_VERSIONS newest code versions, and the diffs written between them. The dashboard reads only
these indexes (those that changed), never the whole `combined/` tree.
"""

from __future__ import annotations

import json
import re
from datetime import date as calendar_date, timedelta
from typing import Any

from coverage_wrapper import keys
from lambda_coverage.services import storage

from . import diff as version_diff
from .diff import saw_more

FORMAT = 1
MAX_DAYS = 30
MAX_VERSIONS = 12
MAX_DATES_PER_VERSION = 400
_NUMBER_FIELDS = ("percent", "statements", "covered", "missing", "raw_files", "files", "files_with_source",
                  "files_without_source")
_TEXT = re.compile(r"^[\w:.+-]{1,40}$")


def index_key(prefix: str, function: str) -> str:
    return f"{keys.reports_prefix(prefix)}index/{function}.json"


def index_root(prefix: str) -> str:
    return f"{keys.reports_prefix(prefix)}index/"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def group_point(summary: dict) -> dict:
    """What the dashboard keeps of one group's summary: known fields of the right type only."""
    point: dict[str, Any] = {name: summary.get(name) for name in ("function", "date", "version")}
    for name in _NUMBER_FIELDS:
        point[name] = summary.get(name) if _is_number(summary.get(name)) else None
    generated_at = summary.get("generated_at")
    point["generated_at"] = generated_at if isinstance(generated_at, str) and _TEXT.match(generated_at) else None
    branches = summary.get("branches")
    if isinstance(branches, dict):
        point["branches"] = {k: branches[k] for k in ("total", "covered", "partial", "missing") if _is_number(branches.get(k))}
    contexts = summary.get("contexts")
    if isinstance(contexts, dict) and _is_number(contexts.get("count")):
        point["contexts"] = contexts["count"]
    return point


def empty_index(function: str) -> dict:
    return {"format": FORMAT, "function": function, "generation": 0, "groups": [], "versions": {}, "diffs": []}


def parse_index(body: bytes | None, function: str) -> dict:
    """A stored index, or an empty one when there is none or it cannot be read."""
    try:
        document = json.loads(body) if body else None
    except ValueError:
        document = None
    if not isinstance(document, dict) or document.get("format") != FORMAT or document.get("function") != function:
        return empty_index(function)
    for name, kind in (("groups", list), ("versions", dict), ("diffs", list)):
        if not isinstance(document.get(name), kind):
            document[name] = kind()
    return document


def _day(text: str) -> calendar_date:
    return calendar_date.fromisoformat(text)


def add_group(index: dict, summary: dict, recorded_at: str) -> dict:
    """The index with one rendered group added (its newer rendering replaces an older one), bounded."""
    point = group_point(summary)
    groups = [g for g in index["groups"] if (g.get("date"), g.get("version")) != (point["date"], point["version"])]
    older = [g for g in index["groups"] if (g.get("date"), g.get("version")) == (point["date"], point["version"])]
    if older and str(older[0].get("generated_at") or "") > str(point.get("generated_at") or ""):
        point = older[0]  # a late, older rendering never replaces a newer one
    groups.append(point)
    newest = max(_day(g["date"]) for g in groups)
    cutoff = (newest - timedelta(days=MAX_DAYS - 1)).isoformat()
    groups = sorted((g for g in groups if g["date"] >= cutoff), key=lambda g: (g["date"], g["version"]))
    versions = dict(index["versions"])
    entry = dict(versions.get(point["version"]) or {"first_recorded": recorded_at, "dates": []})
    dates = sorted(set(entry.get("dates", [])) | {point["date"]})[-MAX_DATES_PER_VERSION:]
    entry.update(dates=dates, first_seen=dates[0], last_seen=dates[-1], days=len(dates))
    latest = entry.get("latest")
    if not isinstance(latest, dict) or (point["date"], str(point.get("generated_at") or "")) >= (
            str(latest.get("date")), str(latest.get("generated_at") or "")):
        entry["latest"] = point
    versions[point["version"]] = entry
    kept = ordered_versions({"versions": versions})[-MAX_VERSIONS:]
    versions = {v: versions[v] for v in kept}
    diffs = [d for d in index["diffs"] if isinstance(d, dict) and d.get("from") in versions and d.get("to") in versions]
    return dict(index, groups=groups, versions=versions, diffs=diffs, generation=int(index.get("generation", 0)) + 1,
                updated_at=recorded_at)


def add_diff(index: dict, diff: dict) -> dict:
    """The index naming a written diff (the newest of each pair of versions)."""
    entry = {
        "from": diff["from"], "to": diff["to"], "generated_at": diff.get("generated_at"), "basis": diff.get("basis"),
        "started_lines": diff["started"]["line_count"], "stopped_lines": diff["stopped"]["line_count"],
        "started_files": len(diff["started"]["files"]), "stopped_files": len(diff["stopped"]["files"]),
    }
    same = [d for d in index["diffs"] if (d.get("from"), d.get("to")) == (diff["from"], diff["to"])]
    if same and not saw_more(entry.get("basis"), same[0].get("basis")):
        return index  # the entry of a diff that saw more stays
    diffs = [d for d in index["diffs"] if (d.get("from"), d.get("to")) != (diff["from"], diff["to"])] + [entry]
    return dict(index, diffs=diffs)



def add_since_deploy(index: dict, version: str, point: dict) -> dict:
    """The index with a version's since-deploy summary (a newer rendering replaces an older one)."""
    versions = dict(index["versions"])
    entry = dict(versions.get(version) or {"first_recorded": point.get("generated_at"), "dates": []})
    current = entry.get("since_deploy")
    if isinstance(current, dict) and str(current.get("generated_at") or "") > str(point.get("generated_at") or ""):
        return index
    entry["since_deploy"] = point
    for name in ("first_seen", "last_seen", "days"):
        if entry.get(name) is None:
            entry[name] = point.get(name)
    versions[version] = entry
    return dict(index, versions=versions, generation=int(index.get("generation", 0)) + 1)


def ordered_versions(index: dict) -> list[str]:
    """The index's code versions, oldest deployment first: by first day seen, then first recorded."""
    versions = index.get("versions") or {}
    return sorted(versions, key=lambda v: (str(versions[v].get("first_seen")), str(versions[v].get("first_recorded")), v))


def latest_pair(index: dict) -> tuple[str, str] | None:
    """The two newest code versions (older, newer), when there are two."""
    ordered = ordered_versions(index)
    return (ordered[-2], ordered[-1]) if len(ordered) >= 2 else None


def read_index(client: Any, bucket: str, prefix: str, function: str) -> dict:
    stored = storage.read_object(client, bucket, index_key(prefix, function))
    return parse_index(stored.body if stored else None, function)


def update_index(client: Any, bucket: str, prefix: str, function: str, change: Any) -> dict:
    """Apply `change(index) -> index` with a conditional write (read again when another report wrote first)."""
    written: dict = {}

    def apply(current: storage.StoredObject | None) -> bytes:
        updated = change(parse_index(current.body if current else None, function))
        written.clear()
        written.update(updated)
        return json.dumps(updated, indent=1).encode("utf-8")

    key = index_key(prefix, function)
    storage.update_object(client, bucket, key, apply, key, ContentType="application/json", CacheControl="no-cache")
    return written


def record_report(client: Any, bucket: str, prefix: str, summary: dict, executed: dict[str, list[int]], recorded_at: str) -> dict:
    """After a group is rendered: grow its version's executed lines, add the group to the function's index, and
    rewrite the diff of the two newest versions when either one's lines grew (or the pair is new).

    In that order: a report that commits the index after another one finds that one's lines already
    recorded, so whichever commits last computes the diff of everything.
    """
    function, version = summary["function"], summary["version"]
    known_dates = (read_index(client, bucket, prefix, function)["versions"].get(version) or {}).get("dates", [])
    grew = version_diff.record_executed(client, bucket, prefix, function, version, summary["date"], executed, known_dates)
    index = update_index(client, bucket, prefix, function, lambda current: add_group(current, summary, recorded_at))
    pair = latest_pair(index)
    if pair and version in pair and (grew or pair not in {(d.get("from"), d.get("to")) for d in index["diffs"]}):
        other = pair[0] if pair[1] == version else pair[1]
        version_diff.ensure_executed(client, bucket, prefix, function, other, index["versions"][other].get("dates", []))
        written = version_diff.publish_diff(client, bucket, prefix, function, *pair)
        if written is not None:
            index = update_index(client, bucket, prefix, function, lambda current: add_diff(current, written))
    return index


def versions_from_combined(client: Any, bucket: str, prefix: str, function: str) -> list[str]:
    """A function's code versions from its combined day groups (oldest first seen first), for data older than its index."""
    base = f"{keys.normalize_prefix(prefix)}combined/{function}/"
    first_seen: dict[str, str] = {}
    for date in sorted(d for d in storage.list_children(client, bucket, base) if keys.is_date(d)):
        for version in storage.list_children(client, bucket, f"{base}{date}/"):
            if keys.is_segment(version):
                first_seen.setdefault(version, date)
    return sorted(first_seen, key=lambda v: (first_seen[v], v))


def known_versions(client: Any, bucket: str, prefix: str, function: str) -> list[str]:
    """The function's code versions, oldest deployment first: from its index, else from its combined data."""
    return ordered_versions(read_index(client, bucket, prefix, function)) or versions_from_combined(client, bucket, prefix, function)
