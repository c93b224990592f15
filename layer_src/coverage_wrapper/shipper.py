"""Ships outbox entries to S3: relative paths, code version, source snapshot, key scheme, metadata.

Runs in the extension process (or the in-process fallback thread), never on the response path.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from . import keys, log
from .config import Config
from .datafile import DataFileError, open_data_file, relativize
from .imported import record_imported_before
from .outbox import Entry, Outbox
from .sources import SourceFile, code_version, scan_config, scan_sources

_MAX_BLOB_BYTES = 2 * 1024 * 1024
# S3 answered and refused this very request (not the bucket, the credentials or the network) this often:
# the entry is set aside rather than retried forever.
_MAX_REFUSALS = 5
_ENV_ID = re.compile(r"^[0-9a-f]{8}$")
# S3 errors that are about where the data goes or who sends it, never about the entry itself.
_DESTINATION_ERRORS = frozenset({
    "AccessDenied", "AllAccessDisabled", "AccountProblem", "ExpiredToken", "InvalidAccessKeyId", "InvalidToken",
    "NoSuchBucket", "PermanentRedirect", "RequestTimeTooSkewed", "SignatureDoesNotMatch", "TokenRefreshRequired",
    "AuthorizationHeaderMalformed", "IllegalLocationConstraintException",
})
_versions: dict[tuple, tuple[str, list[SourceFile]]] = {}
_configs: dict[str, tuple[SourceFile, ...]] = {}


@dataclass(frozen=True)
class Destination:
    """Where an entry goes: the bucket and key prefix of the process that flushed it."""

    bucket: str
    prefix: str

    def manifest_url(self, function: str, version: str) -> str:
        return f"s3://{self.bucket}/{keys.sources_manifest_key(self.prefix, function, version)}"


class EntryRejected(Exception):
    """An outbox entry that can never be uploaded as it is: set aside with its reason, never retried."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def refused_by_s3(exc: BaseException) -> bool:
    """True when S3 answered and refused this very request, so the entry itself may be at fault.

    Everything else is transport trouble (network, 5xx, throttling, credentials, the bucket, a full
    /tmp): it says nothing about the entry, which stays for a retry with backoff. The transient and
    throttling cases are botocore's own, from its standard retry mode.
    """
    try:
        from botocore.exceptions import ClientError, ParamValidationError
    except ImportError:  # no AWS SDK at all: nothing S3 could have answered
        return False
    if isinstance(exc, ParamValidationError):
        return True
    if not isinstance(exc, ClientError):
        return False
    from botocore.retries.standard import RetryContext, ThrottledRetryableChecker, TransientRetryableChecker

    context = RetryContext(attempt_number=1, parsed_response=exc.response, caught_exception=exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return not (
        status >= 500
        or status in (401, 403, 429)
        or exc.response.get("Error", {}).get("Code") in _DESTINATION_ERRORS
        or TransientRetryableChecker().is_retryable(context)
        or ThrottledRetryableChecker().is_retryable(context)
    )


def s3_client(config: Config) -> Any:
    """An S3 client with botocore's standard retry mode; honours AWS_ENDPOINT_URL(_S3) like any boto3 client.

    Plain botocore, not boto3: lighter to import, and importable at interpreter exit (boto3's transfer
    manager registers an atexit hook, which Python refuses once shutdown has begun).
    """
    import botocore.session
    from botocore.config import Config as BotoConfig

    return botocore.session.get_session().create_client(
        "s3",
        config=BotoConfig(
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=min(5.0, config.upload_timeout),
            read_timeout=config.upload_timeout,
        ),
    )


def version_of(meta: dict) -> tuple[str, list[SourceFile]]:
    """The code version for an entry: its label if set, else the hash of the measured tree (cached)."""
    cache_key = (meta["source_root"], tuple(meta.get("include_patterns", ())), tuple(meta.get("exclude_patterns", ())))
    if cache_key not in _versions:
        files = scan_sources(*cache_key)
        _versions[cache_key] = (code_version(files), files)
    computed, files = _versions[cache_key]
    return (meta.get("code_version_label") or computed), files


def _precondition_failed(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("PreconditionFailed", "412", "ConditionalRequestConflict")


def _put_if_absent(client: Any, bucket: str, key: str, body: bytes, content_type: str) -> bool:
    """PUT only when the key does not exist yet; False when it already did."""
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*")
        return True
    except Exception as exc:
        if _precondition_failed(exc):
            return False
        raise


def upload_snapshot(
    client: Any, destination: Destination, outbox: Outbox, function: str, version: str, files: list[SourceFile],
    deadline: float | None = None, config: tuple[SourceFile, ...] = (),
) -> str:
    """Upload the blobs, then the manifest, of a code version to a destination; returns what happened.

    Blobs go first and are write-once (If-None-Match): a manifest therefore only ever names blobs that
    are there, even when a process is killed half-way, and the next environment to flush finishes the
    job. Past `deadline` (time.monotonic()), nothing new is started: another drain, or another execution
    environment of the same code version, does it. `config` (coverage.py's config files at the source
    root) is listed apart from the measured files, which alone make the code version; one without a
    sha256 (too large) is listed with its size only, so the reporter can say why it is not applied.
    """
    state = outbox.read_state()
    snapshots = state.get("snapshots", {})
    # Per destination: the same function and code version shipped to another bucket or prefix needs its own.
    marker = destination.manifest_url(function, version)
    if snapshots.get(marker) == "done":
        return "known"
    uploaded = 0
    for source in (*files, *config):
        if deadline is not None and time.monotonic() > deadline:
            return "postponed"
        if source.size > _MAX_BLOB_BYTES or not source.sha256:
            continue
        with open(source.absolute_path, "rb") as handle:
            content_type = "text/x-python" if source.relative_path.endswith(".py") else "text/plain"
            if _put_if_absent(client, destination.bucket, keys.source_blob_key(destination.prefix, source.sha256), handle.read(), content_type):
                uploaded += 1
    manifest = {
        "function": function,
        "code_version": version,
        "files": {f.relative_path: {"sha256": f.sha256, "size": f.size} for f in files},
        "config": {f.relative_path: ({"sha256": f.sha256, "size": f.size} if f.sha256 else {"size": f.size}) for f in config},
    }
    body = json.dumps(manifest, sort_keys=True, indent=1).encode()
    created = _put_if_absent(client, destination.bucket, keys.sources_manifest_key(destination.prefix, function, version), body, "application/json")
    snapshots[marker] = "done"
    outbox.write_state(dict(outbox.read_state(), snapshots=snapshots))
    if not created and not uploaded:
        return "exists"
    log.info("Source snapshot uploaded", operation="source_snapshot", code_version=version, files=len(files), blobs_uploaded=uploaded)
    return "uploaded"


def _object_metadata(meta: dict, version: str) -> dict[str, str]:
    return {
        "function": str(meta["function"]),
        "function-version": str(meta.get("function_version", "")),
        "code-version": version,
        "runtime": str(meta.get("runtime", "")),
        "layer-version": str(meta.get("layer_version", "")),
        "invocations": str(meta.get("invocations", 0)),
        "first-invocation": str(meta.get("first_invocation", "")),
        "last-invocation": str(meta.get("last_invocation", "")),
        "source-root": str(meta.get("source_root", "")),
        "core": str(meta.get("core", "")),
        "branch": "true" if meta.get("branch") else "false",
    }


def _checked_meta(entry: Entry) -> dict[str, Any]:
    """The entry's metadata, with every field the upload needs; EntryRejected when it cannot be used."""
    try:
        meta = entry.read_meta()
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise EntryRejected("bad_sidecar", f"the metadata sidecar is not a readable JSON object: {exc}") from None
    problems = []
    if not isinstance(meta.get("function"), str) or not meta["function"].strip():
        problems.append("'function' is missing")
    flushed_at = meta.get("flushed_at")
    if isinstance(flushed_at, bool) or not isinstance(flushed_at, (int, float)) or not math.isfinite(flushed_at) or flushed_at <= 0:
        problems.append("'flushed_at' is not a time")
    if not isinstance(meta.get("env"), str) or not _ENV_ID.match(meta["env"]):
        problems.append("'env' is not 8 hex characters")
    if isinstance(meta.get("seq"), bool) or not isinstance(meta.get("seq"), int) or meta["seq"] < 0:
        problems.append("'seq' is not a flush counter")
    if not isinstance(meta.get("source_root"), str) or not os.path.isabs(meta["source_root"]):
        problems.append("'source_root' is not an absolute path")
    if "bucket" not in meta or not isinstance(meta["bucket"], (str, type(None))):
        problems.append("'bucket' is missing: the entry has no destination")
    if not isinstance(meta.get("prefix"), str):
        problems.append("'prefix' is missing: the entry has no destination")
    if problems:
        raise EntryRejected("bad_metadata", "; ".join(problems))
    return meta


def _check_data_file(path: str) -> None:
    """EntryRejected unless the entry's data file is there and is a coverage.py SQLite data file."""
    if not os.path.isfile(path):
        raise EntryRejected("missing_data", "the data file is missing")
    try:
        with open_data_file(path):
            pass
    except DataFileError as exc:
        raise EntryRejected("not_coverage_data", f"not a coverage.py data file ({exc.code}): {exc.message}") from None


@dataclass(frozen=True)
class SnapshotJob:
    """The source snapshot an uploaded entry calls for."""

    destination: Destination
    function: str
    version: str
    files: tuple[SourceFile, ...]
    config: tuple[SourceFile, ...] = ()


def ship_entry(client: Any, outbox: Outbox, entry: Entry, meta: dict[str, Any] | None = None) -> tuple[str, SnapshotJob]:
    """Upload one outbox entry's data to its own destination; returns its S3 key and the source snapshot it
    calls for (uploaded after the data: data first when time is short). EntryRejected when the entry itself
    is unusable."""
    meta = _checked_meta(entry) if meta is None else meta
    destination = Destination(str(meta["bucket"]), keys.normalize_prefix(meta["prefix"]))
    _check_data_file(entry.data_path)
    version, files = version_of(meta)
    root = str(meta["source_root"])
    if root not in _configs:
        _configs[root] = tuple(scan_config(root))
    function = keys.sanitize_segment(str(meta["function"]))
    flushed_at = datetime.fromtimestamp(float(meta["flushed_at"]), timezone.utc)
    key = keys.raw_key(destination.prefix, function, flushed_at, version, str(meta["env"]), int(meta["seq"]))
    with tempfile.TemporaryDirectory() as scratch:
        prepared = os.path.join(scratch, "upload.coverage")
        shutil.copyfile(entry.data_path, prepared)
        relativize(prepared, str(meta["source_root"]))
        record_imported_before(prepared, meta.get("imported_before"), str(meta["source_root"]))
        size = os.path.getsize(prepared)
        began = time.perf_counter()
        with open(prepared, "rb") as body:
            client.put_object(
                Bucket=destination.bucket,
                Key=key,
                Body=body,
                ContentType="application/vnd.sqlite3",
                Metadata=_object_metadata(meta, keys.sanitize_segment(version)),
            )
    log.info(
        "Coverage file uploaded successfully",
        operation="s3_upload",
        s3_key=key,
        bucket=destination.bucket,
        file_size=size,
        upload_time_ms=round((time.perf_counter() - began) * 1000, 2),
    )
    return key, SnapshotJob(destination, function, keys.sanitize_segment(version), tuple(files), _configs[root])


def _upload_snapshots(client: Any, outbox: Outbox, jobs: list[SnapshotJob], deadline: float | None) -> None:
    for job in dict.fromkeys(jobs):
        try:
            upload_snapshot(client, job.destination, outbox, job.function, job.version, list(job.files), deadline, job.config)
        except Exception as exc:  # reports can live without sources until a later drain uploads them
            log.warning("Source snapshot upload failed; will retry", error=str(exc), operation="source_snapshot")


def _set_aside(outbox: Outbox, entry: Entry, reason: str, detail: str) -> None:
    try:
        where = outbox.set_aside(entry, reason, detail)
    except OSError as exc:  # cannot even move it: delete it, or it would come back at every drain
        outbox.remove(entry)
        where = f"deleted ({exc})"
    log.error(
        "Coverage outbox entry set aside: it cannot be uploaded",
        operation="outbox_reject",
        entry=entry.name,
        reason=reason,
        error=detail,
        rejected_path=where,
    )


def drain(outbox: Outbox, config: Config, *, everything: bool = False, deadline: float | None = None, client: Any = None) -> dict[str, Any]:
    """Upload due outbox entries (all of them when `everything`), each to the destination it names.

    An entry that cannot be uploaded is set aside and the drain goes on; transport trouble (network,
    5xx, throttling, credentials) keeps the entry for a retry with backoff and ends this drain. Entries
    flushed where no bucket was configured stay, within the outbox bound. `config` gives the upload
    timeouts only. Live data files of processes that ended, and what interrupted flushes left, are removed.
    """
    summary: dict[str, Any] = {"uploaded": [], "failed": 0, "rejected": 0}
    snapshots: list[SnapshotJob] = []
    with outbox.drain_lock():
        outbox.remove_stale_live()
        outbox.sweep()
        entries = outbox.entries() if everything else outbox.due()
        for entry in entries:
            if deadline is not None and time.monotonic() > deadline:
                break
            try:
                meta = _checked_meta(entry)
                if not meta["bucket"]:
                    continue  # measured but not to be uploaded (no COVERAGE_S3_BUCKET where it was flushed)
                if client is None:
                    client = s3_client(config)
                key, snapshot = ship_entry(client, outbox, entry, meta)
                summary["uploaded"].append(key)
                snapshots.append(snapshot)
                outbox.remove(entry)
                outbox.write_state(dict(outbox.read_state(), last_upload={"status": "ok", "s3_key": summary["uploaded"][-1], "at": time.time()}))
            except FileNotFoundError:
                continue  # dropped by the outbox bound since the listing: it logged that
            except EntryRejected as exc:
                summary["rejected"] += 1
                _set_aside(outbox, entry, exc.reason, exc.detail)
            except Exception as exc:
                summary["failed"] += 1
                outbox.write_state(dict(outbox.read_state(), last_upload={"status": "error", "error": str(exc)[:300], "at": time.time()}))
                if not refused_by_s3(exc):
                    outbox.record_failure(entry, str(exc))
                    log.error("Coverage upload failed; the file stays in the outbox", operation="s3_upload", entry=entry.name, error=str(exc))
                    break  # S3 is unreachable or refusing everything: the rest waits for the next drain
                refusals = outbox.record_failure(entry, str(exc), refused=True)
                if refusals >= _MAX_REFUSALS:
                    summary["rejected"] += 1
                    _set_aside(outbox, entry, "refused", f"{refusals} attempts failed; last: {type(exc).__name__}: {exc}")
                else:
                    log.error("Coverage upload of one file failed; it stays in the outbox", operation="s3_upload", entry=entry.name, error=str(exc), attempts=refusals)
        _upload_snapshots(client, outbox, snapshots, deadline)
    summary["remaining"] = len(outbox.entries())
    return summary
