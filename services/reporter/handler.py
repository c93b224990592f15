"""The reporter's Lambda handlers: `report_handler` renders one group, `dashboard_handler` refreshes the dashboard."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from lambda_coverage.services.observability import powertools, publish
from lambda_coverage.services.settings import PipelineSettings, s3_client

from .dashboard import refresh_dashboard, write_daily_rollup
from .render import Group, check_date, compact_summary, render_group
from .since_deploy import render_version, reports_stale

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "coverage-reporter")
logger, tracer = powertools(SERVICE)


def _bind_logging(event: Any, context: Any, fallback_id: str) -> None:
    event = event if isinstance(event, dict) else {}
    correlation = event.get("correlation_id") or event.get("execution_id") or event.get("execution") or fallback_id
    logger.set_correlation_id(str(correlation)[:200])
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        logger.append_keys(function_request_id=request_id)


@tracer.capture_lambda_handler
def report_handler(event: dict, context: Any) -> dict:
    """{"function", "date", "version"} → renders that group's reports, then its version's since-deploy reports when
    their data changed; with "since_deploy": true, only the latter. Returns {"summary": {...}} of what was asked."""
    group = Group.from_event(event)
    _bind_logging(event, context, f"{group.function}/{group.date}/{group.version}")
    config = PipelineSettings.from_env()
    client = s3_client()
    if event.get("since_deploy") is True:
        summary = render_version(client, config.bucket, config.prefix, group.function, group.version, config.path_prefix)
    else:
        summary = render_group(client, config.bucket, config.prefix, group, config.path_prefix)
        if reports_stale(client, config.bucket, config.prefix, group.function, group.version):
            render_version(client, config.bucket, config.prefix, group.function, group.version, config.path_prefix)
    if summary["percent"] is not None:
        publish("CoveragePercent", summary["percent"], MetricUnit.Percent, SERVICE, function=group.function)
    logger.info(
        "Reports written",
        operation="report",
        function=group.function,
        date=group.date,
        code_version=group.version,
        percent=summary["percent"],
        files_without_source=summary["files_without_source"],
    )
    return {"summary": compact_summary(summary)}


@tracer.capture_lambda_handler
def dashboard_handler(event: dict | None, context: Any) -> dict:
    """Optional {"date": "YYYY-MM-DD"} → refreshes {p}reports/ and, with a date, writes that day's roll-up."""
    event = event if isinstance(event, dict) else {}
    date = check_date(event["date"]) if event.get("date") else None
    _bind_logging(event, context, f"dashboard/{date or 'all'}")
    config = PipelineSettings.from_env()
    client = s3_client()
    result: dict[str, Any] = {}
    if date:  # the roll-up first, so the refreshed dashboard links to it
        rollup = write_daily_rollup(client, config.bucket, config.prefix, date)
        result["daily"] = {"date": rollup["date"], "groups": len(rollup["groups"]), "totals": rollup["totals"]}
    result["dashboard"] = refresh_dashboard(client, config.bucket, config.prefix, daily=date)
    logger.info("Dashboard refreshed", operation="dashboard", date=date, **result["dashboard"])
    return result
