"""Functions on their first call and after it, however they are held: a function's first call runs before its code is marked."""

import functools

REGISTRY = {}


def register(func):
    REGISTRY[func.__name__] = func  # kept only here: the module's attribute is not the function


@register
def routed(value):
    if value > 1:
        return "many"
    return "few"


def make_checker(limit):
    def check(value):  # a closure: the first call of make_checker makes one from unmarked code
        if value > limit:
            return "over"
        return "under"

    return check


def plain_decorator(func):
    def wrapper(*args):  # no functools.wraps: found only through the garbage collector, if at all
        result = func(*args)
        if result is None:
            return "none"
        return result

    return wrapper


def traced(func):
    @functools.wraps(func)
    def wrapper(*args):
        return func(*args)

    return wrapper


@plain_decorator
def maybe(value):
    if value:
        return value
    return None


@traced
def depth(n):
    if n <= 0:
        return 0
    return 1 + depth(n - 1)  # recursion inside the first call runs the marked code


def countdown(n):
    while n > 0:
        yield n
        n -= 1
    else:
        yield "done"


class Account:
    def __init__(self, balance):
        self.balance = balance

    def withdraw(self, amount):
        if amount > self.balance:
            raise ValueError("insufficient")
        self.balance -= amount
        return self.balance

    @staticmethod
    def fee(amount):
        return 1 if amount < 100 else 2

    @property
    def status(self):
        if self.balance:
            return "open"
        return "empty"


def shadowed(value):
    return "first definition"


def shadowed(value):  # noqa: F811 - the module keeps the second
    if value:
        return "second, truthy"
    return "second, falsy"


def exercise():
    results = [REGISTRY["routed"](0), REGISTRY["routed"](5), REGISTRY["routed"](1)]
    low, high = make_checker(1), make_checker(10)
    results += [low(5), low(0), high(5), make_checker(3)(4)]
    results += [maybe(0), maybe(3), maybe(0)]
    results += [depth(3), depth(0)]
    results += [list(countdown(2)), list(countdown(0))]
    account = Account(50)
    results += [account.withdraw(20), account.status, Account.fee(10), Account.fee(500)]
    try:
        account.withdraw(100)
    except ValueError as exc:
        results.append(str(exc))
    results += [Account(0).status, shadowed(1), shadowed(0)]
    return results
