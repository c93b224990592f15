"""Expressions and statements spread over lines: multi-line conditions, walrus, ternaries, boolean operators, assert, global."""

import re

PATTERN = re.compile(r"(\d+)-(\d+)")
SEEN = []


def multiline_condition(a, b, c):
    if (a
            and b
            or not c):
        return True
    return False


def backslash_condition(a, b):
    if a and \
            b:
        return "both"
    return "not both"


def walrus(text):
    if (match := PATTERN.search(text)) is not None:
        return int(match.group(1)) + int(match.group(2))
    return None


def walrus_loop(values):
    found = []
    iterator = iter(values)
    while (value := next(iterator, None)) is not None:
        found.append(value)
    return found


def ternaries(value):
    label = "positive" if value > 0 else "zero" if value == 0 else "negative"
    return (
        label.upper()
        if len(label) > 4
        else label
    )


def boolean_ops(a, b):
    result = a and b
    other = a or b
    return result, other, not a


def chained(value):
    if 0 < value <= 10 < 100:
        return "in range"
    return "out"


def asserts(value):
    assert value is not None, "no value"
    assert isinstance(value, int), (
        "an int is needed"
    )
    return value


def record(value):
    global SEEN
    if value in SEEN:
        SEEN = [v for v in SEEN if v != value]
        return False
    SEEN.append(value)
    return True


def long_call(a, b):
    return dict(
        first=a,
        second=b
        if b
        else None,
        third=[
            item
            for item in (a, b)
        ],
    )


def unpacked(values, extra):
    return {
        **values,
        "extra": extra,
    }, [
        *values,
    ]


def never_called(value):
    return value if value else None


def exercise() -> None:
    multiline_condition(True, False, False)
    multiline_condition(False, False, True)
    backslash_condition(True, True)
    walrus("12-30")
    walrus("none")
    walrus_loop([1, 2])
    ternaries(5)
    ternaries(-1)
    boolean_ops(1, 0)
    chained(5)
    chained(50)
    asserts(3)
    try:
        asserts("x")
    except AssertionError:
        pass
    record(1)
    record(1)
    long_call(1, 0)
    unpacked({"a": 1}, 2)
