"""One group's reports: coverage.py JSON, HTML, LCOV and Cobertura, plus summary.json, from combined data and real source."""

from __future__ import annotations

import ast
import html
import json
import mimetypes
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from coverage_wrapper import datafile, keys
from coverage_wrapper.imported import IMPORTED_BEFORE, not_measured_at_import, parse_imported_before
from coverage_wrapper.merge import LINES_WITHOUT_BRANCHES
from coverage_wrapper.validation import MAX_LINE_NUMBER, MAX_MEASURED_FILES, InvalidDataFile, Rejection, check_path, validate_data_file
from lambda_coverage.services import storage

from . import pages
from .diff import executed_lines
from .function_index import record_report
from .report_config import read_report_config
from .sources import SourceSnapshot, materialize_sources

COMBINED_DATA = "coverage.sqlite"
JSON_REPORT = "coverage.json"
LCOV_REPORT = "lcov.info"
XML_REPORT = "coverage.xml"
SUMMARY = "summary.json"
HTML_DIR = "html/"
HTML_INDEX = "html/index.html"
HTML_UNAVAILABLE = "html/unavailable.html"

_PATH_PROBLEMS = ("absolute_path", "path_traversal", "unsafe_path")
UNAVAILABLE_NOTE = (
    "Source is not available for these files, so they have no statement counts and are not in the totals; "
    "their executed lines are listed instead."
)


NOT_ANALYZED = "coverage.py could not analyze the source (it does not parse as Python)"
LINES_WITHOUT_BRANCHES_NOTE = (
    "Some raw files of this group measured lines only (branch coverage off): their lines count as executed, "
    "and the branches on them are counted only from the files that measured branches."
)
NOT_MEASURED_NOTE = (
    "{lines} line(s) in {files} file(s) were not measured: they sit inside module-level compound statements "
    "(if, try, for, with, match) of modules imported before measuring began (decorator mode), so whether they "
    "ran at import is not known, and they are shown as missing. Use zero-code mode to measure init code."
)
EVERYTHING_OMITTED = "The [report] omit of the function's coverage.py config leaves out every measured file: the reports are empty."
MAX_LISTED_SKIPS = 50
MAX_LISTED_CONTEXTS = 100


class MissingCombinedData(LookupError):
    """The group has no combined data file to report on."""


def check_date(date: Any) -> str:
    """A calendar date written YYYY-MM-DD, or ValueError."""
    if not isinstance(date, str) or not keys.is_date(date):
        raise ValueError(f"date must be a calendar date written YYYY-MM-DD, got {str(date)[:100]!r}")
    return date


@dataclass(frozen=True)
class Group:
    """A function/date/code version: the unit of combined data and of reports."""

    function: str
    date: str
    version: str

    def __post_init__(self) -> None:
        for name in ("function", "version"):
            value = getattr(self, name)
            if not isinstance(value, str) or not keys.is_segment(value):
                raise ValueError(f"{name} must be a key segment of [A-Za-z0-9._-], got {str(value)[:100]!r}")
        check_date(self.date)

    @property
    def parts(self) -> tuple[str, str, str]:
        return (self.function, self.date, self.version)

    @classmethod
    def from_event(cls, event: Any) -> Group:
        if not isinstance(event, dict):
            raise ValueError("the event must be an object with function, date and version")
        missing = [name for name in ("function", "date", "version") if not event.get(name)]
        if missing:
            raise ValueError(f"the event lacks {', '.join(missing)}")
        return cls(function=event["function"], date=event["date"], version=event["version"])


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def raw_file_count(manifest: Any) -> int | None:
    """How many raw files the combiner merged, from its manifest.json (a list, or an object holding one)."""
    if isinstance(manifest, list):
        return len(manifest)
    if isinstance(manifest, dict):
        for name in ("raw_file_count", "raw_files_count"):
            if isinstance(manifest.get(name), int):
                return manifest[name]
        for name in ("raw_keys", "merged", "raw_files", "keys", "files"):
            value = manifest.get(name)
            if isinstance(value, (list, dict)):
                return len(value)
    return None


# The working directory and coverage.py's relative directory are process-wide: one report at a time
# (the local emulation runs several report handlers in one process).
_REPORTING_LOCK = threading.Lock()


@contextmanager
def _reporting_directory(root: str) -> Iterator[None]:
    """coverage.py names files relative to the working directory it starts in: make that the source root."""
    from coverage import files

    with _REPORTING_LOCK:
        previous = os.getcwd()
        os.chdir(root)
        try:
            yield
        finally:
            os.chdir(previous)
            files.set_relative_directory()


