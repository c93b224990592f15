"""Shapes that marking at the bytecode level tells apart: an expression's jumps against a statement's (one-line
`if` that returns, the function's end, chained comparisons, `assert`), ways that lines imply or not (a body
reached by one way only, code reached by a way and by falling into it), several jumps to one place, a
function long enough that its marked jumps need wider arguments, and headers split over lines."""


def one_line_if_returns_last(flag, value):
    if flag: return value  # noqa: E701


def expression_returns(n):
    return n if n < 2 else expression_returns(n - 1) + expression_returns(n - 2)


def chained(low, value, high):
    inside = low <= value < high
    if low <= value < high:
        return inside
    return not inside


def asserted(value):
    assert value, "needs a value"
    return value


def shared_target(a, b, c):
    if a and (b or c):
        result = "yes"
    else:
        result = "no"
    if a or b:
        pass
    return result


def joined(values):
    total = 0
    for value in values:
        if value > 2:
            total += value
        total += 1
    return total


def conditional_in_test(a, b, flag):
    if (a if flag else b) > 1:
        return "big"
    return "small"


def split_headers(pairs):
    seen = []
    for (left,
         right) in pairs:
        while (left
               > right):
            left -= 1
            seen.append(left)
        if (left ==
                right):
            seen.append("same")
    return seen


def long_chain(n):
    if n == 0:
        result = [n, 0, str(n)]
    elif n == 1:
        result = [n, 1, str(n)]
    elif n == 2:
        result = [n, 2, str(n)]
    elif n == 3:
        result = [n, 3, str(n)]
    elif n == 4:
        result = [n, 4, str(n)]
    elif n == 5:
        result = [n, 5, str(n)]
    elif n == 6:
        result = [n, 6, str(n)]
    elif n == 7:
        result = [n, 7, str(n)]
    elif n == 8:
        result = [n, 8, str(n)]
    elif n == 9:
        result = [n, 9, str(n)]
    elif n == 10:
        result = [n, 10, str(n)]
    elif n == 11:
        result = [n, 11, str(n)]
    elif n == 12:
        result = [n, 12, str(n)]
    elif n == 13:
        result = [n, 13, str(n)]
    elif n == 14:
        result = [n, 14, str(n)]
    elif n == 15:
        result = [n, 15, str(n)]
    elif n == 16:
        result = [n, 16, str(n)]
    elif n == 17:
        result = [n, 17, str(n)]
    elif n == 18:
        result = [n, 18, str(n)]
    elif n == 19:
        result = [n, 19, str(n)]
    else:
        result = None
    for step in range(3):
        if result and step == n % 3:
            break
    else:
        result = "no break"
    return result


def exercise() -> None:
    one_line_if_returns_last(True, 1)
    one_line_if_returns_last(False, 1)
    expression_returns(5)
    chained(1, 2, 3)
    chained(1, 5, 3)
    asserted(1)
    try:
        asserted(0)
    except AssertionError:
        pass
    shared_target(True, False, True)
    shared_target(False, False, False)
    joined([1, 3])
    conditional_in_test(2, 0, True)
    split_headers([(3, 1), (2, 2)])
    long_chain(0)
    long_chain(1)
    long_chain(17)
    long_chain(30)
