"""Version diff: the lines one code version of a function executes that another does not, matched by file path and line text.

Lines move between versions, so a line is identified by its file path and its text (without
indentation), never by its number: a line of the new version counts as executed before when any
line of the same file with the same text ran in the old version. What a version executed is the
union of its day groups, kept in `{p}reports/executed/{function}/{version}.json` and grown by each
report (so it never depends on raw files, which expire).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from coverage_wrapper import datafile, keys
from coverage_wrapper.validation import check_path, validate_data_file
from lambda_coverage.services import storage

from .sources import NOT_IN_SNAPSHOT, read_blob, read_manifest

FORMAT = 1
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # Python's own line ends: a form feed or U+2028 does not start a line
_PATH_PROBLEMS = ("absolute_path", "path_traversal", "unsafe_path")


class NoVersionData(LookupError):
    """A code version has no combined data to compare."""


def executed_key(prefix: str, function: str, version: str) -> str:
    return f"{keys.reports_prefix(prefix)}executed/{function}/{version}.json"


def diff_key(prefix: str, function: str, old: str, new: str, extension: str) -> str:
    """Where the diff of `old` → `new` is written: `{p}reports/diff/{function}/{old}/{new}.{json|html}`."""
    return f"{keys.reports_prefix(prefix)}diff/{function}/{old}/{new}.{extension}"


# -- what a version executed ---------------------------------------------------------------------


def executed_lines(data_path: str) -> dict[str, list[int]]:
    """Per plain relative path, the executed lines of a combined data file (files with none left out)."""
    contents = datafile.read_contents(data_path)
    lines = {path: contents.lines(path) for path in contents.paths if check_path(path) is None}
    return {path: numbers for path, numbers in lines.items() if numbers}


def add_executed(document: Any, function: str, version: str, date: str, executed: Mapping[str, Iterable[int]]) -> dict | None:
    """`document` (an executed-lines record, or None) with `executed` of `date` added; None when it adds nothing."""
    files: dict[str, list[int]] = {}
    dates: list[str] = []
    if isinstance(document, dict) and isinstance(document.get("files"), dict):
        files = {str(p): [n for n in v if isinstance(n, int)] for p, v in document["files"].items() if isinstance(v, list)}
        dates = [d for d in document.get("dates", []) if isinstance(d, str)]
    changed = document is None or date not in dates
    for path, numbers in executed.items():
        known = set(files.get(path, ()))
        more = set(numbers) - known
        if more:
            files[path] = sorted(known | more)
            changed = True
    if not changed:
        return None
    generation = document.get("generation") if isinstance(document, dict) else 0
    return {
        "format": FORMAT,
        "function": function,
        "version": version,
        # Counts the record's growths: a diff says which it was computed from, so an older one never replaces it.
        "generation": (generation if isinstance(generation, int) else 0) + 1,
        "dates": sorted(set(dates) | {date}),
        "files": dict(sorted(files.items())),
    }


def executed_from_combined(client: Any, bucket: str, prefix: str, function: str, version: str,
                           dates: Iterable[str] | None = None) -> dict | None:
    """The union of the combined day groups of a version on `dates` (default: every date of the function); None when none has data."""
    base = f"{keys.normalize_prefix(prefix)}combined/{function}/"
    if dates is None:
        dates = storage.list_children(client, bucket, base)
    document = None
    with tempfile.TemporaryDirectory(prefix="executed-") as scratch:
        for date in sorted(d for d in set(dates) if keys.is_date(d)):
            local = os.path.join(scratch, f"{date}.sqlite")
            if storage.download(client, bucket, keys.combined_data_key(prefix, function, date, version), local) is None:
                continue
            problem = validate_data_file(local)
            if problem is not None and problem.code not in _PATH_PROBLEMS:
                continue  # the reporter refuses such data too: it executed nothing anyone was shown
            document = add_executed(document, function, version, date, executed_lines(local)) or document
    return document


def record_executed(client: Any, bucket: str, prefix: str, function: str, version: str, date: str,
                    executed: Mapping[str, Iterable[int]], seed_dates: Iterable[str] = ()) -> bool:
    """Add one day group's executed lines to its version's record (a conditional write); True when it grew.

    A version without a record yet is seeded from its combined day groups on `seed_dates` (the days the
    function's index knows it ran), so data rendered before the record existed is in it too.
    """
    seeded: list[dict | None] = []
    grew = False

    def change(current: storage.StoredObject | None) -> bytes | None:
        nonlocal grew
        if current is None:
            if not seeded:
                seeded.append(executed_from_combined(client, bucket, prefix, function, version, set(seed_dates) - {date}))
            document = seeded[0]
        else:
            try:
                document = json.loads(current.body)
            except ValueError:  # unreadable: rebuilt from what this report knows, and grows from here
                document = None
        updated = add_executed(document, function, version, date, executed)
        if updated is None and current is None:
            updated = document
        grew = updated is not None
        return json.dumps(updated).encode("utf-8") if updated is not None else None

    key = executed_key(prefix, function, version)
    storage.update_object(client, bucket, key, change, key, ContentType="application/json")
    return grew


def ensure_executed(client: Any, bucket: str, prefix: str, function: str, version: str, seed_dates: Iterable[str]) -> None:
    """Create a version's record from its combined day groups on `seed_dates` when it has none yet."""
    key = executed_key(prefix, function, version)
    if storage.head_object(client, bucket, key) is not None:
        return
    document = executed_from_combined(client, bucket, prefix, function, version, seed_dates)
    if document is None:
        return
    try:
        storage.put_object(client, bucket, key, json.dumps(document).encode("utf-8"), if_absent=True, ContentType="application/json")
    except storage.Conflict:  # another report created it first, from at least as much
        pass


def read_executed(client: Any, bucket: str, prefix: str, function: str, version: str) -> dict:
    """What a version executed: its record, or (when there is none yet) the union of its combined day groups."""
    stored = storage.read_object(client, bucket, executed_key(prefix, function, version))
    document = None
    if stored is not None:
        try:
            document = json.loads(stored.body)
        except ValueError:
            document = None
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        document = executed_from_combined(client, bucket, prefix, function, version)
    if document is None:
        raise NoVersionData(f"code version {version} of {function} has no combined data")
    return document


# -- line text -----------------------------------------------------------------------------------


@dataclass
class VersionSource:
    """The text of a version's files (path → lines), which files its snapshot lists, and why others have no text."""

    lines: dict[str, list[str]] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)
    missing: dict[str, str] = field(default_factory=dict)


