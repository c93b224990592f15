"""Validation of one raw coverage.py data file before anything trusts it (intake and every merge)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from . import datafile

SQLITE_MAGIC = b"SQLite format 3\x00"
SCHEMA_VERSION = datafile.SCHEMA_VERSION
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_MEASURED_FILES = 20000
# No real Python module is near this long; it bounds what one file may claim without its source.
MAX_LINE_NUMBER = 100_000
# Executed lines plus arcs over all files of one raw file: a whole large application executed end to end
# stays well below; it keeps the work a merge does for one upload bounded.
MAX_MEASURED_POINTS = 2_000_000
# Context labels (COVERAGE_CONTEXTS) per data file, the empty one included: routes and event sources of one
# function, with room for ALB and $default paths; it bounds what reports list per line.
MAX_CONTEXTS = 1000
# The layer writes labels of at most 200 characters (contexts.py).
MAX_CONTEXT_LABEL = 200
# A relative path of ordinary characters ending in .py: no HTML, quotes, control characters or '..'.
_SAFE_PATH = re.compile(r"^[\w][\w.+@ -]*(/[\w][\w.+@ -]*)*\.py$")


@dataclass(frozen=True)
class Rejection:
    """Why a file cannot be used: a stable reason code and a message for humans."""

    code: str
    message: str


class InvalidDataFile(Exception):
    def __init__(self, rejection: Rejection) -> None:
        super().__init__(f"{rejection.code}: {rejection.message}")
        self.rejection = rejection


def check_path(path: str) -> Rejection | None:
    """A measured file path must be relative, inside the source root and plain."""
    if os.path.isabs(path) or path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        return Rejection("absolute_path", f"absolute file path {path[:200]!r}")
    if any(part == ".." for part in path.replace("\\", "/").split("/")):
        return Rejection("path_traversal", f"file path leaves the source root: {path[:200]!r}")
    if len(path) > 1024 or not _SAFE_PATH.match(path):
        return Rejection("unsafe_path", f"file path has unexpected characters: {path[:200]!r}")
    return None


def source_line_limits(files: Mapping[str, object]) -> dict[str, int]:
    """Per path of a source manifest (path → {"size": bytes}), the highest line number its file can have."""
    limits = {}
    for path, entry in files.items():
        size = entry.get("size") if isinstance(entry, dict) else None
        if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            limits[path] = size + 1  # a file of n bytes has at most n newlines
    return limits


def validate_data_file(
    path: str, max_bytes: int = MAX_FILE_BYTES, line_limits: Mapping[str, int] | None = None
) -> Rejection | None:
    """None when the file is a sane coverage.py data file, otherwise the first reason it is not.

    `line_limits` (path → highest possible line, from the source snapshot) tightens the absolute
    line cap for the files whose source is known.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_MAGIC))
    except OSError as exc:
        return Rejection("unreadable", str(exc))
    if size == 0:
        return Rejection("empty", "the file is empty")
    if size > max_bytes:
        return Rejection("oversize", f"{size} bytes is over the {max_bytes}-byte limit")
    if header != SQLITE_MAGIC:
        return Rejection("not_sqlite", "the file is not an SQLite database")
    try:
        with datafile.open_data_file(path, integrity=True) as connection:
            claims = datafile.read_claims(connection)
            problem = _check_claims(claims, line_limits or {})
            if problem is None:
                points = datafile.count_lines(connection) + sum(claim.arcs for claim in claims.files)
                if points > MAX_MEASURED_POINTS:
                    problem = Rejection("too_many_points", f"{points} executed lines and arcs is over {MAX_MEASURED_POINTS}")
        return problem or _check_imported_before(path)
    except datafile.DataFileError as exc:
        return Rejection(exc.code, exc.message)


def _check_imported_before(path: str) -> Rejection | None:
    """The layer's list of modules imported before measuring began, when there is one, is a bounded list of plain paths."""
    from .imported import IMPORTED_BEFORE, parse_imported_before

    try:
        parse_imported_before(datafile.read_meta(path, (IMPORTED_BEFORE,)).get(IMPORTED_BEFORE), MAX_MEASURED_FILES)
    except ValueError as exc:
        return Rejection("bad_imported_before", f"the list of modules imported before measuring began is unusable: {exc}")
    return None


def _check_claims(claims: datafile.Claims, line_limits: Mapping[str, int]) -> Rejection | None:
    if len(claims.files) > MAX_MEASURED_FILES:
        return Rejection("too_many_files", f"{len(claims.files)} measured files is over {MAX_MEASURED_FILES}")
    for claim in claims.files:
        if not isinstance(claim.path, str):
            return Rejection("unsafe_path", "a file path is not text")
        problem = check_path(claim.path)
        if problem:
            return problem
    if claims.malformed_rows:
        return Rejection("absurd_line_numbers", f"{claims.malformed_rows} measurements are not line numbers")
    for claim in claims.files:
        limit = min(MAX_LINE_NUMBER, line_limits.get(claim.path, MAX_LINE_NUMBER))
        if claim.max_line > limit:
            source = "its source's length" if limit < MAX_LINE_NUMBER else "the cap"
            return Rejection(
                "absurd_line_numbers",
                f"{claim.path[:200]} claims line {claim.max_line}, above {source} ({limit})",
            )
    if claims.contexts > MAX_CONTEXTS:
        return Rejection("too_many_contexts", f"{claims.contexts} context labels is over {MAX_CONTEXTS}")
    if claims.non_text_contexts:
        return Rejection("bad_context", f"{claims.non_text_contexts} context labels are not text")
    if claims.longest_context > MAX_CONTEXT_LABEL:
        return Rejection("bad_context", f"a context label of {claims.longest_context} characters is over {MAX_CONTEXT_LABEL}")
    if claims.orphan_rows:
        return Rejection("inconsistent", f"{claims.orphan_rows} measurements refer to no measured file")
    if not claims.has_arcs_recorded:
        return Rejection("wrong_schema", "the meta table does not say whether branches were measured")
    return None
