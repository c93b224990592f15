"""Combine Lambdas: plan, merge one batch, commit. Each parses its state's payload and calls one function."""

from __future__ import annotations

from typing import Any

from services.observability import count, powertools
from services.settings import PipelineSettings, s3_client

from .batch import merge_batch
from .commit import commit
from .plan import Group, plan
from .request import CombineRequest

SERVICE = "combiner"
logger, tracer = powertools(SERVICE)


@logger.inject_lambda_context(correlation_id_path="execution")
@tracer.capture_lambda_handler
def plan_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"input": <workflow input>, "execution": arn} → groups to combine, in key-range batches."""
    request = CombineRequest.parse(event.get("input"))
    result = plan(s3_client(), PipelineSettings.from_env(), request)
    logger.info("combine planned", extra={"mode": request.mode, "date": request.date, "groups": len(result["groups"]), "files": result["files"]})
    return result


@logger.inject_lambda_context(correlation_id_path="execution")
@tracer.capture_lambda_handler
def merge_batch_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"group", "rebuild", "token", "index", "batch"} → the partial data file written for that batch."""
    outcome = merge_batch(
        s3_client(),
        PipelineSettings.from_env(),
        Group.from_dict(event["group"]),
        event["batch"],
        bool(event.get("rebuild")),
        f"{event['token']}-{int(event['index']):05d}",
    )
    count("FilesQuarantined", outcome["quarantined"], SERVICE)
    logger.info("batch merged", extra=outcome)
    return outcome


@logger.inject_lambda_context(correlation_id_path="execution")
@tracer.capture_lambda_handler
def commit_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"group", "rebuild", "partials": [merge_batch outcomes]} → the combined data's new state."""
    partial_keys = [p["partial_key"] for p in event.get("partials", []) if p.get("partial_key")]
    result = commit(s3_client(), PipelineSettings.from_env(), Group.from_dict(event["group"]), partial_keys, bool(event.get("rebuild")))
    count("FilesCombined", result["added"], SERVICE)
    logger.info("combine committed", extra=result)
    return result
