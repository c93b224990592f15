"""Intake of one raw upload: check the key and the data, quarantine what is bad, say which combine to start."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from coverage_wrapper import keys
from coverage_wrapper.validation import Rejection, validate_data_file

from .quarantine import quarantine_object
from lambda_coverage.services import storage
from lambda_coverage.services.combiner.request import CombineWindow, window_for
from lambda_coverage.services.settings import PipelineSettings


@dataclass
class IntakeResult:
    """What happened to one upload; `as_dict` is what the intake state machine branches on."""

    status: str  # valid | quarantined | missing | ignored
    key: str
    window: CombineWindow | None = None
    quarantine: dict[str, str] = field(default_factory=dict)
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"status": self.status, "key": self.key}
        if self.window is not None:
            result.update(
                function=self.window.function,
                date=self.window.date,
                version=self.window.version,
                execution_name=self.window.execution_name,
                combine_input=self.window.combine_input(),
            )
        if self.quarantine:
            result["quarantine"] = self.quarantine
        if self.detail:
            result["detail"] = self.detail
        return result


def intake_object(s3: Any, settings: PipelineSettings, bucket: str, key: str, now: float | None = None) -> IntakeResult:
    """Validate the object `key`: quarantine it when bad, otherwise return the combine window it joins."""
    if bucket != settings.bucket:
        return IntakeResult("ignored", key, detail=f"bucket {bucket!r} is not the coverage bucket")
    if not key.startswith(keys.raw_root(settings.prefix)):
        return IntakeResult("ignored", key, detail="not a raw upload")
    raw = keys.parse_raw_key(key, settings.prefix)
    if raw is None:
        return _quarantine(s3, settings, key, Rejection("off_scheme_key", "the key does not follow the raw key scheme"))
    now = time.time() if now is None else now
    date_problem = keys.raw_date_problem(raw, datetime.fromtimestamp(now, timezone.utc).date())
    if date_problem:
        return _quarantine(s3, settings, key, Rejection("implausible_date", date_problem))
    head = storage.head_object(s3, settings.bucket, key)
    if head is None:
        return IntakeResult("missing", key, detail="the object is gone (already quarantined or deleted)")
    metadata = head.get("Metadata", {})
    if head["ContentLength"] > settings.max_file_bytes:
        oversize = Rejection("oversize", f"{head['ContentLength']} bytes is over the {settings.max_file_bytes}-byte limit")
        return _quarantine(s3, settings, key, oversize, metadata)
    with tempfile.TemporaryDirectory(prefix="intake-") as scratch:
        local = os.path.join(scratch, "upload.coverage")
        if storage.download(s3, settings.bucket, key, local) is None:
            return IntakeResult("missing", key, detail="the object disappeared while it was read")
        rejection = validate_data_file(local, max_bytes=settings.max_file_bytes)
    if rejection is not None:
        return _quarantine(s3, settings, key, rejection, metadata)
    return IntakeResult("valid", key, window=window_for(raw, now, settings.window_seconds))


def _quarantine(s3: Any, settings: PipelineSettings, key: str, rejection: Rejection, metadata: Any = None) -> IntakeResult:
    moved = quarantine_object(s3, settings, key, rejection, metadata)
    if moved is None:
        return IntakeResult("missing", key, detail="the object is gone (already quarantined or deleted)")
    return IntakeResult("quarantined", key, quarantine=moved.as_dict())
