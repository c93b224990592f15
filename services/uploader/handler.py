"""Intake Lambda: the EventBridge `Object Created` event of one raw upload in, the intake decision out."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source

from lambda_coverage.services.observability import count, powertools
from lambda_coverage.services.settings import PipelineSettings, s3_client

from .intake import intake_object

SERVICE = "intake"
logger, tracer = powertools(SERVICE)


@logger.inject_lambda_context(correlation_id_path="detail.object.key")
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def validate_handler(event: EventBridgeEvent, context: Any) -> dict[str, Any]:
    detail = event.detail
    result = intake_object(s3_client(), PipelineSettings.from_env(), detail["bucket"]["name"], detail["object"]["key"])
    count("FilesValidated", 1 if result.status in ("valid", "quarantined") else 0, SERVICE)
    count("FilesQuarantined", 1 if result.status == "quarantined" else 0, SERVICE)
    logger.info("intake decision", extra={"status": result.status, "s3_key": result.key, "reason": result.quarantine.get("reason", "")})
    return result.as_dict()
