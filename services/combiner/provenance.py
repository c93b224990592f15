"""Which raw files a combined or partial data file holds, stored inside that file so data and list change together."""

from __future__ import annotations

import json

from coverage_wrapper import datafile

_RAW_KEYS = "lambda_coverage_raw_keys"
_GENERATION = "lambda_coverage_generation"


def write_provenance(path: str, raw_keys: set[str] | list[str], generation: int = 0) -> None:
    """Record the raw keys in the coverage.py `meta` table, which coverage.py ignores for unknown keys."""
    datafile.write_meta(path, {_RAW_KEYS: json.dumps(sorted(raw_keys)), _GENERATION: str(generation)})


def read_provenance(path: str) -> tuple[set[str], int]:
    """The raw keys and generation recorded in a data file; empty for data written by anything else."""
    rows = datafile.read_meta(path, (_RAW_KEYS, _GENERATION))
    raw_keys = json.loads(rows[_RAW_KEYS]) if _RAW_KEYS in rows else []
    return set(raw_keys), int(rows.get(_GENERATION) or 0)
