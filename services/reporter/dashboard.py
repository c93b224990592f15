"""The dashboard ({p}reports/: index.html, history.json, badges) and the daily roll-up ({p}daily/{date}/)."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from coverage_wrapper import keys

from lambda_coverage.services import storage

from . import pages
from .render import COMBINED_DATA, SUMMARY, Group, check_date, utc_now

HISTORY = "history.json"
INDEX = "index.html"
BADGES = "badges/"
MAX_POINTS_PER_FUNCTION = 200
_NUMBER_FIELDS = ("percent", "statements", "covered", "missing", "raw_files", "files", "files_with_source",
                  "files_without_source")
_TEXT = re.compile(r"^[\w:.+-]{1,40}$")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _clean_summary(group: Group, stored: Any) -> dict:
    """Only known fields of the right type, and the group from its key, never from the content."""
    stored = stored if isinstance(stored, dict) else {}
    summary: dict[str, Any] = {"function": group.function, "date": group.date, "version": group.version, "rendered": True}
    for name in _NUMBER_FIELDS:
        summary[name] = stored.get(name) if _is_number(stored.get(name)) else None
    generated_at = stored.get("generated_at")
    summary["generated_at"] = generated_at if isinstance(generated_at, str) and _TEXT.match(generated_at) else None
    branches = stored.get("branches")
    if isinstance(branches, dict):
        summary["branches"] = {k: branches.get(k) for k in ("total", "covered", "partial", "missing") if _is_number(branches.get(k))}
    unavailable = stored.get("unavailable")
    if isinstance(unavailable, list):
        summary["unavailable_paths"] = [str(e.get("path"))[:300] for e in unavailable[:50] if isinstance(e, dict)]
    return summary


def _groups_under(client: Any, bucket: str, list_prefix: str, base: str) -> dict[Group, set[str]]:
    found: dict[Group, set[str]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=list_prefix):
        for item in page.get("Contents", []):
            parts = item["Key"][len(base) :].split("/")
            if len(parts) != 4 or parts[3] not in (SUMMARY, COMBINED_DATA):
                continue
            try:
                group = Group(parts[0], parts[1], parts[2])
            except ValueError:  # not a key the scheme produces: not a group
                continue
            found.setdefault(group, set()).add(parts[3])
    return found


def collect_summaries(client: Any, bucket: str, prefix: str, date: str | None = None) -> list[dict]:
    """Every group's summary (or a 'not rendered yet' entry when it has data but no summary), optionally of one date."""
    base = f"{keys.normalize_prefix(prefix)}combined/"
    if date is None:
        found = _groups_under(client, bucket, base, base)
    else:
        found = {}
        functions = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base, Delimiter="/"):
            functions.extend(p["Prefix"][len(base) :].rstrip("/") for p in page.get("CommonPrefixes", []))
        for function in functions:
            found.update(_groups_under(client, bucket, f"{base}{function}/{date}/", base))

    def load(group: Group) -> dict:
        if SUMMARY not in found[group]:
            return {"function": group.function, "date": group.date, "version": group.version, "rendered": False}
        key = keys.combined_prefix(prefix, group.function, group.date, group.version) + SUMMARY
        try:
            stored = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ValueError:
            stored = {}
        return _clean_summary(group, stored)

    ordered = sorted(found, key=lambda g: (g.function, g.date, g.version))
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(load, ordered))


def _put(client: Any, bucket: str, key: str, body: str, content_type: str) -> None:
    storage.put_object(client, bucket, key, body.encode("utf-8"), ContentType=content_type, CacheControl="no-cache")


def history_point(summary: dict) -> dict:
    return {name: summary.get(name) for name in ("function", "date", "version", "percent", "covered", "statements", "generated_at")}


def merge_history(history: Any, summaries: list[dict], recorded_at: str) -> dict:
    """Add one point per rendered group unless that rendering is already recorded; keep the newest points per function."""
    points = [p for p in (history or {}).get("points", []) if isinstance(p, dict)] if isinstance(history, dict) else []
    seen = {(p.get("function"), p.get("date"), p.get("version"), p.get("generated_at")) for p in points}
    for summary in summaries:
        if not summary.get("rendered", True) or summary.get("percent") is None:
            continue
        point = history_point(summary)
        identity = (point["function"], point["date"], point["version"], point["generated_at"])
        if identity not in seen:
            seen.add(identity)
            points.append(dict(point, recorded_at=recorded_at))
    points.sort(key=lambda p: (str(p.get("function")), str(p.get("date")), str(p.get("generated_at"))))
    kept: list[dict] = []
    for function in sorted({str(p.get("function")) for p in points}):
        kept.extend([p for p in points if str(p.get("function")) == function][-MAX_POINTS_PER_FUNCTION:])
    return {"format": 1, "updated_at": recorded_at, "points": kept}


