"""coverage.py's default exclusion pragma on branches, else clauses, loops and whole functions."""


def excluded_else(flag):
    if flag:
        result = "yes"
    else:  # pragma: no cover
        result = "no"
    return result


def excluded_body(value):
    if value is None:  # pragma: no cover
        raise ValueError("value")
    if value < 0:
        return -value
    return value


def excluded_function(value):  # pragma: no cover
    if value:
        return 1
    return 0


def excluded_loop_body(values):
    total = 0
    for value in values:
        if value < 0:  # pragma: no cover
            continue
        total += value
    return total


def excluded_case(value):
    match value:
        case 1:
            return "one"
        case 2:  # pragma: no cover
            return "two"
        case _:
            return "other"


def exercise() -> None:
    assert excluded_else(True) == "yes"
    assert excluded_body(-2) == 2
    assert excluded_loop_body([1, 2]) == 3
    assert excluded_case(5) == "other"
