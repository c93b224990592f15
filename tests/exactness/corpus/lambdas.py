"""Lambdas: on branch lines, as defaults and keys, multi-line, in dict literals, never called."""

ALWAYS = lambda: True
NEVER_CALLED = lambda value: value * 2
DISPATCH = {
    "double": lambda v: v * 2,
    "negate": lambda v: -v,
    "absent": lambda v: v if v else None,
}


def sort_by_length(words, reverse=False):
    if reverse: return sorted(words, key=lambda w: -len(w))
    return sorted(words, key=lambda w: len(w))


def pick(flag):
    choose = lambda a, b: a if flag else b
    return choose("yes", "no")


def with_default(value, transform=lambda v: v + 1):
    return transform(value)


def on_loop_line(values):
    total = 0
    for value in filter(lambda v: v > 1, values):
        total += value
    return total


def on_while_line(values):
    while (lambda: values)():
        values = values[1:]
    return values


def multiline_lambda(x):
    compute = (
        lambda a:
            a + 1
            if a
            else a - 1
    )
    return compute(x)


def raise_with_lambda(value):
    check = lambda v: v > 0
    if not check(value):
        raise ValueError(value)
    return value


def exercise() -> None:
    ALWAYS()
    DISPATCH["double"](3)
    DISPATCH["absent"](0)
    sort_by_length(["ab", "c"])
    pick(False)
    with_default(1)
    on_loop_line([1, 2, 3])
    on_while_line([1, 2])
    multiline_lambda(0)
    try:
        raise_with_lambda(-1)
    except ValueError:
        pass