def _map_to_sources(data_path: str, snapshot: SourceSnapshot, mapped_path: str) -> tuple[bool, list[str], dict[str, list[int]]]:
    """Copy the measurements of files with source into a data file keyed by their local paths.

    Returns whether branches were measured, the context labels other than the empty one, and the
    executed lines of each file without source. Lines, arcs and context labels are copied; plugin
    names in the data never reach coverage.py.
    """
    combined = datafile.read_contents(data_path)
    executed_without_source = {path: combined.lines(path) for path in combined.paths if path not in snapshot.available}
    by_context: Mapping[str, Mapping[str, Any]] = combined.context_arcs if combined.has_arcs else combined.context_line_bits
    measured: dict[str, dict[str, Any]] = {}
    for label, by_path in by_context.items():
        into = measured.setdefault(label, {})
        for path, value in by_path.items():
            local = snapshot.available.get(path)
            if local is not None:
                into[local] = value if combined.has_arcs else datafile.nums_of(value)
    # Files no invocation executed count at 0%, as coverage.py's own `source` option reports them.
    never_executed = [snapshot.available[path] for path in sorted(snapshot.never_executed) if path in snapshot.available]
    touched = never_executed + [snapshot.available[path] for path in combined.paths if path in snapshot.available]
    empty = measured.pop("", {})
    if combined.has_arcs:
        datafile.write_data_file(mapped_path, arcs=empty, contexts=measured, touched=touched)
    else:
        datafile.write_data_file(mapped_path, lines=empty, contexts=measured, touched=touched)
    return combined.has_arcs, sorted(label for label, by_path in measured.items() if by_path), executed_without_source


def _drop_unsafe_paths(data_path: str) -> dict[str, list[int]]:
    """Take files with unsafe paths out of a copy of the data, returning their executed lines.

    Only when validation's sole objection is a path: then the schema holds no triggers or views and
    nothing else is wrong, and the other files can still be reported. Such a path never becomes a
    local file name; it is only ever shown escaped.
    """
    problem = validate_data_file(data_path)
    if problem is None or problem.code not in _PATH_PROBLEMS:
        return {}
    return datafile.remove_files(data_path, lambda path: not isinstance(path, str) or check_path(path) is not None, MAX_LINE_NUMBER)


def _not_analyzed(data_path: str, snapshot: SourceSnapshot, reported: set[str], path_prefix: str) -> dict[str, list[int]]:
    """Files with source that coverage.py still skipped (it is not Python it can parse), with their executed lines."""
    skipped = [path for path in snapshot.available if path_prefix + path not in reported and path not in snapshot.never_executed]
    if not skipped:
        return {}
    data = datafile.read_contents(data_path)
    return {path: data.lines(path) for path in skipped}


def _not_measured(data_path: str, snapshot: SourceSnapshot, report: dict, path_prefix: str) -> dict[str, list[int]]:
    """Per reported file, the statements shown as missing that ran unseen, or not, at an import before measuring
    began: inside its module-level compound statements, and executed in no environment that measured them."""
    try:
        paths = parse_imported_before(datafile.read_meta(data_path, (IMPORTED_BEFORE,)).get(IMPORTED_BEFORE), MAX_MEASURED_FILES)
    except ValueError:  # combined data holds only what validation let through; an odd value only loses the note
        return {}
    found = {}
    for path in paths:
        local, entry = snapshot.available.get(path), report["files"].get(path_prefix + path)
        if local is None or entry is None:
            continue
        try:
            with open(local, "rb") as handle:
                unknown = not_measured_at_import(ast.parse(handle.read()))
        except (OSError, SyntaxError, ValueError):
            continue
        lines = sorted(unknown.intersection(entry.get("missing_lines") or ()))
        if lines:
            found[path_prefix + path] = lines
    return found


