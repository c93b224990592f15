"""The reporter's configuration, read once from the environment."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

from coverage_wrapper.keys import DEFAULT_PREFIX, normalize_prefix

_PREFIX_PART = re.compile(r"^[\w][\w.+@-]*$")

log = logging.getLogger(__name__)


def normalize_path_prefix(value: str) -> str:
    """`src`, `./src/` or `src/` → `src/`; '' stays ''. Raises ValueError for anything but plain relative folders."""
    cleaned = value.strip().replace("\\", "/")
    if cleaned.startswith("/") or re.match(r"^[A-Za-z]:", cleaned):
        raise ValueError(f"COVERAGE_REPORT_PATH_PREFIX must be relative, not {value[:100]!r}")
    while cleaned.startswith("./"):
        cleaned = cleaned[2:]
    cleaned = cleaned.strip("/")
    if not cleaned:
        return ""
    parts = cleaned.split("/")
    if len(cleaned) > 200 or not all(_PREFIX_PART.match(part) and part not in (".", "..") for part in parts):
        raise ValueError(f"COVERAGE_REPORT_PATH_PREFIX must be a plain relative folder, not {value[:100]!r}")
    return cleaned + "/"


@dataclass(frozen=True)
class ReporterConfig:
    """Where the data lives and how report paths are written."""

    bucket: str
    prefix: str = DEFAULT_PREFIX
    path_prefix: str = ""

    @classmethod
    def from_env(cls) -> "ReporterConfig":
        bucket = os.environ.get("COVERAGE_S3_BUCKET", "").strip()
        if not bucket:
            raise ValueError("COVERAGE_S3_BUCKET is not set: the reporter does not know which bucket to read")
        prefix = normalize_prefix(os.environ.get("COVERAGE_S3_PREFIX", DEFAULT_PREFIX))
        try:
            path_prefix = normalize_path_prefix(os.environ.get("COVERAGE_REPORT_PATH_PREFIX", ""))
        except ValueError as exc:  # a bad prefix must not stop the reports: warn and write plain paths
            log.warning("%s; using no prefix", exc)
            path_prefix = ""
        return cls(bucket=bucket, prefix=prefix, path_prefix=path_prefix)
