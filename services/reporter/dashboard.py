"""The dashboard ({p}reports/: index.html, history.json, a page and a badge per function, quarantine.html) and the
daily roll-up ({p}daily/{date}/).

Each report updates its function's index ({p}reports/index/, see function_index). A refresh lists those
indexes (one small listing), reads only the ones whose ETag history.json does not know yet, merges them
into history.json with a conditional write, and rewrites the pages and badges of those functions and the
dashboard: its cost does not grow with the days or groups behind it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

from coverage_wrapper import keys

from lambda_coverage.services import storage

from . import function_index, pages
from .render import COMBINED_DATA, SUMMARY, Group, check_date, utc_now

HISTORY = "history.json"
INDEX = "index.html"
BADGES = "badges/"
FUNCTION_PAGES = "functions/"
QUARANTINE_PAGE = "quarantine.html"
QUARANTINE_CACHE = "quarantine.json"
HISTORY_FORMAT = 2
MAX_DAILY_LINKS = 60
QUARANTINE_DAYS = 7
# Quarantined objects expire (CDK lifecycle); a flood of them is listed up to this many keys per refresh.
MAX_QUARANTINE_LISTED = 5000
MAX_QUARANTINE_READ = 100
MAX_QUARANTINE_SHOWN = 200


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


def _clean_summary(group: Group, stored: Any) -> dict:
    """Only known fields of the right type, and the group from its key, never from the content."""
    summary = function_index.group_point(stored if isinstance(stored, dict) else {})
    summary.update(function=group.function, date=group.date, version=group.version, rendered=True)
    unavailable = stored.get("unavailable") if isinstance(stored, dict) else None
    if isinstance(unavailable, list):
        summary["unavailable_paths"] = [str(e.get("path"))[:300] for e in unavailable[:50] if isinstance(e, dict)]
    return summary


def collect_summaries(client: Any, bucket: str, prefix: str, date: str | None = None) -> list[dict]:
    """Every group's summary (or a 'not rendered yet' entry when it has data but no summary), optionally of one date.

    Lists `combined/`: the daily roll-up (one date) and the one-time indexing of data older than the
    dashboard's indexes use it, never a refresh.
    """
    base = f"{keys.normalize_prefix(prefix)}combined/"
    if date is None:
        found = _groups_under(client, bucket, base, base)
    else:
        found = {}
        for function in storage.list_children(client, bucket, base):
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


# -- history.json: the dashboard's small index ----------------------------------------------------


def history_point(summary: dict) -> dict:
    return {name: summary.get(name) for name in ("function", "date", "version", "percent", "covered", "statements", "generated_at")}


def _window(points: list[dict]) -> list[dict]:
    """The points of each function's newest MAX_DAYS dates."""
    newest: dict[str, str] = {}
    for point in points:
        function = str(point.get("function"))
        newest[function] = max(newest.get(function, ""), str(point.get("date")))
    kept = []
    for point in points:
        last = datetime.strptime(newest[str(point.get("function"))], "%Y-%m-%d")
        if str(point.get("date")) >= (last - timedelta(days=function_index.MAX_DAYS - 1)).strftime("%Y-%m-%d"):
            kept.append(point)
    return kept


def merge_history(history: Any, summaries: list[dict], recorded_at: str, functions: dict[str, dict] | None = None,
                  daily: Iterable[str] = ()) -> dict:
    """history.json with the groups' newest renderings (one point per group), newer function entries and daily dates.

    Bounded whatever the history: points of each function's newest 30 dates, entries of the functions
    that exist, the newest daily roll-ups.
    """
    stored = history if isinstance(history, dict) and history.get("format") == HISTORY_FORMAT else {}
    points = {(p.get("function"), p.get("date"), p.get("version")): p for p in stored.get("points", []) if isinstance(p, dict)}
    for summary in summaries:
        if not summary.get("rendered", True) or summary.get("percent") is None:
            continue
        point = history_point(summary)
        identity = (point["function"], point["date"], point["version"])
        if identity not in points or str(point.get("generated_at") or "") > str(points[identity].get("generated_at") or ""):
            points[identity] = point
    entries = dict(stored.get("functions") or {})
    for function, entry in (functions or {}).items():
        if int(entry.get("generation", 0)) >= int((entries.get(function) or {}).get("generation", -1)):
            entries[function] = entry
    ordered = sorted(_window(list(points.values())), key=lambda p: (str(p.get("function")), str(p.get("date")), str(p.get("version"))))
    dates = sorted({d for d in [*stored.get("daily", []), *daily] if isinstance(d, str) and keys.is_date(d)}, reverse=True)
    return {"format": HISTORY_FORMAT, "updated_at": recorded_at, "points": ordered,
            "functions": dict(sorted(entries.items())), "daily": dates[:MAX_DAILY_LINKS]}


