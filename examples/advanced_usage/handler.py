"""Advanced usage: zero-code instrumentation (AWS_LAMBDA_EXEC_WRAPPER=/opt/coverage-instrument).

Nothing here imports the layer. Module-level initialisation is measured too, because measuring
starts before the runtime imports this module. Pair with COVERAGE_SAMPLE_RATE on busy functions and
COVERAGE_CODE_VERSION (e.g. the git SHA) to label code versions.
"""

import json
import os

from orders.pricing import apply_discount, subtotal, with_tax
from orders.validation import InvalidOrder, validate

STAGE = os.environ.get("STAGE", "dev")
CURRENCY = "EUR" if STAGE != "us" else "USD"


def lambda_handler(event, context):
    try:
        order = validate(event.get("order"))
        amount = apply_discount(subtotal(order["lines"]), order.get("discount"))
        total = with_tax(amount, order.get("country", "DE"))
    except InvalidOrder as exc:
        return {"statusCode": 422, "body": json.dumps({"error": str(exc)})}
    except ValueError as exc:
        return {"statusCode": 400, "body": json.dumps({"error": str(exc)})}
    return {"statusCode": 200, "body": json.dumps({"total": total, "currency": CURRENCY})}
