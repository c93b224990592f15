"""Combine Lambdas: plan, merge one batch, commit, follow up. Each parses its state's payload and calls one function."""

from __future__ import annotations

from typing import Any

from lambda_coverage.services.observability import count, powertools
from lambda_coverage.services.settings import PipelineSettings, s3_client

from .batch import merge_batch
from .commit import commit
from .follow_up import follow_up
from .plan import Group, plan
from .request import CombineRequest

SERVICE = "combiner"
logger, tracer = powertools(SERVICE)


@logger.inject_lambda_context(correlation_id_path="execution")
@tracer.capture_lambda_handler
def plan_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"input": <any workflow input>, "execution": arn} → wait longer, or the groups to combine in batches.

    The input is checked here, in the workflow's first task, so that whatever anyone sends (an array,
    null, a number, a 200,000-character name) fails the execution with CombineFailed and a clear cause.
    """
    request = CombineRequest.parse(event.get("input"))
    result = plan(s3_client(), PipelineSettings.from_env(), request)
    if not result["ready"]:
        logger.info("combine waiting for its window to settle", extra={"window_end": request.window_end, "wait_seconds": result["wait_seconds"]})
    else:
        logger.info("combine planned", extra={"mode": request.mode, "date": request.date, "function": request.function,
                                              "code_version": request.version, "groups": len(result["groups"]), "files": result["files"]})
    return result


@logger.inject_lambda_context(correlation_id_path="execution")
@tracer.capture_lambda_handler
def merge_batch_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"group", "rebuild", "token", "index"} → the partial data file written for that batch."""
    outcome = merge_batch(
        s3_client(), PipelineSettings.from_env(), Group.from_dict(event["group"]), event["token"], int(event["index"]), bool(event.get("rebuild"))
    )
    count("FilesQuarantined", outcome["quarantined"], SERVICE)
    logger.info("batch merged", extra={**outcome, "batch": event["index"]})
    return outcome


@logger.inject_lambda_context(correlation_id_path="execution")
@tracer.capture_lambda_handler
def commit_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"group", "rebuild", "token"} → the combined data's new state, and whether to render reports."""
    result = commit(s3_client(), PipelineSettings.from_env(), Group.from_dict(event["group"]), event["token"], bool(event.get("rebuild")))
    count("FilesCombined", result["added"], SERVICE)
    logger.info("combine committed", extra=result)
    return result


@logger.inject_lambda_context(correlation_id_path="execution")
@tracer.capture_lambda_handler
def follow_up_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"group", "failed", "attempt", "added"?, "error"?} → the window combine to start when raw files of the group are still pending."""
    failed = bool(event.get("failed"))
    progressed = int(event.get("added") or 0) > 0
    result = follow_up(s3_client(), PipelineSettings.from_env(), Group.from_dict(event["group"]), failed, int(event.get("attempt") or 0), progressed)
    detail = {**result, "failed": failed, "cause": str((event.get("error") or {}).get("Cause", ""))[:500]}
    if result.get("given_up"):
        logger.error("combine keeps failing: raw files left for the daily sweep", extra=detail)
    elif result.get("follow_up"):
        logger.info("raw files still pending: follow-up combine named", extra={**detail, "execution_name": result["follow_up"]["execution_name"]})
    else:
        logger.info("no raw file pending after the combine", extra=detail)
    return result
