"""if/elif/else in every position coverage.py draws arcs for: one-liners, nesting, last statement of a body."""


def sign(value):
    if value > 0:
        return 1
    elif value < 0:
        return -1
    else:
        return 0


def clamp(value, low, high):
    if value < low: return low
    if value > high: return high
    return value


def check(value):
    if value is None: raise ValueError("no value")
    return value


def nested(a, b):
    if a:
        if b:
            result = "both"
        else:
            result = "a only"
    else:
        if b:
            result = "b only"
        else:
            result = "neither"
    return result


def last_in_function(flag, log):
    log.append("start")
    if flag:
        log.append("flag")


def last_in_loop(items):
    total = 0
    for item in items:
        total += 1
        if item:
            total += item
    return total


def last_in_try(value):
    try:
        if value:
            value += 1
    finally:
        if value == 3:
            value = 30
    return value


def last_in_with(lock, value):
    with lock:
        if value:
            value *= 2
    return value


def elif_chain(code):
    if code == 1:
        return "one"
    elif code == 2:
        return "two"
    elif code == 3:
        return "three"
    elif code == 4:
        return "four"
    return "many"


def never_called(value):
    if value:
        return 1
    return 2


def exercise() -> None:
    import threading

    sign(5)
    sign(-2)
    clamp(1, 2, 3)
    clamp(5, 2, 3)
    try:
        check(None)
    except ValueError:
        pass
    check(1)
    nested(True, False)
    nested(False, False)
    nested(True, True)
    last_in_function(True, [])
    last_in_loop([0, 1, 2])
    last_in_loop([])
    last_in_try(2)
    last_in_try(0)
    last_in_with(threading.Lock(), 3)
    elif_chain(2)
    elif_chain(9)
