"""The source snapshot of a code version, materialized into a local folder so coverage.py can read real source."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from coverage_wrapper import keys
from coverage_wrapper.sources import CONFIG_FILES, MAX_CONFIG_BYTES
from coverage_wrapper.validation import check_path
from lambda_coverage.services import storage

MAX_SOURCE_BYTES = 5 * 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

NO_SNAPSHOT = "no source snapshot was uploaded for this code version"
UNUSABLE_MANIFEST = "the source manifest is not a JSON object with files"
FOREIGN_MANIFEST = "the source manifest names another function or code version"
NOT_IN_SNAPSHOT = "the file is not in the source snapshot"
BLOB_MISSING = "the source blob is missing"
BLOB_MISMATCH = "the source blob does not match its sha256"
TOO_LARGE = "the source file is too large to render"
UNSAFE_PATH = "the file path is not a plain relative path"
FILE_AND_FOLDER = "the source manifest has this path both as a file and as a folder"
UNWRITABLE = "the source file could not be written"
CONFIG_TOO_LARGE = f"it is larger than {MAX_CONFIG_BYTES // 1024} KiB, so the layer did not upload it"


@dataclass
class SourceSnapshot:
    """Which files have source on disk (relative path → absolute path) and why the others do not.

    `never_executed` holds the snapshot's files that no invocation executed (absent from the data):
    reported at 0% when their source is there, and listed in `skipped` with the reason when it is not.
    `config_unavailable` names the coverage.py config files the snapshot lists but could not place, with why.
    """

    root: str
    manifest_found: bool = False
    available: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    never_executed: set[str] = field(default_factory=set)
    skipped: dict[str, str] = field(default_factory=dict)
    config_unavailable: dict[str, str] = field(default_factory=dict)


def _file_and_folder(wanted: list[str], measured: set[str]) -> set[str]:
    """Paths that cannot all exist on disk because one is a folder of another (`a.py` and `a.py/b.py`).

    Of each clashing pair one is left out: the one no invocation executed, else the deeper one.
    """
    files = set(wanted)
    left_out = set()
    for path in wanted:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder in files:
                left_out.add(folder if folder not in measured and path in measured else path)
    return left_out


def read_manifest(client: Any, bucket: str, prefix: str, function: str, version: str) -> tuple[dict[str, Any] | None, str]:
    """The snapshot's files (relative path → {"sha256", "size"}), or None and why there is no usable manifest."""
    document, problem = read_manifest_document(client, bucket, prefix, function, version)
    return (document["files"] if document is not None else None), problem


def read_manifest_document(client: Any, bucket: str, prefix: str, function: str, version: str) -> tuple[dict[str, Any] | None, str]:
    """The snapshot's whole manifest (its "files", and its "config" files when the layer found any), or None and why.

    Only the manifest under the group's own function is read, and only when it names that function
    and code version: the layer writes both, and each function may write under its own name only.
    """
    stored = storage.read_object(client, bucket, keys.sources_manifest_key(prefix, function, version))
    if stored is None:
        return None, NO_SNAPSHOT
    body = stored.body
    try:
        document = json.loads(body)
    except ValueError:
        return None, UNUSABLE_MANIFEST
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        return None, UNUSABLE_MANIFEST
    if document.get("function") != function or document.get("code_version") != version:
        return None, FOREIGN_MANIFEST
    return document, ""


def read_blob(client: Any, bucket: str, prefix: str, sha256: str) -> tuple[bytes | None, str]:
    """A source file's bytes, verified against its sha256; or None and why not."""
    try:
        response = storage.get_object(client, bucket, keys.source_blob_key(prefix, sha256))
    except storage.NotFound:
        return None, BLOB_MISSING
    if int(response.get("ContentLength", 0)) > MAX_SOURCE_BYTES:
        return None, TOO_LARGE
    content = response["Body"].read(MAX_SOURCE_BYTES + 1)
    if len(content) > MAX_SOURCE_BYTES:
        return None, TOO_LARGE
    if hashlib.sha256(content).hexdigest() != sha256:
        return None, BLOB_MISMATCH
    return content, ""


