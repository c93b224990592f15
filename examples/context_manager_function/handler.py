"""Context manager: only the business logic inside `with CoverageContext():` is measured."""

import json

from coverage_wrapper import CoverageContext

INVENTORY = {"apple": 10, "pear": 0, "plum": 3}


def setup_resources():
    return dict(INVENTORY)


def check_inventory(stock, items):
    missing = [item for item in items if stock.get(item, 0) <= 0]
    return {"available": not missing, "missing": missing}


def update_inventory(stock, items):
    for item in items:
        if stock.get(item, 0) <= 0:
            raise ValueError(f"{item} is out of stock")
        stock[item] -= 1
    return {"updated": items}


def lambda_handler(event, context):
    stock = setup_resources()  # not measured
    with CoverageContext():
        action = event.get("action", "check")
        items = event.get("items", [])
        try:
            if action == "check":
                result = check_inventory(stock, items)
            elif action == "update":
                result = update_inventory(stock, items)
            else:
                return {"statusCode": 400, "body": json.dumps({"error": f"unknown action {action}"})}
        except ValueError as exc:
            return {"statusCode": 409, "body": json.dumps({"error": str(exc)})}
    return {"statusCode": 200, "body": json.dumps(result)}
