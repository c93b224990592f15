"""Validation of one raw coverage.py data file before anything trusts it (intake and every merge)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from . import datafile

SQLITE_MAGIC = b"SQLite format 3\x00"
SCHEMA_VERSION = datafile.SCHEMA_VERSION
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_MEASURED_FILES = 20000
MAX_LINE_NUMBER = 1_000_000
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


def validate_data_file(path: str, max_bytes: int = MAX_FILE_BYTES) -> Rejection | None:
    """None when the file is a sane coverage.py data file, otherwise the first reason it is not."""
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
            return _check_claims(datafile.read_claims(connection))
    except datafile.DataFileError as exc:
        return Rejection(exc.code, exc.message)


def _check_claims(claims: datafile.Claims) -> Rejection | None:
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
        if claim.max_line > MAX_LINE_NUMBER:
            return Rejection("absurd_line_numbers", f"{claim.path[:200]} claims line {claim.max_line}, above {MAX_LINE_NUMBER}")
    if claims.orphan_rows:
        return Rejection("inconsistent", f"{claims.orphan_rows} measurements refer to no measured file")
    if not claims.has_arcs_recorded:
        return Rejection("wrong_schema", "the meta table does not say whether branches were measured")
    return None
