"""Which request an invocation served, as a coverage.py dynamic context label (`COVERAGE_CONTEXTS`)."""

from __future__ import annotations

from typing import Any

MODES = ("off", "route", "event-source")
_MAX_LABEL = 200
OTHER = "other"
# Distinct labels one execution environment records; intake refuses a raw file with more than 1,000.
MAX_LABELS = 500


_ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 /{}_:.$+-*~@,;=")


def _clean(text: str) -> str:
    """Labels come from requests (an ALB path is whatever a client sent): only characters a route
    needs, nothing a report could render as markup."""
    text = text[:_MAX_LABEL]
    if _ALLOWED.issuperset(text):  # the usual route: one pass in C
        return text
    return "".join(c if c in _ALLOWED else "?" for c in text)


def event_source(event: Any) -> str:
    """`aws:sqs`, `aws:s3`, `aws:events`, `aws:apigateway`, ... from the event's shape; `other` when unknown."""
    if not isinstance(event, dict):
        return OTHER
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        first = records[0]
        source = first.get("eventSource") or first.get("EventSource")
        if isinstance(source, str) and source:
            return _clean(source)
        if "cf" in first:
            return "aws:cloudfront"
    if "detail-type" in event and "source" in event:
        return "aws:events"
    request = event.get("requestContext")
    if isinstance(request, dict):
        if "elb" in request:
            return "aws:elasticloadbalancing"
        if "apiId" in request or "http" in request or "httpMethod" in event:
            return "aws:apigateway"
    if "awslogs" in event:
        return "aws:logs"
    return OTHER


def route(event: Any) -> str:
    """The API route (`GET /tasks/{id}`) of API Gateway REST/HTTP and ALB events, else the event source."""
    if isinstance(event, dict):
        request = event["requestContext"] if isinstance(event.get("requestContext"), dict) else {}
        route_key = event.get("routeKey")
        if isinstance(route_key, str) and route_key and route_key != "$default":  # HTTP API (payload 2.0)
            return _clean(route_key)
        if isinstance(event.get("httpMethod"), str) and isinstance(event.get("resource"), str):  # REST API
            return _clean(f"{event['httpMethod']} {event['resource']}")
        http = request.get("http") if isinstance(request.get("http"), dict) else None
        if http and isinstance(http.get("method"), str):  # HTTP API $default route: the path is all there is
            return _clean(f"{http['method']} {event.get('rawPath', http.get('path', ''))}")
        if "elb" in request and isinstance(event.get("httpMethod"), str):  # ALB: no route template
            return _clean(f"{event['httpMethod']} {event.get('path', '')}")
    return event_source(event)


def label(mode: str, event: Any) -> str:
    """The context label of one invocation in `mode` (never raises: a label is only a label)."""
    try:
        return route(event) if mode == "route" else event_source(event)
    except Exception:
        return OTHER