def update_history(client: Any, bucket: str, prefix: str, summaries: list[dict], recorded_at: str,
                   functions: dict[str, dict] | None = None, daily: Iterable[str] = ()) -> dict:
    """Merge into history.json with a conditional write, reading again (after a jittered backoff) when another
    refresh wrote first. A refresh that adds nothing writes nothing: concurrent refreshes only contend when
    they really have something new to record."""
    key = keys.reports_prefix(prefix) + HISTORY
    merged: dict = {}
    daily = list(daily)

    def add(current: storage.StoredObject | None) -> bytes | None:
        try:
            stored = json.loads(current.body) if current else None
        except ValueError:  # an unreadable history is replaced by one rebuilt from the indexes
            stored = None
        merged.clear()
        merged.update(merge_history(stored, summaries, recorded_at, functions, daily))
        if isinstance(stored, dict) and {k: v for k, v in stored.items() if k != "updated_at"} == {
                k: v for k, v in merged.items() if k != "updated_at"}:
            merged["updated_at"] = stored.get("updated_at", recorded_at)
            return None
        return json.dumps(merged, indent=1).encode("utf-8")

    storage.update_object(client, bucket, key, add, key, ContentType="application/json", CacheControl="no-cache")
    return merged


def function_entry(index: dict, etag: str) -> dict:
    """What the dashboard keeps of a function's index: its newest group, versions, diffs."""
    groups = index.get("groups") or []
    latest = max(groups, key=lambda g: (str(g.get("date")), str(g.get("generated_at") or "")), default=None)
    newest_date = latest["date"] if latest else None
    versions = index.get("versions") or {}
    return {
        "etag": etag,
        "generation": int(index.get("generation", 0)),
        "groups": len(groups),
        "latest": history_point(latest) if latest else None,
        "latest_day_groups": [dict(g, rendered=True) for g in groups if g.get("date") == newest_date],
        "versions": [dict({k: versions[v].get(k) for k in ("first_seen", "last_seen", "days")}, version=v)
                     for v in function_index.ordered_versions(index)],
        "diffs": [d for d in index.get("diffs") or [] if isinstance(d, dict)],
    }


def _index_existing_groups(client: Any, bucket: str, prefix: str, recorded_at: str) -> None:
    """Once, when there is no history.json of this format: index the groups rendered before indexes existed."""
    by_function: dict[str, list[dict]] = {}
    for summary in collect_summaries(client, bucket, prefix):
        if summary.get("rendered"):
            by_function.setdefault(summary["function"], []).append(summary)

    def index_function(item: tuple[str, list[dict]]) -> None:
        function, summaries = item

        def change(index: dict) -> dict:
            for summary in sorted(summaries, key=lambda s: s["date"]):
                index = function_index.add_group(index, summary, recorded_at)
            return index

        function_index.update_index(client, bucket, prefix, function, change)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(index_function, by_function.items()))


def rolled_up_dates(client: Any, bucket: str, prefix: str) -> list[str]:
    """Dates that have a daily roll-up, newest first (read once, when history.json is first written)."""
    dates = storage.list_children(client, bucket, f"{keys.normalize_prefix(prefix)}daily/")
    return sorted((d for d in dates if keys.is_date(d)), reverse=True)


# -- quarantined uploads --------------------------------------------------------------------------


