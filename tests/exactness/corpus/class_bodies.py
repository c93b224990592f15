"""Class bodies: conditionals and loops in the body, nested classes, dataclasses, methods with branches."""

import sys
from dataclasses import dataclass, field


class Settings:
    if sys.version_info >= (3, 12):
        modern = True
    else:
        modern = False

    for _name in ("alpha", "beta"):
        if _name == "beta":
            break
    else:
        _name = None

    try:
        limit = int("12")
    except ValueError:
        limit = 0

    class Nested:
        if False:
            hidden = True
        shown = True

        def method(self, flag):
            if flag:
                return "nested"
            return None

    def choose(self, key):
        if key in ("alpha", "beta"):
            return key
        return self.limit


@dataclass
class Order:
    lines: list = field(default_factory=list)
    country: str = "DE"

    def total(self):
        amount = 0
        for quantity, price in self.lines:
            if quantity <= 0:
                raise ValueError("quantity")
            amount += quantity * price
        return amount

    def __post_init__(self):
        if self.country not in ("DE", "FR"):
            self.country = "DE"


class Base:
    def run(self):
        return self.step()

    def step(self):
        raise NotImplementedError


class Child(Base):
    def step(self):
        if isinstance(self, Child):
            return "child"
        return super().step()


def make_class(flag):
    class Local:
        if flag:
            value = 1
        else:
            value = 2
    return Local.value


def exercise() -> None:
    settings = Settings()
    settings.choose("alpha")
    settings.choose("gamma")
    Settings.Nested().method(True)
    order = Order([(1, 2.5)], "US")
    order.total()
    try:
        Order([(0, 1)]).total()
    except ValueError:
        pass
    Child().run()
    make_class(True)
