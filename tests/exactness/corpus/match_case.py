"""match/case: with and without a wildcard, guards, or-patterns, class, mapping, sequence and value patterns."""

from dataclasses import dataclass


@dataclass
class Point:
    x: int
    y: int


class Color:
    RED = "red"
    GREEN = "green"


def with_wildcard(command):
    match command:
        case "go":
            return 1
        case "stop" | "halt":
            return 2
        case _:
            return 0


def without_wildcard(command):
    result = None
    match command:
        case "go":
            result = 1
        case "stop":
            result = 2
    return result


def named_default(value):
    match value:
        case 1:
            return "one"
        case other:
            return f"other {other}"


def guards(value):
    match value:
        case int(n) if n < 0:
            return "negative"
        case int(n) if n > 100:
            return "large"
        case int():
            return "int"
        case str() as text if text:
            return "text"
        case _:
            return "unknown"


def classes(shape):
    match shape:
        case Point(x=0, y=0):
            return "origin"
        case Point(x=0, y=y) | Point(x=y, y=0):
            return f"axis {y}"
        case Point(x=x, y=y) if x == y:
            return "diagonal"
        case Point():
            return "point"


def mappings(event):
    match event:
        case {"type": "click", "pos": (x, y)}:
            return x + y
        case {"type": "key", **rest}:
            return len(rest)
        case {"type": kind}:
            return kind


def sequences(items):
    match items:
        case []:
            return "empty"
        case [one]:
            return "one"
        case [first, *rest] if rest:
            return first
        case (a, b, c):
            return "three"


def values(color):
    match color:
        case Color.RED:
            return 1
        case Color.GREEN:
            return 2
    return 3


def last_statement(value, log):
    match value:
        case 0:
            log.append("zero")
        case _:
            log.append("many")


def split_case(value):
    match (
        value
    ):
        case (
            1
        ):
            return "one"
        case (
            2 | 3
        ):
            return "few"
    return "none"


def split_capture(pair):
    match pair:
        case (first,
              second) if second:
            return first + second
        case [single,
              *rest]:
            return single
    return None


def never_called(value):
    match value:
        case 0:
            return True
    return False


def exercise() -> None:
    with_wildcard("go")
    with_wildcard("halt")
    without_wildcard("go")
    without_wildcard("jump")
    named_default(5)
    guards(-4)
    guards(7)
    guards("")
    guards(3.5)
    classes(Point(0, 0))
    classes(Point(3, 0))
    classes(Point(2, 5))
    mappings({"type": "click", "pos": (1, 2)})
    mappings({"type": "scroll"})
    mappings({"other": 1})
    sequences([])
    sequences([1, 2, 3])
    sequences((4,))
    values("green")
    values("blue")
    last_statement(0, [])
    split_case(3)
    split_case(9)
    split_capture((1, 2))
    split_capture((1, 0))
    split_capture("xy")
