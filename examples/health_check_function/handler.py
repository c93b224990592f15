"""Health check: an API Gateway style handler with the layer's built-in health endpoint."""

import json

from coverage_wrapper import coverage_handler, health_check_handler


def handle_get(event):
    return {"statusCode": 200, "body": json.dumps({"items": ["a", "b"], "query": event.get("queryStringParameters") or {}})}


def handle_post(event):
    try:
        payload = json.loads(event.get("body") or "{}")
    except ValueError:
        return {"statusCode": 400, "body": json.dumps({"error": "invalid JSON"})}
    return {"statusCode": 201, "body": json.dumps({"created": payload})}


@coverage_handler
def lambda_handler(event, context):
    if event.get("path") == "/health":
        return {"statusCode": 200, "body": json.dumps(health_check_handler())}
    method = event.get("httpMethod", "GET")
    if method == "GET":
        return handle_get(event)
    if method == "POST":
        return handle_post(event)
    return {"statusCode": 405, "body": json.dumps({"error": f"{method} not allowed"})}