def load_sources(client: Any, bucket: str, prefix: str, function: str, version: str, paths: Iterable[str],
                 blobs: dict[str, tuple[bytes | None, str]] | None = None) -> VersionSource:
    """The text of `paths` from the version's source snapshot; `blobs` (sha256 → content) is shared between versions."""
    manifest, no_manifest = read_manifest(client, bucket, prefix, function, version)
    source = VersionSource(listed=set(manifest or {}))
    blobs = {} if blobs is None else blobs
    wanted: dict[str, str] = {}
    for path in paths:
        entry = (manifest or {}).get(path)
        if manifest is None:
            source.missing[path] = no_manifest
        elif not isinstance(entry, dict) or not re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256", ""))):
            source.missing[path] = NOT_IN_SNAPSHOT
        else:
            wanted[path] = entry["sha256"]
    needed = sorted(set(wanted.values()) - set(blobs))
    if needed:
        with ThreadPoolExecutor(max_workers=min(8, len(needed))) as pool:
            blobs.update(zip(needed, pool.map(lambda sha: read_blob(client, bucket, prefix, sha), needed)))
    for path, sha256 in wanted.items():
        content, problem = blobs[sha256]
        if content is None:
            source.missing[path] = problem
        else:
            source.lines[path] = _LINE_BREAK.split(content.decode("utf-8", errors="replace"))
    return source


# -- the comparison ------------------------------------------------------------------------------


def _texts(lines: list[str], numbers: Iterable[int]) -> dict[int, str]:
    return {n: lines[n - 1].strip() for n in numbers if 0 < n <= len(lines)}


def _one_way(ran_before: Mapping[str, list[int]], ran_now: Mapping[str, list[int]], before: VersionSource,
             now: VersionSource, versions: tuple[str, str], without_source: dict[tuple[str, str], str]) -> dict:
    """Lines `ran_now` holds whose text no line of the same file in `ran_before` had."""
    entries: list[dict[str, Any]] = []
    for path in sorted(ran_now):
        numbers = ran_now[path]
        if not numbers:
            continue
        if path not in now.lines:
            without_source[(path, versions[1])] = now.missing.get(path, NOT_IN_SNAPSHOT)
            continue
        earlier = ran_before.get(path) or []
        if earlier and path not in before.lines:
            without_source[(path, versions[0])] = before.missing.get(path, NOT_IN_SNAPSHOT)
            continue
        known = set(_texts(before.lines[path], earlier).values()) if earlier else set()
        lines = [{"line": n, "text": text} for n, text in sorted(_texts(now.lines[path], numbers).items()) if text not in known]
        if lines:
            entries.append({"path": path, "file_ran_before": bool(earlier), "file_in_other_version": path in before.listed,
                            "lines": lines})
    files = [entry["path"] for entry in entries if not entry["file_ran_before"]]
    return {"files": files, "lines": entries, "line_count": sum(len(entry["lines"]) for entry in entries)}


