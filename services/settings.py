"""The pipeline Lambdas' configuration and S3 client: every environment variable they read is parsed here, once."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from coverage_wrapper.keys import DEFAULT_PREFIX, normalize_prefix
from coverage_wrapper.validation import MAX_FILE_BYTES


_PREFIX_PART = re.compile(r"^[\w][\w.+@-]*$")
log = logging.getLogger(__name__)


class MissingSetting(RuntimeError):
    """A setting the pipeline cannot run without is absent."""


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
class PipelineSettings:
    """Where the data lives, how the combine batches it, and how reports name files."""

    bucket: str
    prefix: str = DEFAULT_PREFIX
    window_seconds: int = 900  # a combine per group per 15 minutes at most: see the cost model in BENCHMARKS.md
    max_file_bytes: int = MAX_FILE_BYTES
    batch_size: int = 50
    path_prefix: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineSettings:
        environ = os.environ if environ is None else environ
        bucket = environ.get("COVERAGE_S3_BUCKET", "").strip()
        if not bucket:
            raise MissingSetting("COVERAGE_S3_BUCKET is not set")
        return cls(
            bucket=bucket,
            prefix=normalize_prefix(environ.get("COVERAGE_S3_PREFIX", DEFAULT_PREFIX)),
            window_seconds=_positive_int(environ, "COMBINE_WINDOW_SECONDS", cls.window_seconds),
            max_file_bytes=_positive_int(environ, "COVERAGE_MAX_FILE_BYTES", cls.max_file_bytes),
            batch_size=_positive_int(environ, "COMBINE_BATCH_SIZE", cls.batch_size),
            path_prefix=_path_prefix(environ.get("COVERAGE_REPORT_PATH_PREFIX", "")),
        )


def _path_prefix(text: str) -> str:
    try:
        return normalize_path_prefix(text)
    except ValueError as exc:  # a bad prefix must not stop the reports: warn and write plain paths
        log.warning("%s; using no prefix", exc)
        return ""


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise MissingSetting(f"{name}={text!r} is not an integer") from None
    if value <= 0:
        raise MissingSetting(f"{name}={text!r} must be positive")
    return value


def s3_client() -> Any:
    """One S3 client per warm environment, with standard retries; AWS_ENDPOINT_URL(_S3) points it at the local emulation."""
    return _s3_client(os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"), os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))


@lru_cache(maxsize=4)
def _s3_client(region: str | None, endpoint: str | None) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", region_name=region, endpoint_url=endpoint, config=Config(retries={"mode": "standard", "max_attempts": 5}))

