"""Ships outbox entries to S3: relative paths, code version, source snapshot, key scheme, metadata.

Runs in the extension process (or the in-process fallback thread), never on the response path.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import time
from datetime import datetime, timezone
from typing import Any

from . import keys, log
from .config import Config
from .outbox import Entry, Outbox
from .sources import SourceFile, code_version, scan_sources

_MAX_BLOB_BYTES = 2 * 1024 * 1024
_versions: dict[tuple, tuple[str, list[SourceFile]]] = {}


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


def relativize(data_path: str, source_root: str) -> None:
    """Store paths relative to the source root; rows of files outside it are removed."""
    root = source_root.rstrip("/") + "/"
    connection = sqlite3.connect(data_path)
    try:
        with connection:
            for file_id, path in connection.execute("select id, path from file").fetchall():
                if path.startswith(root):
                    connection.execute("update file set path = ? where id = ?", (path[len(root) :], file_id))
                elif os.path.isabs(path):
                    for table in ("line_bits", "arc", "tracer"):
                        connection.execute(f"delete from {table} where file_id = ?", (file_id,))
                    connection.execute("delete from file where id = ?", (file_id,))
    finally:
        connection.close()


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


def upload_snapshot(client: Any, config: Config, outbox: Outbox, function: str, version: str, files: list[SourceFile]) -> str:
    """Upload the manifest and missing blobs of a code version, once; returns what happened."""
    state = outbox.read_state()
    snapshots = state.get("snapshots", {})
    marker = f"{function}/{version}"
    if snapshots.get(marker) == "done":
        return "known"
    manifest = {
        "function": function,
        "code_version": version,
        "files": {f.relative_path: {"sha256": f.sha256, "size": f.size} for f in files},
    }
    body = json.dumps(manifest, sort_keys=True, indent=1).encode()
    manifest_key = keys.sources_manifest_key(config.prefix, function, version)
    # The manifest is the claim: whoever creates it uploads the blobs; everyone else stops here.
    if snapshots.get(marker) != "claimed":
        if not _put_if_absent(client, config.bucket, manifest_key, body, "application/json"):
            snapshots[marker] = "done"
            outbox.write_state(dict(outbox.read_state(), snapshots=snapshots))
            return "exists"
        snapshots[marker] = "claimed"
        outbox.write_state(dict(outbox.read_state(), snapshots=snapshots))
    uploaded = 0
    for source in files:
        if source.size > _MAX_BLOB_BYTES:
            continue
        with open(source.absolute_path, "rb") as handle:
            if _put_if_absent(client, config.bucket, keys.source_blob_key(config.prefix, source.sha256), handle.read(), "text/x-python"):
                uploaded += 1
    snapshots[marker] = "done"
    outbox.write_state(dict(outbox.read_state(), snapshots=snapshots))
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


def ship_entry(client: Any, config: Config, outbox: Outbox, entry: Entry) -> str:
    """Upload one outbox entry; returns its S3 key."""
    meta = entry.read_meta()
    version, files = version_of(meta)
    function = keys.sanitize_segment(str(meta["function"]))
    try:
        upload_snapshot(client, config, outbox, function, keys.sanitize_segment(version), files)
    except Exception as exc:  # reports can live without sources; the data upload goes on
        log.warning("Source snapshot upload failed; will retry", error=str(exc), operation="source_snapshot")
    flushed_at = datetime.fromtimestamp(float(meta["flushed_at"]), timezone.utc)
    key = keys.raw_key(config.prefix, function, flushed_at, version, str(meta["env"]), int(meta["seq"]))
    with tempfile.TemporaryDirectory() as scratch:
        prepared = os.path.join(scratch, "upload.coverage")
        shutil.copyfile(entry.data_path, prepared)
        relativize(prepared, str(meta["source_root"]))
        size = os.path.getsize(prepared)
        began = time.perf_counter()
        with open(prepared, "rb") as body:
            client.put_object(
                Bucket=config.bucket,
                Key=key,
                Body=body,
                ContentType="application/vnd.sqlite3",
                Metadata=_object_metadata(meta, keys.sanitize_segment(version)),
            )
    log.info(
        "Coverage file uploaded successfully",
        operation="s3_upload",
        s3_key=key,
        file_size=size,
        upload_time_ms=round((time.perf_counter() - began) * 1000, 2),
    )
    return key


def drain(outbox: Outbox, config: Config, *, everything: bool = False, deadline: float | None = None, client: Any = None) -> dict[str, Any]:
    """Upload due outbox entries (all of them when `everything`); failures stay for a later retry."""
    summary: dict[str, Any] = {"uploaded": [], "failed": 0}
    if not config.bucket:
        return summary
    with outbox.drain_lock():
        entries = outbox.entries() if everything else outbox.due()
        for entry in entries:
            if deadline is not None and time.monotonic() > deadline:
                break
            try:
                if client is None:
                    client = s3_client(config)
                summary["uploaded"].append(ship_entry(client, config, outbox, entry))
                outbox.remove(entry)
                outbox.write_state(dict(outbox.read_state(), last_upload={"status": "ok", "s3_key": summary["uploaded"][-1], "at": time.time()}))
            except (FileNotFoundError, ValueError, KeyError) as exc:
                log.error("Unreadable outbox entry dropped", entry=entry.name, error=str(exc))
                outbox.remove(entry)
            except Exception as exc:
                summary["failed"] += 1
                outbox.record_failure(entry, str(exc))
                outbox.write_state(dict(outbox.read_state(), last_upload={"status": "error", "error": str(exc)[:300], "at": time.time()}))
                log.error("Coverage upload failed; the file stays in the outbox", operation="s3_upload", entry=entry.name, error=str(exc))
                break  # S3 is unreachable or refusing: the rest waits for the next drain
    summary["remaining"] = len(outbox.entries())
    return summary
