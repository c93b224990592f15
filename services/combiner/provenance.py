"""Which raw objects a combined or partial data file holds, stored inside that file so data and list change together.

A raw object is its key and the ETag it had when listed for merging: a key uploaded again with other
content is another object, merged too (only the function itself may write under its raw prefix, so
it is real coverage of that function), while the same object listed or delivered again is recognised
and merged once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from coverage_wrapper import datafile, keys

RawObject = tuple[str, str]  # (raw key, ETag); the ETag is "" when data written before ETags were recorded holds it

_RAW_KEYS = "lambda_coverage_raw_keys"
_RAW_OBJECTS = "lambda_coverage_raw_objects"
_GENERATION = "lambda_coverage_generation"
_ENV_INVOCATIONS = "lambda_coverage_env_invocations"


def write_provenance(path: str, raw_objects: Iterable[RawObject], generation: int = 0) -> None:
    """Record the raw objects in the coverage.py `meta` table, which coverage.py ignores for unknown keys."""
    objects = sorted(set(raw_objects))
    datafile.write_meta(
        path,
        {
            _RAW_KEYS: json.dumps(sorted({key for key, _ in objects})),
            _RAW_OBJECTS: json.dumps(objects),
            _GENERATION: str(generation),
        },
    )


def read_provenance(path: str) -> tuple[set[RawObject], int]:
    """The raw objects and generation recorded in a data file; empty for data written by anything else."""
    rows = datafile.read_meta(path, (_RAW_KEYS, _RAW_OBJECTS, _GENERATION))
    if _RAW_OBJECTS in rows:
        objects = {(str(key), str(etag)) for key, etag in json.loads(rows[_RAW_OBJECTS])}
    else:
        objects = {(str(key), "") for key in json.loads(rows.get(_RAW_KEYS) or "[]")}
    return objects, int(rows.get(_GENERATION) or 0)


def raw_keys_of(raw_objects: Iterable[RawObject]) -> list[str]:
    """The distinct raw keys of some raw objects, sorted: what a manifest lists."""
    return sorted({key for key, _ in raw_objects})


def etags_by_key(raw_objects: Iterable[RawObject]) -> dict[str, list[str]]:
    """Per raw key, the ETags of its merged contents (more than one when the key was uploaded again)."""
    etags: dict[str, set[str]] = {}
    for key, etag in raw_objects:
        etags.setdefault(key, set()).add(etag)
    return {key: sorted(values - {""}) for key, values in sorted(etags.items())}


def merged_objects(manifest: Mapping[str, Any]) -> dict[str, set[str]]:
    """What a group's manifest.json says is merged: raw key → ETags (empty when the manifest predates ETags)."""
    etags = manifest["raw_etags"] if isinstance(manifest.get("raw_etags"), dict) else {}
    return {str(key): set(etags.get(key) or ()) for key in manifest.get("raw_keys", [])}


def is_merged(key: str, etag: str, merged: Mapping[str, set[str]]) -> bool:
    """True when this content of `key` is in the combined data (any content, for keys merged before ETags were kept)."""
    if key not in merged:
        return False
    return not merged[key] or etag in merged[key]


def env_invocations(raw_keys: Iterable[str], metadata: Mapping[str, Mapping[str, str]], prefix: str) -> dict[str, int]:
    """Per execution environment of the raw keys, the most invocations any of its files counted.

    The layer's `invocations` metadata counts from the environment's start, so its largest value is the
    environment's total; environments without the metadata count 0.
    """
    counts: dict[str, int] = {}
    for key in raw_keys:
        raw = keys.parse_raw_key(key, prefix)
        if raw is None:
            continue
        value = str((metadata.get(key) or {}).get("invocations", "0"))
        counts[raw.env] = max(counts.get(raw.env, 0), int(value) if value.isdigit() else 0)
    return counts


def most_invocations(*counts: Mapping[str, int]) -> dict[str, int]:
    """Per environment, the largest count of any of `counts`: merging the same files again changes nothing."""
    merged: dict[str, int] = {}
    for each in counts:
        for env, value in each.items():
            merged[env] = max(merged.get(env, 0), value)
    return dict(sorted(merged.items()))


def write_env_invocations(path: str, counts: Mapping[str, int]) -> None:
    datafile.write_meta(path, {_ENV_INVOCATIONS: json.dumps(dict(sorted(counts.items())))})


def read_env_invocations(path: str) -> dict[str, int]:
    """Per execution environment, the invocations a data file's raw files counted (empty for data written before)."""
    text = datafile.read_meta(path, (_ENV_INVOCATIONS,)).get(_ENV_INVOCATIONS)
    try:
        counts = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {str(k): v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)} if isinstance(counts, dict) else {}
