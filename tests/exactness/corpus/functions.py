"""Functions: nested and decorated functions and classes, closures, global/nonlocal, early returns, recursion."""

import functools

CALLS = 0
REGISTRY = {}


def register(name):
    def decorate(func):
        if name in REGISTRY:
            raise KeyError(name)
        REGISTRY[name] = func
        return func
    return decorate


def counted(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        global CALLS
        CALLS += 1
        if kwargs.get("skip"):
            return None
        return func(*args)
    return wrapper


def add_repr(cls):
    if not hasattr(cls, "label"):
        cls.label = cls.__name__
    return cls


@register("area")
@counted
def area(width, height):
    if width < 0 or height < 0:
        return 0
    return width * height


@register(
    "perimeter"
)
def perimeter(width, height):
    return 2 * (width + height)


@add_repr
class Shape:
    def __init__(self, sides):
        self.sides = sides

    @property
    def polygon(self):
        if self.sides >= 3:
            return True
        return False

    @staticmethod
    def make(kind):
        if kind == "triangle":
            return Shape(3)
        return Shape(0)

    @classmethod
    def square(cls):
        return cls(4)

    def describe(self):
        def plural():
            if self.sides == 1:
                return ""
            return "s"
        return f"{self.sides} side{plural()}"


def make_counter(start):
    count = start

    def increment(step=1):
        nonlocal count
        if step <= 0:
            return count
        count += step
        return count

    return increment


def early_returns(value):
    if value is None:
        return "none"
    if not isinstance(value, int):
        return "not int"
    if value < 0:
        return "negative"
    return "ok"


def factorial(n):
    if n <= 1:
        return 1
    return n * factorial(n - 1)


def deep(level):
    def inner(x):
        def innermost(y):
            if y:
                return y
            return -1
        return innermost(x - 1)
    return inner(level)


def only_raises(message):
    raise RuntimeError(message)


def keyword_only(*, flag=False, **extra):
    if extra:
        return sorted(extra)
    return flag


def annotated(value: int = 3) -> int:
    result: int
    if value:
        result = value
    else:
        result = 0
    return result


def never_called():
    if CALLS:
        return CALLS
    return 0


def exercise() -> None:
    area(2, 3)
    area(-1, 3)
    area(1, 1, skip=True)
    shape = Shape.make("triangle")
    shape.polygon
    Shape.make("point").polygon
    Shape.square().describe()
    Shape(1).describe()
    counter = make_counter(1)
    counter()
    counter(0)
    early_returns(None)
    early_returns("x")
    early_returns(5)
    factorial(4)
    deep(1)
    try:
        only_raises("boom")
    except RuntimeError:
        pass
    keyword_only(flag=True)
    annotated()
