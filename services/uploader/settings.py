"""The pipeline Lambdas' configuration: every environment variable they read is parsed here, once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from coverage_wrapper.keys import DEFAULT_PREFIX, normalize_prefix
from coverage_wrapper.validation import MAX_FILE_BYTES


class MissingSetting(RuntimeError):
    """A setting the pipeline cannot run without is absent."""


@dataclass(frozen=True)
class PipelineSettings:
    """Where the data lives and how the combine batches it."""

    bucket: str
    prefix: str = DEFAULT_PREFIX
    window_seconds: int = 60
    max_file_bytes: int = MAX_FILE_BYTES
    batch_size: int = 50

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "PipelineSettings":
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
        )


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
    """An S3 client with standard retries; AWS_ENDPOINT_URL(_S3) points it at the local emulation."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def client_error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def is_missing(exc: Exception) -> bool:
    return client_error_code(exc) in ("NoSuchKey", "404", "NotFound")


def is_precondition_failed(exc: Exception) -> bool:
    return client_error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