def update_history(client: Any, bucket: str, prefix: str, summaries: list[dict], recorded_at: str) -> dict:
    """Merge the points into history.json with a conditional write, reading again when another refresh wrote first.

    A refresh that adds no point writes nothing: concurrent combines then only contend when they
    really have something new to record.
    """
    key = keys.reports_prefix(prefix) + HISTORY
    merged: dict = {}

    def add_points(current: storage.StoredObject | None) -> bytes | None:
        try:
            stored = json.loads(current.body) if current else None
        except ValueError:  # an unreadable history is replaced by one rebuilt from the summaries
            stored = None
        merged.clear()
        merged.update(merge_history(stored, summaries, recorded_at))
        if isinstance(stored, dict) and stored.get("points") == merged["points"]:
            merged["updated_at"] = stored.get("updated_at", recorded_at)
            return None
        return json.dumps(merged, indent=1).encode("utf-8")

    storage.update_object(client, bucket, key, add_points, key, ContentType="application/json", CacheControl="no-cache")
    return merged


def _history_by_function(history: dict) -> dict[str, list[dict]]:
    by_function: dict[str, list[dict]] = {}
    for point in history.get("points", []):
        by_function.setdefault(str(point.get("function")), []).append(point)
    for points in by_function.values():
        points.sort(key=lambda p: (str(p.get("date")), str(p.get("generated_at"))))
    return by_function


def rolled_up_dates(client: Any, bucket: str, prefix: str) -> list[str]:
    """Dates that have a daily roll-up, newest first: the dashboard links only to pages that exist."""
    base = f"{keys.normalize_prefix(prefix)}daily/"
    dates = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base, Delimiter="/"):
        dates.extend(p["Prefix"][len(base) :].rstrip("/") for p in page.get("CommonPrefixes", []))
    return sorted((d for d in dates if keys.is_date(d)), reverse=True)


def refresh_dashboard(client: Any, bucket: str, prefix: str) -> dict:
    """Rewrite {p}reports/: history.json (one new point per newly rendered group), badges and index.html."""
    now = utc_now()
    summaries = collect_summaries(client, bucket, prefix)
    history = update_history(client, bucket, prefix, summaries, now)
    reports = keys.reports_prefix(prefix)
    latest: dict[str, dict] = {}
    for summary in summaries:
        if summary.get("rendered"):
            current = latest.get(summary["function"])
            if current is None or (summary["date"], summary.get("generated_at") or "") > (current["date"], current.get("generated_at") or ""):
                latest[summary["function"]] = summary
    functions = sorted({s["function"] for s in summaries})

    def write_badge(function: str) -> None:
        percent = latest.get(function, {}).get("percent")
        _put(client, bucket, f"{reports}{BADGES}{function}.svg", pages.badge_svg(percent), "image/svg+xml")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write_badge, functions))
    page = pages.dashboard_page(summaries, _history_by_function(history), now, rolled_up_dates(client, bucket, prefix))
    _put(client, bucket, reports + INDEX, page, "text/html; charset=utf-8")
    return {"functions": len(functions), "groups": len(summaries), "history_points": len(history["points"]), "generated_at": now}


def write_daily_rollup(client: Any, bucket: str, prefix: str, date: str) -> dict:
    """Write {p}daily/{date}/summary.json and index.html over every group of that date; return the roll-up."""
    check_date(date)
    summaries = collect_summaries(client, bucket, prefix, date=date)
    rendered = [s for s in summaries if s.get("rendered") and s.get("percent") is not None]
    statements = sum(s.get("statements") or 0 for s in rendered)
    covered = sum(s.get("covered") or 0 for s in rendered)
    branches = sum((s.get("branches") or {}).get("total", 0) for s in rendered)
    covered_branches = sum((s.get("branches") or {}).get("covered", 0) for s in rendered)
    denominator = statements + branches
    rollup = {
        "date": date,
        "generated_at": utc_now(),
        "functions": len({s["function"] for s in summaries}),
        "totals": {
            "statements": statements,
            "covered": covered,
            "missing": statements - covered,
            "branches": branches,
            "covered_branches": covered_branches,
            "percent": round(100.0 * (covered + covered_branches) / denominator, 2) if denominator else None,
        },
        "groups": summaries,
    }
    base = keys.daily_prefix(prefix, date)
    _put(client, bucket, base + SUMMARY, json.dumps(rollup, indent=1), "application/json")
    _put(client, bucket, base + INDEX, pages.daily_page(rollup), "text/html; charset=utf-8")
    return rollup