def compare(function: str, old: str, new: str, old_executed: Mapping[str, list[int]], new_executed: Mapping[str, list[int]],
            old_source: VersionSource, new_source: VersionSource) -> dict:
    """The diff of two versions from what each executed and its source text (no S3: the pure part)."""
    without_source: dict[tuple[str, str], str] = {}
    started = _one_way(old_executed, new_executed, old_source, new_source, (old, new), without_source)
    stopped = _one_way(new_executed, old_executed, new_source, old_source, (new, old), without_source)
    return {
        "format": FORMAT,
        "function": function,
        "from": old,
        "to": new,
        "started": started,
        "stopped": stopped,
        "without_source": [{"path": path, "version": version, "reason": reason}
                           for (path, version), reason in sorted(without_source.items())],
    }


def version_diff(client: Any, bucket: str, prefix: str, function: str, old: str, new: str) -> dict:
    """What `new` executes that `old` did not (`started`) and the reverse (`stopped`), from S3."""
    from .render import utc_now

    for name, version in (("from", old), ("to", new)):
        if not keys.is_segment(version):
            raise ValueError(f"{name} version {version[:80]!r} is not a code version")
    documents = [read_executed(client, bucket, prefix, function, version) for version in (old, new)]
    executed = [{str(p): [n for n in v if isinstance(n, int)] for p, v in d["files"].items() if isinstance(v, list)} for d in documents]
    blobs: dict[str, tuple[bytes | None, str]] = {}
    sources = [load_sources(client, bucket, prefix, function, version, lines, blobs) for version, lines in zip((old, new), executed)]
    diff = compare(function, old, new, executed[0], executed[1], sources[0], sources[1])
    diff["dates"] = {version: d.get("dates", []) for version, d in zip((old, new), documents)}
    diff["basis"] = {"from": _generation(documents[0]), "to": _generation(documents[1])}
    diff["generated_at"] = utc_now()
    return diff


def _generation(document: Any) -> int:
    generation = document.get("generation") if isinstance(document, dict) else None
    return generation if isinstance(generation, int) and not isinstance(generation, bool) else 0


def saw_more(basis: Any, than: Any) -> bool:
    """True when a diff computed from records at `basis` saw at least everything one computed at `than` saw."""
    if not isinstance(than, dict):
        return True
    if not isinstance(basis, dict):
        return False
    return all(_generation({"generation": basis.get(k)}) >= _generation({"generation": than.get(k)}) for k in ("from", "to"))


def current_basis(client: Any, bucket: str, prefix: str, function: str, old: str, new: str) -> dict:
    """The generations of the two versions' records now."""
    basis = {}
    for name, version in (("from", old), ("to", new)):
        stored = storage.read_object(client, bucket, executed_key(prefix, function, version))
        try:
            basis[name] = _generation(json.loads(stored.body)) if stored else 0
        except ValueError:
            basis[name] = 0
    return basis


def publish_diff(client: Any, bucket: str, prefix: str, function: str, old: str, new: str, attempts: int = 5) -> dict | None:
    """Compute the diff and write it, unless a diff computed from newer records is already there; the diff written.

    Reports of one function run at once (several days or versions in a sweep): a diff is recomputed
    until neither record changed while it was computed, and the JSON is replaced only by a diff that saw
    more, so the last report to grow a record leaves the diff of everything.
    """
    for _ in range(attempts):
        diff = version_diff(client, bucket, prefix, function, old, new)
        if current_basis(client, bucket, prefix, function, old, new) == diff["basis"]:
            break
    return diff if write_diff(client, bucket, prefix, diff) else None


def write_diff(client: Any, bucket: str, prefix: str, diff: dict, attempts: int = 5) -> bool:
    """Write the diff's JSON unless the stored one saw more (a conditional write), then the HTML page of whatever
    JSON is stored; True when this diff's JSON was written."""
    from . import pages

    json_key = diff_key(prefix, diff["function"], diff["from"], diff["to"], "json")
    html_key = diff_key(prefix, diff["function"], diff["from"], diff["to"], "html")

    def replace(current: storage.StoredObject | None) -> bytes | None:
        try:
            stored = json.loads(current.body) if current else None
        except ValueError:
            stored = None
        if isinstance(stored, dict) and saw_more(stored.get("basis"), diff["basis"]):
            return None  # the stored diff saw at least as much
        return json.dumps(diff, indent=1).encode("utf-8")

    written = storage.update_object(client, bucket, json_key, replace, json_key, ContentType="application/json",
                                    CacheControl="no-cache") is not None
    # The page follows the stored JSON; a writer that raced this one re-renders it until the JSON holds still.
    for _ in range(attempts):
        stored = storage.read_object(client, bucket, json_key)
        if stored is None:
            break
        storage.put_object(client, bucket, html_key, pages.diff_page(json.loads(stored.body)).encode("utf-8"),
                           ContentType="text/html; charset=utf-8", CacheControl="no-cache")
        now = storage.head_object(client, bucket, json_key)
        if now is not None and now["ETag"] == stored.etag:
            break
    return written
