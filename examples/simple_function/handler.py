"""Simple function: the whole handler measured with the `@coverage_handler` decorator."""

import json

from coverage_wrapper import coverage_handler


def greet(name):
    if not name:
        return "Hello, stranger!"
    if name.lower() == "world":
        return "Hello World"
    return f"Hello, {name}!"


@coverage_handler
def lambda_handler(event, context):
    name = (event or {}).get("name", "")
    if not isinstance(name, str):
        return {"statusCode": 400, "body": json.dumps({"error": "name must be a string"})}
    return {"statusCode": 200, "body": json.dumps({"message": greet(name)})}
