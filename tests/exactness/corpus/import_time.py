"""Functions reached only through objects made at import: caches, dispatchers, partials, containers, a started generator."""

import functools


@functools.lru_cache(maxsize=None)
def cached_sign(value):
    if value < 0:
        return -1
    return 1


@functools.singledispatch
def describe(value):
    if value is None:
        return "nothing"
    return "something"


@describe.register
def _(value: int):
    if value < 0:
        return "negative int"
    return "int"


def _scale(factor, value):
    if factor:
        return value * factor
    return value


DOUBLE = functools.partial(_scale, 2)


def _on_create(event):
    if event.get("id"):
        return "created"
    return "anonymous"


def _on_delete(event):
    if event.get("force"):
        return "deleted"
    return "kept"


HANDLERS = {"create": _on_create, "delete": _on_delete}
del _on_create, _on_delete

class Rule:
    def __init__(self, limit):
        self.limit = limit

    def __call__(self, value):
        if value > self.limit:
            return "over"
        return "under"


RULES = [Rule(10)]


def _ticks(limit):
    n = 0
    while n < limit:
        if n % 2:
            yield "odd"
        else:
            yield "even"
        n += 1


TICKS = _ticks(4)
FIRST_TICK = next(TICKS)


class Service:
    def __init__(self, name):
        self.name = name

    def handle(self, event):
        if event.get("name") == self.name:
            return "mine"
        return "other"

    @functools.cached_property
    def slug(self):
        if " " in self.name:
            return self.name.replace(" ", "-")
        return self.name


SERVICE_HANDLER = Service("orders").handle
SERVICE = Service("order lines")


def _layer(func):
    @functools.wraps(func)
    def wrapper(event):
        if event is None:
            event = {}
        return func(event)
    return wrapper


@_layer
@_layer
@_layer
@_layer
@_layer
@_layer
def deeply_wrapped(event):
    if event.get("deep"):
        return "deep"
    return "shallow"


def make_handler(prefix):
    def handler(event):
        if event:
            return prefix + str(event)
        return prefix
    return handler


HANDLER = make_handler("h:")


def exercise() -> None:
    assert cached_sign(-3) == -1
    assert describe(None) == "nothing"
    assert describe(-2) == "negative int"
    assert DOUBLE(4) == 8
    assert HANDLERS["create"]({"id": 1}) == "created"
    assert HANDLERS["delete"]({}) == "kept"
    assert RULES[0](11) == "over"
    assert next(TICKS) == "odd"
    assert HANDLER(0) == "h:"
    assert SERVICE_HANDLER({"name": "orders"}) == "mine"
    assert SERVICE.slug == "order-lines"
    assert deeply_wrapped(None) == "shallow"