def _neutral_xml_sources(xml_path: str, root: str) -> None:
    """Cobertura's <source> would name the temporary folder; paths are relative to the source root instead."""
    with open(xml_path, encoding="utf-8") as handle:
        text = handle.read()
    root = root.rstrip("/")
    text = text.replace(f"<source>{root}</source>", "<source>.</source>")
    with open(xml_path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _empty_reports(out_dir: str, has_arcs: bool) -> dict:
    """No file has source: write reports that are valid and empty rather than none at all."""
    import coverage

    totals = {
        "covered_lines": 0, "num_statements": 0, "percent_covered": 0.0, "percent_covered_display": "0",
        "missing_lines": 0, "excluded_lines": 0, "percent_statements_covered": 0.0,
        "percent_statements_covered_display": "0",
    }
    if has_arcs:
        totals.update(num_branches=0, num_partial_branches=0, covered_branches=0, missing_branches=0,
                      percent_branches_covered=0.0, percent_branches_covered_display="0")
    report = {
        "meta": {"format": 3, "version": coverage.__version__, "timestamp": datetime.now().isoformat(),
                 "branch_coverage": has_arcs, "show_contexts": False},
        "files": {},
        "totals": totals,
    }
    with open(os.path.join(out_dir, JSON_REPORT), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=4)
    with open(os.path.join(out_dir, LCOV_REPORT), "w", encoding="utf-8") as handle:
        handle.write("")
    with open(os.path.join(out_dir, XML_REPORT), "w", encoding="utf-8") as handle:
        handle.write(
            '<?xml version="1.0" ?>\n'
            f'<coverage version="{coverage.__version__}" timestamp="{int(datetime.now().timestamp() * 1000)}" '
            'lines-valid="0" lines-covered="0" line-rate="0" branches-covered="0" branches-valid="0" '
            'branch-rate="0" complexity="0">\n\t<sources>\n\t\t<source>.</source>\n\t</sources>\n'
            "\t<packages/>\n</coverage>\n"
        )
    return report


def build_reports(
    data_path: str,
    snapshot: SourceSnapshot,
    out_dir: str,
    group: Group,
    path_prefix: str = "",
    raw_files: int | None = None,
    title: str | None = None,
) -> dict:
    """Write coverage.json, lcov.info, coverage.xml, html/ and summary.json into `out_dir`; return the summary.

    `snapshot.root` holds the sources at `{path_prefix}{relative path}`, so every report names files
    the same way: relative to the source root, behind the optional prefix. The report options of the
    function's own coverage.py config file there apply, as `coverage report` would apply them.
    """
    from coverage import Coverage
    from coverage.exceptions import NoDataError

    os.makedirs(out_dir, exist_ok=True)
    not_measured: dict[str, list[int]] = {}
    html_dir = os.path.join(out_dir, HTML_DIR)
    shutil.rmtree(html_dir, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="mapped-") as scratch:
        clean_path = os.path.join(scratch, "combined.sqlite")
        shutil.copyfile(data_path, clean_path)
        unsafe = _drop_unsafe_paths(clean_path)
        problem = validate_data_file(clean_path)
        if problem is not None:
            raise InvalidDataFile(problem)
        mapped_path = os.path.join(scratch, ".coverage")
        has_arcs, contexts, without_source = _map_to_sources(clean_path, snapshot, mapped_path)
        lines_without_branches = datafile.read_meta(clean_path, [LINES_WITHOUT_BRANCHES]).get(LINES_WITHOUT_BRANCHES) == "1"
        without_source.update(unsafe)
        config = read_report_config(os.path.join(snapshot.root, *path_prefix.split("/")), snapshot.config_unavailable)
        everything_omitted = False
        if snapshot.available:
            title = title or f"Coverage of {group.function} {group.version} on {group.date}"
            with _reporting_directory(snapshot.root):
                cov = Coverage(data_file=mapped_path, config_file=False)
                cov.set_option("run:disable_warnings", ["couldnt-parse"])  # such files are listed as unavailable
                # Which requests ran each line, when the layer recorded it (coverage.py escapes the labels).
                cov.set_option("html:show_contexts", bool(contexts))
                cov.set_option("json:show_contexts", bool(contexts))
                config.apply(cov)
                cov.load()
                try:
                    cov.json_report(outfile=os.path.join(out_dir, JSON_REPORT), ignore_errors=True, pretty_print=True)
                    cov.lcov_report(outfile=os.path.join(out_dir, LCOV_REPORT), ignore_errors=True)
                    cov.xml_report(outfile=os.path.join(out_dir, XML_REPORT), ignore_errors=True)
                    cov.html_report(directory=html_dir, ignore_errors=True, title=title)
                except NoDataError:  # the config's omit leaves out every file
                    everything_omitted = True
        if everything_omitted or not snapshot.available:
            report = _empty_reports(out_dir, has_arcs)
        else:
            _neutral_xml_sources(os.path.join(out_dir, XML_REPORT), os.path.realpath(snapshot.root))
            _neutral_xml_sources(os.path.join(out_dir, XML_REPORT), snapshot.root)
            with open(os.path.join(out_dir, JSON_REPORT), encoding="utf-8") as handle:
                report = json.load(handle)
            without_source.update(_not_analyzed(clean_path, snapshot, set(report["files"]), path_prefix))
            not_measured = _not_measured(clean_path, snapshot, report, path_prefix)
    # Files the config omits are left out of every report, with source or without.
    without_source = {
        path: lines for path, lines in without_source.items()
        if check_path(path) is not None or not config.omits(os.path.join(snapshot.root, *(path_prefix + path).split("/")))
    }
    unavailable = [
        {
            "path": path_prefix + path if check_path(path) is None else path,
            "reason": snapshot.unavailable.get(path, NOT_ANALYZED),
            "executed_lines": lines,
        }
        for path, lines in sorted(without_source.items())
    ]
    summary = _summary(group, report, has_arcs, raw_files, path_prefix, snapshot, unavailable)
    if contexts:
        summary["contexts"] = {"count": len(contexts), "labels": contexts[:MAX_LISTED_CONTEXTS]}
    if lines_without_branches:
        summary["branch_note"] = LINES_WITHOUT_BRANCHES_NOTE
    if not_measured:
        count = sum(len(lines) for lines in not_measured.values())
        summary["not_measured"] = {
            "lines": count,
            "note": NOT_MEASURED_NOTE.format(lines=count, files=len(not_measured)),
            "files": [{"path": path, "lines": lines} for path, lines in sorted(not_measured.items())],
        }
        pages.add_not_measured_note(html_dir, summary["not_measured"])
    summary["report_config"] = config.describe()
    os.makedirs(html_dir, exist_ok=True)
    if everything_omitted:
        summary["report_config"]["note"] = EVERYTHING_OMITTED
        with open(os.path.join(html_dir, "index.html"), "w", encoding="utf-8") as handle:
            handle.write(f'<!doctype html><meta charset="utf-8"><title>{html.escape(group.function)}</title>'
                         f'<p>{html.escape(EVERYTHING_OMITTED)}</p><p><a href="../summary.json">summary.json</a></p>\n')
    if not snapshot.available:
        with open(os.path.join(html_dir, "index.html"), "w", encoding="utf-8") as handle:
            handle.write(pages.unavailable_page(summary, standalone=True))
    if unavailable:
        with open(os.path.join(html_dir, "unavailable.html"), "w", encoding="utf-8") as handle:
            handle.write(pages.unavailable_page(summary, standalone=False))
    with open(os.path.join(out_dir, SUMMARY), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1, sort_keys=True)
    return summary


def _summary(group: Group, report: dict, has_arcs: bool, raw_files: int | None, path_prefix: str,
             snapshot: SourceSnapshot, unavailable: list[dict]) -> dict:
    totals = report.get("totals", {})
    reported = len(report.get("files", {}))
    summary: dict[str, Any] = {
        "function": group.function,
        "date": group.date,
        "version": group.version,
        "files": reported + len(unavailable),
        "files_with_source": reported,
        "files_without_source": len(unavailable),
        "statements": totals.get("num_statements", 0),
        "covered": totals.get("covered_lines", 0),
        "missing": totals.get("missing_lines", 0),
        "excluded": totals.get("excluded_lines", 0),
        "percent": round(float(totals.get("percent_covered", 0.0)), 2) if reported else None,
        "percent_display": totals.get("percent_covered_display") if reported else None,
        "raw_files": raw_files,
        "path_prefix": path_prefix,
        "source_snapshot": snapshot.manifest_found,
        "generated_at": utc_now(),
        "reports": {
            "html": HTML_INDEX, "json": JSON_REPORT, "lcov": LCOV_REPORT, "cobertura": XML_REPORT,
            "unavailable": HTML_UNAVAILABLE if unavailable else None,
        },
        "unavailable": unavailable,
        "note": UNAVAILABLE_NOTE if unavailable else None,
        # Entries of the source manifest that name no measured file and could not be used, with why.
        "skipped_source_entries": [
            {"path": path[:300], "reason": reason} for path, reason in sorted(snapshot.skipped.items())[:MAX_LISTED_SKIPS]
        ],
    }
    if has_arcs:
        summary["branches"] = {
            "total": totals.get("num_branches", 0),
            "covered": totals.get("covered_branches", 0),
            "partial": totals.get("num_partial_branches", 0),
            "missing": totals.get("missing_branches", 0),
        }
    return summary


def compact_summary(summary: dict) -> dict:
    """The summary without per-file detail: small enough for a Step Functions payload."""
    compact = {k: v for k, v in summary.items() if k not in ("unavailable", "reports", "skipped_source_entries", "contexts", "report_config", "not_measured")}
    if "not_measured" in summary:
        compact["not_measured_lines"] = summary["not_measured"]["lines"]
    compact["unavailable_paths"] = [entry["path"] for entry in summary.get("unavailable", [])][:20]
    return compact


def _content_type(name: str) -> str:
    if name.endswith(".info"):
        return "text/plain; charset=utf-8"
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return guessed + "; charset=utf-8" if guessed.startswith("text/") or guessed in ("application/json", "application/javascript") else guessed


def _upload_tree(client: Any, bucket: str, key_prefix: str, out_dir: str) -> list[str]:
    uploads = []
    for directory, _, filenames in os.walk(out_dir):
        for filename in filenames:
            if filename.startswith("."):  # coverage.py's .gitignore: nothing a report reader needs
                continue
            path = os.path.join(directory, filename)
            relative = os.path.relpath(path, out_dir).replace(os.sep, "/")
            uploads.append((key_prefix + relative, path))

    def put(item: tuple[str, str]) -> str:
        key, path = item
        with open(path, "rb") as handle:
            client.put_object(Bucket=bucket, Key=key, Body=handle.read(), ContentType=_content_type(path))
        return key

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(put, sorted(uploads)))