def materialize_sources(
    client: Any,
    bucket: str,
    prefix: str,
    function: str,
    version: str,
    paths: Iterable[str],
    root: str,
    path_prefix: str = "",
) -> SourceSnapshot:
    """Write the source of each measured `path`, and of every other file of the snapshot, to
    `root/{path_prefix}{path}`, verified against its sha256.

    Only plain relative paths are ever written, so nothing in a manifest or data file can place a
    file outside `root`.
    """
    snapshot = SourceSnapshot(root=root)
    measured = set(paths)
    document, no_manifest = read_manifest_document(client, bucket, prefix, function, version)
    manifest = document["files"] if document is not None else None
    snapshot.manifest_found = manifest is not None
    snapshot.never_executed = set(manifest or {}) - measured
    wanted = sorted(measured | snapshot.never_executed)
    clashing = _file_and_folder([p for p in wanted if check_path(p) is None], measured)
    fetches: list[tuple[str, str]] = []
    for path in wanted:
        entry = (manifest or {}).get(path)
        if check_path(path) is not None:
            snapshot.unavailable[path] = UNSAFE_PATH
        elif path in clashing:
            snapshot.unavailable[path] = FILE_AND_FOLDER
        elif manifest is None:
            snapshot.unavailable[path] = no_manifest
        elif not isinstance(entry, dict) or not _SHA256.match(str(entry.get("sha256", ""))):
            snapshot.unavailable[path] = NOT_IN_SNAPSHOT
        else:
            fetches.append((path, entry["sha256"]))

    def fetch(item: tuple[str, str]) -> tuple[str, str | None, str | None]:
        path, sha256 = item
        content, problem = read_blob(client, bucket, prefix, sha256)
        if content is None:
            return path, None, problem
        target = os.path.join(root, *(path_prefix + path).split("/"))
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as handle:
                handle.write(content)
        except OSError as exc:  # one file that cannot be placed never costs the others their source
            return path, None, f"{UNWRITABLE}: {exc.strerror or type(exc).__name__}"
        return path, target, None

    if fetches:
        with ThreadPoolExecutor(max_workers=min(8, len(fetches))) as pool:
            for path, target, reason in pool.map(fetch, fetches):
                if target is not None:
                    snapshot.available[path] = target
                else:
                    snapshot.unavailable[path] = reason or BLOB_MISSING
    for path in snapshot.never_executed:  # nothing ran and nothing to show: skipped, with the reason
        if path in snapshot.unavailable:
            snapshot.skipped[path] = snapshot.unavailable.pop(path)
    if document is not None and isinstance(document.get("config"), dict):
        _materialize_config(client, bucket, prefix, document["config"], os.path.join(root, *path_prefix.split("/")), snapshot)
    return snapshot


def _materialize_config(client: Any, bucket: str, prefix: str, listed: dict[str, Any], folder: str, snapshot: SourceSnapshot) -> None:
    """Write the coverage.py config files the manifest lists into the function's source root, verified against
    their sha256; only coverage.py's own file names are ever written."""
    for name in CONFIG_FILES:
        entry = listed.get(name)
        if entry is None:
            continue
        if not isinstance(entry, dict) or not _SHA256.match(str(entry.get("sha256", ""))):
            too_large = isinstance(entry, dict) and isinstance(entry.get("size"), int) and entry["size"] > MAX_CONFIG_BYTES
            snapshot.config_unavailable[name] = CONFIG_TOO_LARGE if too_large else NOT_IN_SNAPSHOT
            continue
        content, problem = read_blob(client, bucket, prefix, entry["sha256"])
        if content is None:
            snapshot.config_unavailable[name] = problem
            continue
        try:
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, name), "wb") as handle:
                handle.write(content)
        except OSError as exc:
            snapshot.config_unavailable[name] = f"{UNWRITABLE}: {exc.strerror or type(exc).__name__}"
