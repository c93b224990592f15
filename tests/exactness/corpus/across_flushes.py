"""Paths completed across flushes: a branch's first direction taken before a save, the other after it."""


def kind_of(value):
    match value:
        case 0:
            return "zero"
        case int() if value < 0:
            return "negative"
        case int():
            return "positive"
        case str():
            return "text"


def first_even(values):
    for value in values:
        if value % 2 == 0:
            return value
    else:
        return None


def bounded(value, limit):
    if value > limit: return limit
    return value


def countdown(n):
    steps = []
    while n > 0:
        steps.append(n)
        n -= 1
    return steps


def exercise() -> None:
    assert kind_of(0) == "zero"
    assert first_even([1, 2]) == 2
    assert bounded(5, 3) == 3
    assert countdown(0) == []


def exercise_after_flush() -> None:
    assert kind_of(-1) == "negative"
    assert kind_of("x") == "text"
    assert first_even([1]) is None
    assert bounded(1, 3) == 1
    assert countdown(2) == [2, 1]


def exercise_after_second_flush() -> None:
    assert kind_of(4) == "positive"
    assert kind_of(2.5) is None
