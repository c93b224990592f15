"""Order validation."""


class InvalidOrder(Exception):
    pass


def validate(order):
    if not isinstance(order, dict):
        raise InvalidOrder("order must be an object")
    lines = order.get("lines")
    if not lines:
        raise InvalidOrder("order has no lines")
    for line in lines:
        if line.get("qty", 0) <= 0:
            raise InvalidOrder("quantities must be positive")
        if line.get("price", -1) < 0:
            raise InvalidOrder("prices cannot be negative")
    return order
