"""Committing a combine: partials + the existing combined data → new combined data and manifest, by S3 conditional writes.

`coverage.sqlite` is the commit point: it records which raw files it holds (see provenance), and
it is only replaced with `If-Match` on the ETag that was read (`If-None-Match: *` when new). A
combine that loses the race reads the winner's data and merges again, so neither loses work.
`manifest.json` follows with the same kind of write and only ever moves to a newer generation.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from typing import Any

from coverage_wrapper import keys
from coverage_wrapper.merge import Measurements, merge_data_files

from lambda_coverage.services import storage
from lambda_coverage.services.uploader.quarantine import quarantine_object
from lambda_coverage.services.settings import PipelineSettings

from .batch import fetch_raw
from .plan import Group
from . import since_deploy
from .provenance import (
    RawObject,
    etags_by_key,
    most_invocations,
    raw_keys_of,
    read_env_invocations,
    read_provenance,
    write_env_invocations,
    write_provenance,
)


class CommitConflict(storage.Conflict):
    """Other combines kept winning the conditional write; the state machine retries the whole task."""


def commit(s3: Any, settings: PipelineSettings, group: Group, token: str, rebuild: bool = False) -> dict[str, Any]:
    """Fold the partials of the combine `token` into the group's combined data; with `rebuild`, they replace it.

    `report` in the result says whether the group's reports must be rendered: the data changed, or
    its reports are older than the data (a commit whose answer was lost, then retried, finds its own
    work done and must still get it reported).
    """
    data_key = group.data_key(settings.prefix)
    partial_keys = list(storage.list_keys(s3, settings.bucket, group.partials_prefix(settings.prefix, token)))
    with tempfile.TemporaryDirectory(prefix="commit-") as scratch:
        partials = []
        partial_raw: set[RawObject] = set()
        partial_invocations: list[dict[str, int]] = []
        for index, key in enumerate(partial_keys):
            local = os.path.join(scratch, f"partial-{index:05d}.sqlite")
            # A partial already gone was consumed by an earlier attempt of this same commit.
            if storage.download(s3, settings.bucket, key, local) is not None:
                partials.append(local)
                partial_raw |= read_provenance(local)[0]
                partial_invocations.append(read_env_invocations(local))

        def attempt() -> dict[str, Any]:
            current = os.path.join(scratch, "current.sqlite")
            etag = storage.download(s3, settings.bucket, data_key, current)
            current_raw, generation = read_provenance(current) if etag else (set(), 0)
            if not rebuild and partial_raw <= current_raw:
                _update_manifest(s3, settings, group, current_raw, generation, etag)
                return {"changed": False, "files": len(raw_keys_of(current_raw)), "added": 0, "data": current if etag else None}
            measurements = Measurements()
            for path in ([] if rebuild or not etag else [current]) + partials:
                measurements.add_file(path)
            raw_keys = set(partial_raw) if rebuild else current_raw | partial_raw
            if rebuild:
                # Files a concurrent combine committed after this rebuild was planned are kept; a key the
                # rebuild listed itself is represented by its current content only.
                rebuilt = set(raw_keys_of(partial_raw))
                kept = sorted(raw for raw in current_raw if raw[0] not in rebuilt)
                raw_keys |= _merge_raw(s3, settings, kept, measurements, scratch)
            combined = os.path.join(scratch, "combined.sqlite")
            measurements.write(combined)
            write_provenance(combined, raw_keys, generation + 1)
            current_invocations = read_env_invocations(current) if etag else {}
            write_env_invocations(combined, most_invocations(current_invocations, *partial_invocations))
            with open(combined, "rb") as handle:
                new_etag = storage.put_if_unchanged(
                    s3, settings.bucket, data_key, handle.read(), etag, ContentType="application/vnd.sqlite3"
                )
            _update_manifest(s3, settings, group, raw_keys, generation + 1, new_etag)
            return {"changed": True, "files": len(raw_keys_of(raw_keys)), "added": len(raw_keys - current_raw), "data": combined}

        # Losing the race means another combine committed first: read its data and merge again.
        outcome = storage.retry_on_conflict(attempt, data_key, exhausted=CommitConflict)
        # The version's since-deploy data takes the day's data as committed (also when this commit found its
        # work done: an earlier attempt may have committed the day and failed before this fold).
        data = outcome.pop("data")
        outcome["since_deploy_changed"] = bool(data) and since_deploy.fold_day(s3, settings, group, data)["changed"]
    for key in partial_keys + [group.batches_key(settings.prefix, token)]:
        storage.delete_object(s3, settings.bucket, key)
    outcome["report"] = outcome["changed"] or outcome["since_deploy_changed"] or _reports_stale(s3, settings, group)
    return {**group.as_dict(), **outcome}


def _reports_stale(s3: Any, settings: PipelineSettings, group: Group) -> bool:
    """True when the group has combined data and its summary.json is missing or not newer than that data."""
    data = storage.head_object(s3, settings.bucket, group.data_key(settings.prefix))
    if data is None:
        return False
    summary = storage.head_object(s3, settings.bucket, keys.combined_prefix(settings.prefix, group.function, group.date, group.version) + "summary.json")
    return summary is None or summary["LastModified"] <= data["LastModified"]


def _merge_raw(s3: Any, settings: PipelineSettings, raw_objects: list[RawObject], into: Measurements, scratch: str) -> set[RawObject]:
    """Add raw files straight into `into`; the raw objects that made it. Bad ones go to quarantine."""
    local_to_key = {}
    etag_of = dict(raw_objects)
    for index, (key, _) in enumerate(raw_objects):
        local = os.path.join(scratch, f"raw-{index:06d}.coverage")
        fetched = fetch_raw(s3, settings, key, local)
        if fetched is None:
            continue
        metadata, rejection = fetched
        if rejection is not None:
            quarantine_object(s3, settings, key, rejection, metadata)
            continue
        local_to_key[local] = key
    result = merge_data_files(list(local_to_key))
    for local, rejection in result.rejected:
        quarantine_object(s3, settings, local_to_key[local], rejection)
    for local in result.merged:
        into.add_file(local)
    return {(local_to_key[p], etag_of[local_to_key[p]]) for p in result.merged}


def _update_manifest(
    s3: Any, settings: PipelineSettings, group: Group, raw_objects: set[RawObject], generation: int, data_etag: str | None
) -> None:
    """Move manifest.json forward to `generation`; a newer manifest already there wins."""
    if data_etag is None:
        return

    def advance(current: storage.StoredObject | None) -> bytes | None:
        existing = json.loads(current.body) if current else {}
        if existing.get("generation", 0) >= generation:
            return None
        manifest = {
            **group.as_dict(),
            "generation": generation,
            "data_etag": data_etag,
            "files": len(raw_keys_of(raw_objects)),
            "raw_keys": raw_keys_of(raw_objects),
            "raw_etags": etags_by_key(raw_objects),
            "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        return json.dumps(manifest, indent=1).encode()

    key = group.manifest_key(settings.prefix)
    try:
        storage.update_object(s3, settings.bucket, key, advance, key, ContentType="application/json")
    except storage.Conflict as exc:
        raise CommitConflict(str(exc)) from exc
