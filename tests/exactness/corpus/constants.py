"""Conditions the compiler settles itself: `while 1`, `while True`, `if 0`, `if __debug__` and their negations, in functions."""

from typing import TYPE_CHECKING


def if_zero(value):
    if 0:
        value = "never"
    return value


def if_one(value):
    if 1:
        value += 1
    else:
        value -= 1
    return value


def if_true_no_else(value):
    if True:
        value *= 2
    return value


def nested_constants(value):
    if value:
        if 1:
            value = "one"
        if 0:
            value = "zero"
    return value


def debug_only(value):
    if __debug__:
        value = f"debug {value}"
    if not __debug__:
        value = "optimized"
    return value


def while_false(value):
    while False:
        value += 1
    return value


def while_not_false(limit):
    n = 0
    while not False:
        n += 1
        if n >= limit:
            break
    return n


def type_checking_only(value):
    if TYPE_CHECKING:
        from collections.abc import Sequence  # noqa: F401
    return value


def missing_while_body(a):
    if 0:
        while a > 0:
            a -= 1
    return a


def exercise() -> None:
    if_zero(1)
    if_one(1)
    if_true_no_else(2)
    nested_constants(3)
    nested_constants(0)
    debug_only(1)
    while_false(1)
    while_not_false(2)
    type_checking_only(1)
    missing_while_body(3)