def _remove_stale_html(client: Any, bucket: str, html_prefix: str, keep: set[str]) -> None:
    stale: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=html_prefix):
        stale.extend(item["Key"] for item in page.get("Contents", []) if item["Key"] not in keep)
    for start in range(0, len(stale), 1000):
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale[start : start + 1000]]})


def _measured_paths(data_path: str) -> list[str]:
    """The data's file paths; a file whose only fault is a path is still read (build_reports sets those aside)."""
    problem = validate_data_file(data_path)
    if problem is not None and problem.code not in _PATH_PROBLEMS:
        raise InvalidDataFile(problem)
    try:
        return datafile.measured_paths(data_path)
    except datafile.DataFileError as exc:
        raise InvalidDataFile(Rejection(exc.code, f"cannot read measured files: {exc.message}")) from None


def render_data(client: Any, bucket: str, prefix: str, data_key: str, base: str, group: Group, path_prefix: str = "",
                raw_files: int | None = None, title: str | None = None, extra: dict | None = None) -> tuple[dict, dict[str, list[int]]]:
    """Render the data at `data_key` with its version's source snapshot into every report under `base`
    ({p}combined/f/d/v/ or {p}versions/f/v/); the summary (with `extra` in it) and the executed lines per file."""
    with tempfile.TemporaryDirectory(prefix="report-") as work:
        data_path = os.path.join(work, "combined.sqlite")
        if storage.download(client, bucket, data_key, data_path) is None:
            raise MissingCombinedData(f"no combined data at s3://{bucket}/{data_key}")
        measured = _measured_paths(data_path)
        source_root = os.path.join(work, "src")
        os.makedirs(source_root)
        snapshot = materialize_sources(client, bucket, prefix, group.function, group.version, measured, source_root, path_prefix)
        out_dir = os.path.join(work, "out")
        summary = build_reports(data_path, snapshot, out_dir, group, path_prefix, raw_files, title)
        if extra:
            summary.update(extra)
            with open(os.path.join(out_dir, SUMMARY), "w", encoding="utf-8") as handle:
                json.dump(summary, handle, indent=1, sort_keys=True)
        depth = len(base[len(keys.normalize_prefix(prefix)) :].rstrip("/").split("/")) + 1
        pages.add_report_navigation(os.path.join(out_dir, HTML_DIR), group.function, depth)
        uploaded = _upload_tree(client, bucket, base, out_dir)
        _remove_stale_html(client, bucket, base + HTML_DIR, set(uploaded))
        return summary, executed_lines(data_path)


def render_group(client: Any, bucket: str, prefix: str, group: Group, path_prefix: str = "") -> dict:
    """Read a group's combined data and source snapshot from S3, write all its reports beside the data, and
    record the group in its function's index (with its version's executed lines and diff); the summary."""
    raw_files = None
    manifest = storage.read_object(client, bucket, keys.combined_manifest_key(prefix, *group.parts))
    try:
        raw_files = raw_file_count(json.loads(manifest.body)) if manifest else None
    except ValueError:  # the count is informative; an odd manifest leaves it unknown
        pass
    base = keys.combined_prefix(prefix, *group.parts)
    summary, executed = render_data(client, bucket, prefix, keys.combined_data_key(prefix, *group.parts), base, group, path_prefix, raw_files)
    record_report(client, bucket, prefix, summary, executed, utc_now())
    return summary
