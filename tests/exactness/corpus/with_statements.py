"""with blocks: nested, several managers, return/break/continue/raise through them, suppressed exceptions, multi-line headers."""

import contextlib


class Resource:
    def __init__(self, name, log):
        self.name = name
        self.log = log

    def __enter__(self):
        self.log.append("enter " + self.name)
        return self

    def __exit__(self, exc_type, exc, tb):
        self.log.append("exit " + self.name)
        if exc_type is KeyError:
            return True
        return False


def simple(log):
    with Resource("a", log) as res:
        res.log.append("body")
    return len(log)


def return_inside(log, early):
    with Resource("a", log):
        if early:
            return "early"
        log.append("late")
    return "after"


def nested_return(log):
    with Resource("outer", log):
        with Resource("inner", log):
            return len(log)


def several(log, fail):
    with Resource("a", log), Resource("b", log) as second:
        if fail:
            raise KeyError("suppressed by a's manager")
        second.log.append("both")
    return log[-1]


def break_through(items, log):
    for item in items:
        with Resource(str(item), log):
            if item == 2:
                break
    return log


def continue_through(items, log):
    for item in items:
        with Resource(str(item), log):
            if item == 1:
                continue
            log.append("kept")
    return log


def raise_through(log, fail):
    try:
        with Resource("r", log):
            if fail:
                raise ValueError("through")
            log.append("fine")
    except ValueError:
        return "raised"
    return "ok"


def untaken_if_through(log, flag):
    with Resource("u", log):
        if flag:
            log.append("flag")
    log.append("after")


def suppressed(divisor):
    with contextlib.suppress(ZeroDivisionError):
        return 10 / divisor
    return None


def multiline_header(log, name):
    with Resource(
        name,
        log,
    ) as res, contextlib.suppress(
        KeyError,
    ):
        res.log.append(name)
    return res.name


def with_lambda(log):
    with Resource("lam", log) as res:
        pick = lambda: res.name
    return pick()


def never_called(log):
    with Resource("never", log):
        return log


def exercise() -> None:
    log = []
    simple(log)
    return_inside(log, True)
    return_inside(log, False)
    nested_return(log)
    several(log, True)
    several(log, False)
    break_through([1, 2, 3], log)
    continue_through([1, 2], log)
    raise_through(log, True)
    untaken_if_through(log, False)
    suppressed(0)
    suppressed(2)
    multiline_header(log, "m")
    with_lambda(log)
