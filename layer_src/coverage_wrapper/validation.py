"""Validation of one raw coverage.py data file before anything trusts it (intake and every merge)."""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass

SQLITE_MAGIC = b"SQLite format 3\x00"
SCHEMA_VERSION = 7
EXPECTED_TABLES = frozenset({"coverage_schema", "meta", "file", "context", "line_bits", "arc", "tracer"})
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


def open_readonly(path: str) -> sqlite3.Connection:
    """Open a data file without ever writing to it or running anything its schema declares."""
    connection = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro&immutable=1", uri=True)
    connection.execute("pragma trusted_schema = off")
    return connection


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
        connection = open_readonly(path)
    except sqlite3.Error as exc:
        return Rejection("corrupt", f"cannot open: {exc}")
    try:
        return _check_contents(connection)
    except sqlite3.Error as exc:
        return Rejection("corrupt", f"SQLite error: {exc}")
    finally:
        connection.close()


def _check_contents(connection: sqlite3.Connection) -> Rejection | None:
    check = connection.execute("pragma quick_check").fetchone()
    if not check or check[0] != "ok":
        return Rejection("corrupt", f"integrity check failed: {check[0] if check else 'no answer'}")
    objects = connection.execute("select type, name from sqlite_master").fetchall()
    hostile = sorted(name for kind, name in objects if kind in ("trigger", "view"))
    if hostile:
        return Rejection("hostile_schema", f"triggers or views are not allowed: {', '.join(hostile)[:200]}")
    tables = {name for kind, name in objects if kind == "table"}
    indexes = [name for kind, name in objects if kind == "index" and not name.startswith("sqlite_autoindex_")]
    if tables - EXPECTED_TABLES or indexes:
        extra = sorted((tables - EXPECTED_TABLES) | set(indexes))
        return Rejection("unexpected_schema", f"objects coverage.py does not create: {', '.join(extra)[:200]}")
    if tables != EXPECTED_TABLES:
        return Rejection("wrong_schema", f"missing tables: {', '.join(sorted(EXPECTED_TABLES - tables))}")
    version = connection.execute("select version from coverage_schema").fetchall()
    if version != [(SCHEMA_VERSION,)]:
        return Rejection("wrong_schema", f"coverage.py schema version {version[:1]} is not {SCHEMA_VERSION}")
    files = connection.execute("select id, path from file").fetchall()
    if len(files) > MAX_MEASURED_FILES:
        return Rejection("too_many_files", f"{len(files)} measured files is over {MAX_MEASURED_FILES}")
    for _, path in files:
        if not isinstance(path, str):
            return Rejection("unsafe_path", "a file path is not text")
        problem = check_path(path)
        if problem:
            return problem
    return _check_measurements(connection)


def _check_measurements(connection: sqlite3.Connection) -> Rejection | None:
    max_numbits = MAX_LINE_NUMBER // 8 + 1
    (oversized,) = connection.execute(
        "select count(*) from line_bits where typeof(numbits) != 'blob' or length(numbits) > ?", (max_numbits,)
    ).fetchone()
    (bad_arcs,) = connection.execute(
        "select count(*) from arc where typeof(fromno) != 'integer' or typeof(tono) != 'integer'"
        " or abs(fromno) > ? or abs(tono) > ?",
        (MAX_LINE_NUMBER, MAX_LINE_NUMBER),
    ).fetchone()
    if oversized or bad_arcs:
        return Rejection("absurd_line_numbers", f"line numbers above {MAX_LINE_NUMBER} or not numbers")
    (orphans,) = connection.execute(
        "select (select count(*) from line_bits where file_id not in (select id from file))"
        " + (select count(*) from arc where file_id not in (select id from file))"
    ).fetchone()
    if orphans:
        return Rejection("inconsistent", f"{orphans} measurements refer to no measured file")
    (has_arcs,) = connection.execute("select count(*) from meta where key = 'has_arcs'").fetchone()
    if not has_arcs:
        return Rejection("wrong_schema", "the meta table does not say whether branches were measured")
    return None
