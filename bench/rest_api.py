"""The Powertools-shaped handler the benchmarks measure: an APIGatewayRestResolver with three routes."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError

app = APIGatewayRestResolver()
ORDERS = {str(n): {"id": str(n), "items": n % 4 + 1, "total": round(n * 9.5, 2)} for n in range(1, 50)}


@app.get("/orders/<order_id>")
def get_order(order_id: str) -> dict:
    order = ORDERS.get(order_id)
    if order is None:
        raise NotFoundError(f"order {order_id} not found")
    return order


@app.post("/orders")
def create_order() -> dict:
    body = app.current_event.json_body or {}
    items = body.get("items", [])
    if not items:
        raise BadRequestError("an order needs items")
    total = 0.0
    for item in items:
        if item.get("quantity", 0) <= 0:
            continue
        total += item["quantity"] * item.get("price", 0.0)
    return {"id": str(len(ORDERS) + 1), "total": round(total, 2)}


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


def handler(event: dict, context: Any) -> dict:
    return app.resolve(event, context)


def _event(method: str, path: str, resource: str, body: str | None = None, path_parameters: dict | None = None) -> dict:
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


# One request per route, taken in turn: a warm environment serves a mix of routes.
EVENTS = [
    _event("GET", "/orders/7", "/orders/{order_id}", path_parameters={"order_id": "7"}),
    _event("POST", "/orders", "/orders", body='{"items": [{"quantity": 2, "price": 4.5}, {"quantity": 0, "price": 1.0}]}'),
    _event("GET", "/health", "/health"),
]
