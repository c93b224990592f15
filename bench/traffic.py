"""API Gateway REST requests for the benchmark's handlers: one request per route, and a seeded mix of routes like real traffic."""

from __future__ import annotations

import json
import random

# The REST API's routes and how often traffic asks for each: reads dominate, a few writes, a health probe.
ROUTE_WEIGHTS = {"GET /orders/{order_id}": 0.6, "POST /orders": 0.25, "GET /health": 0.15}


def rest_event(method: str, path: str, resource: str, body: str | None = None, path_parameters: dict | None = None) -> dict:
    """An API Gateway REST (payload 1.0) proxy event."""
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Accept": "application/json", "Content-Type": "application/json", "Host": "api.example.com"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "bench"},
            "accountId": "123456789012",
            "apiId": "1234567890",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def request(route: str, rng: random.Random) -> dict:
    """One request to `route`; ids and bodies vary, some ending in the API's 404 and 400 answers."""
    if route == "GET /orders/{order_id}":
        order_id = str(rng.randint(1, 60))  # 1–49 exist
        return rest_event("GET", f"/orders/{order_id}", "/orders/{order_id}", path_parameters={"order_id": order_id})
    if route == "POST /orders":
        items = [{"quantity": rng.randint(0, 3), "price": rng.choice((1.0, 4.5, 9.99))} for _ in range(rng.randint(0, 3))]
        return rest_event("POST", "/orders", "/orders", body=json.dumps({"items": items}))
    if route == "GET /health":
        return rest_event("GET", "/health", "/health")
    raise ValueError(f"no such route: {route}")


def mixed(count: int, seed: int = 12) -> list[dict]:
    """`count` requests, each to a route drawn by ROUTE_WEIGHTS (deterministic for a seed)."""
    rng = random.Random(seed)
    routes = rng.choices(list(ROUTE_WEIGHTS), weights=list(ROUTE_WEIGHTS.values()), k=count)
    return [request(route, rng) for route in routes]
