"""Functions whose every line runs early, then a path through another copy of a `finally` body.

Code whose lines have all run has its line events switched off; a `finally` body is compiled once per
way out of the `try`, so its markers exist more than once and each copy must still be seen.
"""


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def cleanup(early, flag):
    try:
        if early:
            return "early"
    finally:
        if flag:
            flag = "set"
    return "late"


def exercise() -> None:
    assert fib(10) == 55
    assert cleanup(False, True) == "late"
    assert cleanup(False, False) == "late"
    assert cleanup(True, True) == "early"  # every line has run by now; the return path's copy has not
    assert cleanup(True, False) == "early"
    assert fib(5) == 5
