"""The Powertools-shaped handler the benchmarks measure: an APIGatewayRestResolver with three routes."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from traffic import rest_event

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


# One request per route, taken in turn: a warm environment serves a mix of routes.
EVENTS = [
    rest_event("GET", "/orders/7", "/orders/{order_id}", path_parameters={"order_id": "7"}),
    rest_event("POST", "/orders", "/orders", body='{"items": [{"quantity": 2, "price": 4.5}, {"quantity": 0, "price": 1.0}]}'),
    rest_event("GET", "/health", "/health"),
]
