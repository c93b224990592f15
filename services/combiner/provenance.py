"""Which raw files a combined or partial data file holds, stored inside that file so data and list change together."""

from __future__ import annotations

import json
import sqlite3

from coverage_wrapper.validation import open_readonly

_RAW_KEYS = "lambda_coverage_raw_keys"
_GENERATION = "lambda_coverage_generation"


def write_provenance(path: str, raw_keys: set[str] | list[str], generation: int = 0) -> None:
    """Record the raw keys in the coverage.py `meta` table, which coverage.py ignores for unknown keys."""
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.executemany(
                "insert or replace into meta (key, value) values (?, ?)",
                [(_RAW_KEYS, json.dumps(sorted(raw_keys))), (_GENERATION, str(generation))],
            )
    finally:
        connection.close()


def read_provenance(path: str) -> tuple[set[str], int]:
    """The raw keys and generation recorded in a data file; empty for data written by anything else."""
    connection = open_readonly(path)
    try:
        rows = dict(connection.execute("select key, value from meta where key in (?, ?)", (_RAW_KEYS, _GENERATION)))
    finally:
        connection.close()
    raw_keys = json.loads(rows[_RAW_KEYS]) if _RAW_KEYS in rows else []
    return set(raw_keys), int(rows.get(_GENERATION) or 0)
