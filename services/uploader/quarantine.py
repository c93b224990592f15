"""Quarantine: move a rejected upload out of `raw/` and write why beside it; the only way files leave intake."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from coverage_wrapper import keys
from coverage_wrapper.validation import Rejection

from lambda_coverage.services import storage
from lambda_coverage.services.settings import PipelineSettings


@dataclass(frozen=True)
class Quarantined:
    """Where a rejected object went and why."""

    original_key: str
    key: str
    reason_key: str
    rejection: Rejection

    def as_dict(self) -> dict[str, str]:
        return {
            "original_key": self.original_key,
            "quarantine_key": self.key,
            "reason_key": self.reason_key,
            "reason": self.rejection.code,
            "message": self.rejection.message,
        }


def quarantine_object(
    s3: Any,
    settings: PipelineSettings,
    key: str,
    rejection: Rejection,
    metadata: Mapping[str, str] | None = None,
) -> Quarantined | None:
    """Move `key` to quarantine with a `.reason.json`; None when the object is already gone.

    The reason is written before the original is deleted, so a crash in between leaves a copy
    in both places (the next attempt finishes the move) and never loses the object.
    """
    target = keys.quarantine_key(settings.prefix, key)
    reason_key = keys.quarantine_reason_key(settings.prefix, key)
    if metadata is None:
        head = storage.head_object(s3, settings.bucket, key)
        if head is None:
            return None
        metadata = head.get("Metadata", {})
    try:
        storage.copy_object(s3, settings.bucket, key, target, MetadataDirective="COPY")
    except storage.NotFound:
        return None
    reason = {
        "reason": rejection.code,
        "message": rejection.message,
        "original_key": key,
        "quarantine_key": target,
        "metadata": dict(metadata),
        "quarantined_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    storage.put_object(
        s3, settings.bucket, reason_key, json.dumps(reason, indent=2, sort_keys=True).encode(), ContentType="application/json"
    )
    storage.delete_object(s3, settings.bucket, key)
    return Quarantined(key, target, reason_key, rejection)
