"""The seed's `combine_coverage_files`: merge the raw files under an S3 prefix into one output object."""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

from . import keys, log
from .config import load_config
from .merge import merge_data_files


def _output_key_for(output_key: str, version: str, several: bool) -> str:
    if not several:
        return output_key
    stem, dot, extension = output_key.rpartition(".")
    return f"{stem}.{version}.{extension}" if dot and "/" not in extension else f"{output_key}.{version}"


def combine_coverage_files(bucket_name: str, prefix: str, output_key: str) -> dict[str, Any]:
    """Combine every `.coverage` object under `prefix` into `output_key`, one output per code version.

    A key ending in `.coverage` or `.sqlite` receives the combined coverage.py data file; any other key
    receives JSON with the executed lines per file. Invalid files are skipped and listed with a reason.
    Code versions are never mixed: with several under the prefix, the version is added to the key.
    """
    from .shipper import s3_client

    began = time.perf_counter()
    config = load_config()
    client = s3_client(config)
    groups: dict[str, list[str]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket_name, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".coverage"):
                parsed = keys.parse_raw_key(item["Key"], config.prefix)
                groups.setdefault(parsed.version if parsed else "unversioned", []).append(item["Key"])
    if not groups:
        return {"status": "no_files", "bucket": bucket_name, "prefix": prefix, "files_combined": 0, "outputs": []}
    outputs = []
    skipped = []
    combined = 0
    with tempfile.TemporaryDirectory() as scratch:
        for version, object_keys in sorted(groups.items()):
            local_paths = {}
            for index, key in enumerate(object_keys):
                local = os.path.join(scratch, f"{version}-{index}.coverage")
                with open(local, "wb") as handle:
                    handle.write(client.get_object(Bucket=bucket_name, Key=key)["Body"].read())
                local_paths[local] = key
            output = os.path.join(scratch, f"{version}.combined")
            result = merge_data_files(local_paths, output)
            skipped += [{"key": local_paths[p], "reason": r.code, "message": r.message} for p, r in result.rejected]
            combined += len(result.merged)
            target = _output_key_for(output_key, version, len(groups) > 1)
            if target.endswith((".coverage", ".sqlite")):
                with open(output, "rb") as handle:
                    client.put_object(Bucket=bucket_name, Key=target, Body=handle, ContentType="application/vnd.sqlite3")
            else:
                executed = result.measurements.executed_lines()
                document = {
                    "meta": {"code_version": version, "files_combined": len(result.merged), "source_keys": sorted(local_paths[p] for p in result.merged)},
                    "files": {path: {"executed_lines": lines, "summary": {"covered_lines": len(lines)}} for path, lines in executed.items()},
                    "totals": {"files": len(executed), "covered_lines": sum(len(v) for v in executed.values())},
                }
                client.put_object(Bucket=bucket_name, Key=target, Body=json.dumps(document, indent=1).encode(), ContentType="application/json")
            outputs.append({"code_version": version, "output_key": target, "files_combined": len(result.merged)})
    duration_ms = round((time.perf_counter() - began) * 1000, 2)
    log.info("Coverage files combined", operation="combine", files_combined=combined, files_skipped=len(skipped), duration_ms=duration_ms)
    return {
        "status": "success" if combined else "no_valid_files",
        "bucket": bucket_name,
        "prefix": prefix,
        "files_combined": combined,
        "files_skipped": skipped,
        "outputs": outputs,
        "duration_ms": duration_ms,
    }
