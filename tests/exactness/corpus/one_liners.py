"""Bodies on the header's line: one-line loops that run zero or more times, one-line cases, several statements after a colon."""


def for_never_runs(values):
    total = 0
    for value in values: total += value
    return total


def while_never_runs(n):
    while n > 0: n -= 1
    return n


def for_runs(values):
    seen = []
    for value in values: seen.append(value)
    return seen


def for_break(values):
    for value in values: break
    else: value = None
    return value


def while_continue(n):
    while (n := n - 1) > 0: continue
    return n


def if_two_statements(flag):
    if flag: label = "yes"; return label
    return "no"


def if_else_one_line(flag):
    if flag: return "yes"
    else: return "no"


def cases_one_line(value):
    match value:
        case 1: return "one"
        case 2: return "two"
        case _: return "many"


def cases_one_line_no_wildcard(value):
    match value:
        case "a": result = 1
        case "b": result = 2
    return value


def cases_first_always(value):
    match value:
        case int(): return "int"
        case str(): return "str"


def exercise() -> None:
    assert for_never_runs([]) == 0
    assert while_never_runs(0) == 0
    assert for_runs([1, 2]) == [1, 2]
    assert for_break([]) is None
    assert while_continue(1) == 0
    assert if_two_statements(True) == "yes"
    assert if_else_one_line(False) == "no"
    assert cases_one_line(1) == "one"
    assert cases_one_line_no_wildcard("a") == "a"
    assert cases_first_always(3) == "int"
