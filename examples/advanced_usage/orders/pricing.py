"""Prices, discounts and taxes."""

TAX_RATES = {"DE": 0.19, "FR": 0.20, "US": 0.0}
DISCOUNTS = {"WELCOME10": 0.10, "VIP": 0.25}


def subtotal(lines):
    return sum(line["qty"] * line["price"] for line in lines)


def apply_discount(amount, code):
    if not code:
        return amount
    rate = DISCOUNTS.get(code.upper())
    if rate is None:
        raise ValueError(f"unknown discount code {code}")
    return amount * (1 - rate)


def with_tax(amount, country):
    return round(amount * (1 + TAX_RATES.get(country, 0.0)), 2)