def quarantine_summary(client: Any, bucket: str, prefix: str, now: datetime) -> dict:
    """The uploads quarantined in the last QUARANTINE_DAYS days, newest first, with their reasons.

    Reasons already read are kept in {p}reports/quarantine.json, so a refresh reads only new ones.
    """
    root = keys.normalize_prefix(prefix)
    since = now - timedelta(days=QUARANTINE_DAYS)
    recent: list[tuple[str, str]] = []
    listed = 0
    truncated = False
    for item in storage.list_objects(client, bucket, f"{root}quarantine/"):
        listed += 1
        if listed > MAX_QUARANTINE_LISTED:
            truncated = True
            break
        if item["Key"].endswith(".reason.json") and item["LastModified"] >= since:
            recent.append((item["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ"), item["Key"]))
    recent.sort(reverse=True)
    cache_key = keys.reports_prefix(prefix) + QUARANTINE_CACHE
    cached = storage.read_object(client, bucket, cache_key)
    try:
        known = json.loads(cached.body).get("entries", {}) if cached else {}
    except (ValueError, AttributeError):
        known = {}
    entries: dict[str, dict] = {}
    unread = [key for _, key in recent if key not in known][:MAX_QUARANTINE_READ]

    def read_reason(key: str) -> tuple[str, dict]:
        stored = storage.read_object(client, bucket, key)
        try:
            reason = json.loads(stored.body) if stored else {}
        except ValueError:
            reason = {}
        reason = reason if isinstance(reason, dict) else {}
        return key, {name: str(reason.get(name, ""))[:300] for name in ("reason", "message", "original_key")}

    if unread:
        with ThreadPoolExecutor(max_workers=8) as pool:
            fresh = dict(pool.map(read_reason, unread))
    else:
        fresh = {}
    for when, key in recent:
        entry = known.get(key) or fresh.get(key) or {"reason": "(not read yet)", "message": "", "original_key": ""}
        entries[key] = dict(entry, quarantined_at=when, reason_path=key[len(root):])
    document = {"format": 1, "entries": entries}
    changed = cached is None or known != entries
    if changed:
        _put(client, bucket, cache_key, json.dumps(document, indent=1), "application/json")
    reasons: dict[str, int] = {}
    for entry in entries.values():
        reasons[entry["reason"]] = reasons.get(entry["reason"], 0) + 1
    return {
        "days": QUARANTINE_DAYS,
        "recent": len(entries),
        "truncated": truncated,
        "reasons": reasons,
        "entries": list(entries.values())[:MAX_QUARANTINE_SHOWN],
        "changed": changed,
    }


# -- the refresh ------------------------------------------------------------------------------------


def refresh_dashboard(client: Any, bucket: str, prefix: str, daily: str | None = None) -> dict:
    """Bring {p}reports/ up to date with the function indexes that changed since the last refresh."""
    now = utc_now()
    reports = keys.reports_prefix(prefix)
    stored = storage.read_object(client, bucket, reports + HISTORY)
    try:
        history = json.loads(stored.body) if stored else None
    except ValueError:
        history = None
    daily_dates = [daily] if daily else []
    if not isinstance(history, dict) or history.get("format") != HISTORY_FORMAT:
        _index_existing_groups(client, bucket, prefix, now)
        daily_dates += rolled_up_dates(client, bucket, prefix)
        history = {}
    known = history.get("functions") or {}
    root = function_index.index_root(prefix)
    listed = {item["Key"][len(root) : -len(".json")]: item["ETag"] for item in storage.list_objects(client, bucket, root)
              if item["Key"].endswith(".json") and keys.is_segment(item["Key"][len(root) : -len(".json")])}
    changed = sorted(f for f, etag in listed.items() if (known.get(f) or {}).get("etag") != etag)

    def read(function: str) -> tuple[str, dict, str]:
        current = storage.read_object(client, bucket, function_index.index_key(prefix, function))
        return function, function_index.parse_index(current.body if current else None, function), current.etag if current else ""

    with ThreadPoolExecutor(max_workers=8) as pool:
        indexes = {function: (index, etag) for function, index, etag in pool.map(read, changed)}
    entries = {function: function_entry(index, etag) for function, (index, etag) in indexes.items()}
    summaries = [dict(g, rendered=True) for index, _ in indexes.values() for g in index["groups"]]
    merged = update_history(client, bucket, prefix, summaries, now, entries, daily_dates)
    quarantine = quarantine_summary(client, bucket, prefix, datetime.now(timezone.utc))

    def write_function(function: str) -> None:
        index, _ = indexes[function]
        latest = (merged["functions"].get(function) or {}).get("latest") or {}
        _put(client, bucket, f"{reports}{BADGES}{function}.svg", pages.badge_svg(latest.get("percent")), "image/svg+xml")
        _put(client, bucket, f"{reports}{FUNCTION_PAGES}{function}.html", pages.function_page(index, now), "text/html; charset=utf-8")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write_function, changed))
    if quarantine["changed"] or stored is None:
        _put(client, bucket, reports + QUARANTINE_PAGE, pages.quarantine_page(quarantine, now), "text/html; charset=utf-8")
    _put(client, bucket, reports + INDEX, pages.dashboard_page(merged, quarantine, now), "text/html; charset=utf-8")
    return {
        "functions": len(merged["functions"]),
        "groups": sum(int(e.get("groups", 0)) for e in merged["functions"].values()),
        "history_points": len(merged["points"]),
        "functions_changed": len(changed),
        "quarantined_recently": quarantine["recent"],
        "generated_at": now,
    }


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
