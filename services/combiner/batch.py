"""Merging one batch of raw files (one child execution of the Distributed Map) into a partial data file in S3."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from coverage_wrapper import keys
from coverage_wrapper.merge import merge_data_files
from coverage_wrapper.validation import Rejection

from lambda_coverage.services import storage
from lambda_coverage.services.uploader.quarantine import quarantine_object
from lambda_coverage.services.settings import PipelineSettings

from .plan import Group, manifest_raw_keys, read_batch
from .provenance import env_invocations, is_merged, write_env_invocations, write_provenance


def batch_objects(s3: Any, settings: PipelineSettings, group: Group, after: str, last: str) -> dict[str, str]:
    """The group's raw keys in the range (after, last], with their ETags."""
    selected = {}
    for item in storage.list_objects(s3, settings.bucket, group.raw_prefix(settings.prefix), start_after=after):
        if item["Key"] > last:
            break
        selected[item["Key"]] = item["ETag"]
    return selected


def fetch_raw(s3: Any, settings: PipelineSettings, key: str, local: str) -> tuple[dict[str, str], Rejection | None] | None:
    """Download one raw object; None when it is gone, a rejection when it is too big to read."""
    try:
        response = storage.get_object(s3, settings.bucket, key)
    except storage.NotFound:
        return None
    metadata = response.get("Metadata", {})
    if response["ContentLength"] > settings.max_file_bytes:
        response["Body"].close()
        size = response["ContentLength"]
        return metadata, Rejection("oversize", f"{size} bytes is over the {settings.max_file_bytes}-byte limit")
    with open(local, "wb") as handle:
        shutil.copyfileobj(response["Body"], handle)
    return metadata, None


def merge_batch(s3: Any, settings: PipelineSettings, group: Group, token: str, index: int, rebuild: bool) -> dict[str, Any]:
    """Merge batch `index` of the combine `token` into its partial; bad files are quarantined, never skipped."""
    batch = read_batch(s3, settings, group, token, index)
    listed = batch_objects(s3, settings, group, batch.get("after", ""), batch["last"])
    if not rebuild:
        # A key already merged is merged again only when it was uploaded again with other content.
        already = manifest_raw_keys(s3, settings, group)
        listed = {key: etag for key, etag in listed.items() if not is_merged(key, etag, already)}
    wanted = list(listed)
    outcome: dict[str, Any] = {"partial_key": None, "merged": 0, "quarantined": 0, "missing": 0}
    with tempfile.TemporaryDirectory(prefix="merge-") as scratch:
        local_to_key: dict[str, str] = {}
        metadata_of: dict[str, dict[str, str]] = {}
        for position, key in enumerate(wanted):
            raw = keys.parse_raw_key(key, settings.prefix)
            if raw is None or raw.group != (group.function, group.date, group.version):
                outcome["quarantined"] += _quarantine(s3, settings, key, Rejection("off_scheme_key", "the key does not follow the raw key scheme"))
                continue
            local = os.path.join(scratch, f"{position:06d}.coverage")
            fetched = fetch_raw(s3, settings, key, local)
            if fetched is None:
                outcome["missing"] += 1
                continue
            metadata_of[key], rejection = fetched
            if rejection is not None:
                outcome["quarantined"] += _quarantine(s3, settings, key, rejection, metadata_of[key])
                continue
            local_to_key[local] = key
        partial_local = os.path.join(scratch, "partial.sqlite")
        result = merge_data_files(list(local_to_key), partial_local)
        for local, rejection in result.rejected:
            key = local_to_key[local]
            outcome["quarantined"] += _quarantine(s3, settings, key, rejection, metadata_of[key])
        if result.merged:
            write_provenance(partial_local, {(local_to_key[p], listed[local_to_key[p]]) for p in result.merged})
            merged_keys = [local_to_key[p] for p in result.merged]
            write_env_invocations(partial_local, env_invocations(merged_keys, metadata_of, settings.prefix))
            target = group.partial_key(settings.prefix, token, index)
            storage.upload_file(s3, settings.bucket, target, partial_local)
            outcome["partial_key"] = target
            outcome["merged"] = len(result.merged)
    return outcome


def _quarantine(s3: Any, settings: PipelineSettings, key: str, rejection: Rejection, metadata: Any = None) -> int:
    return 1 if quarantine_object(s3, settings, key, rejection, metadata) is not None else 0
