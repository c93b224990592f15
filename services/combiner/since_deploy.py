"""Since-deploy data of a code version ({p}versions/{function}/{version}/): the union of its day groups' combined data.

Each commit folds its day's data in, with the same kind of conditional write as the day's own data
(`If-Match` on the ETag read, read again and fold again when another commit won), so it grows
incrementally and never needs raw files, which expire. A fold records the day's data generation: the
same day folded again changes nothing, and days may arrive in any order. The console input
`{"function", "version", "mode": "since-deploy"}` rebuilds it from the day groups alone.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from typing import Any

from coverage_wrapper import datafile, keys
from coverage_wrapper.merge import Measurements

from lambda_coverage.services import storage
from lambda_coverage.services.settings import PipelineSettings

from .plan import Group
from .provenance import most_invocations, raw_keys_of, read_env_invocations, read_provenance, write_env_invocations

DATA = "coverage.sqlite"
MANIFEST = "manifest.json"
_DAYS = "lambda_coverage_version_days"
_GENERATION = "lambda_coverage_generation"


class SinceDeployConflict(storage.Conflict):
    """Other commits of the same version kept winning the conditional write; the task is retried."""


def data_key(prefix: str, function: str, version: str) -> str:
    return keys.versions_prefix(prefix, function, version) + DATA


def manifest_key(prefix: str, function: str, version: str) -> str:
    return keys.versions_prefix(prefix, function, version) + MANIFEST


def read_days(path: str) -> tuple[dict[str, dict[str, int]], int]:
    """The day groups a since-deploy data file holds (date → the day data's generation and raw files), and its generation."""
    rows = datafile.read_meta(path, (_DAYS, _GENERATION))
    try:
        days = json.loads(rows.get(_DAYS) or "{}")
    except ValueError:
        days = {}
    generation = rows.get(_GENERATION) or "0"
    return (days if isinstance(days, dict) else {}), int(generation) if str(generation).isdigit() else 0


def _day_record(day_path: str, prefix: str) -> tuple[dict[str, int], dict[str, int]]:
    """What a fold records of a day: its data generation and raw file count; and its environments' invocations."""
    raw_objects, generation = read_provenance(day_path)
    raw_keys = raw_keys_of(raw_objects)
    envs = {raw.env: 0 for raw in (keys.parse_raw_key(key, prefix) for key in raw_keys) if raw is not None}
    return {"generation": generation, "raw_files": len(raw_keys)}, most_invocations(envs, read_env_invocations(day_path))


def _write(measurements: Measurements, path: str, days: dict, invocations: dict[str, int], generation: int) -> bytes:
    measurements.write(path)
    datafile.write_meta(path, {_DAYS: json.dumps(dict(sorted(days.items()))), _GENERATION: str(generation)})
    write_env_invocations(path, invocations)
    with open(path, "rb") as handle:
        return handle.read()


def fold_day(s3: Any, settings: PipelineSettings, group: Group, day_path: str) -> dict[str, Any]:
    """Fold one day group's combined data (as committed, at `day_path`) into its version's since-deploy data."""
    key = data_key(settings.prefix, group.function, group.version)
    record, invocations = _day_record(day_path, settings.prefix)
    with tempfile.TemporaryDirectory(prefix="since-deploy-") as scratch:

        def attempt() -> dict[str, Any]:
            current = os.path.join(scratch, "current.sqlite")
            etag = storage.download(s3, settings.bucket, key, current)
            days, generation = read_days(current) if etag else ({}, 0)
            held = days.get(group.date) or {}
            if etag and int(held.get("generation", -1)) >= record["generation"]:
                return {"changed": False, "etag": etag, "days": days, "invocations": read_env_invocations(current), "generation": generation}
            measurements = Measurements()
            for path in ([current] if etag else []) + [day_path]:
                measurements.add_file(path)
            days = {**days, group.date: record}
            merged_invocations = most_invocations(read_env_invocations(current) if etag else {}, invocations)
            body = _write(measurements, os.path.join(scratch, "folded.sqlite"), days, merged_invocations, generation + 1)
            new_etag = storage.put_if_unchanged(s3, settings.bucket, key, body, etag, ContentType="application/vnd.sqlite3")
            return {"changed": True, "etag": new_etag, "days": days, "invocations": merged_invocations, "generation": generation + 1}

        outcome = storage.retry_on_conflict(attempt, key, exhausted=SinceDeployConflict)
    _update_manifest(s3, settings, group.function, group.version, outcome)
    return {"changed": outcome["changed"], "days": len(outcome["days"])}


def rebuild(s3: Any, settings: PipelineSettings, function: str, version: str) -> dict[str, Any]:
    """Rebuild a version's since-deploy data from its day groups' combined data (never from raw files)."""
    base = f"{keys.normalize_prefix(settings.prefix)}combined/{function}/"
    key = data_key(settings.prefix, function, version)
    with tempfile.TemporaryDirectory(prefix="since-deploy-") as scratch:
        measurements = Measurements()
        days: dict[str, dict[str, int]] = {}
        invocations: dict[str, int] = {}
        for date in sorted(d for d in storage.list_children(s3, settings.bucket, base) if keys.is_date(d)):
            local = os.path.join(scratch, f"{date}.sqlite")
            if storage.download(s3, settings.bucket, keys.combined_data_key(settings.prefix, function, date, version), local) is None:
                continue
            measurements.add_file(local)
            days[date], counted = _day_record(local, settings.prefix)
            invocations = most_invocations(invocations, counted)
        if not days:
            return {"function": function, "version": version, "days": 0, "changed": False}

        def attempt() -> dict[str, Any]:
            current = os.path.join(scratch, "current.sqlite")
            etag = storage.download(s3, settings.bucket, key, current)
            generation = read_days(current)[1] if etag else 0
            body = _write(measurements, os.path.join(scratch, "rebuilt.sqlite"), days, invocations, generation + 1)
            new_etag = storage.put_if_unchanged(s3, settings.bucket, key, body, etag, ContentType="application/vnd.sqlite3")
            return {"changed": True, "etag": new_etag, "days": days, "invocations": invocations, "generation": generation + 1}

        outcome = storage.retry_on_conflict(attempt, key, exhausted=SinceDeployConflict)
    _update_manifest(s3, settings, function, version, outcome)
    return {"function": function, "version": version, "days": len(days), "changed": True, "last_seen": max(days)}


def _update_manifest(s3: Any, settings: PipelineSettings, function: str, version: str, outcome: dict[str, Any]) -> None:
    """manifest.json beside the data: what the reports show of it, moved only to a newer generation."""
    days, invocations = outcome["days"], outcome["invocations"]
    if not days or outcome["etag"] is None:
        return

    def advance(current: storage.StoredObject | None) -> bytes | None:
        existing = json.loads(current.body) if current else {}
        if existing.get("generation", 0) >= outcome["generation"]:
            return None
        manifest = {
            "function": function,
            "version": version,
            "generation": outcome["generation"],
            "data_etag": outcome["etag"],
            "first_seen": min(days),
            "last_seen": max(days),
            "days": len(days),
            "dates": sorted(days),
            "raw_files": sum(int(day.get("raw_files", 0)) for day in days.values()),
            "invocations": sum(invocations.values()),
            "environments": len(invocations),
            "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        return json.dumps(manifest, indent=1).encode()

    key = manifest_key(settings.prefix, function, version)
    try:
        storage.update_object(s3, settings.bucket, key, advance, key, ContentType="application/json")
    except storage.Conflict as exc:
        raise SinceDeployConflict(str(exc)) from exc
