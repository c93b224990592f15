"""Branches at the end of `finally` and `except` blocks left by return, break, continue or a propagating exception."""


def finally_after_return(early, flag):
    try:
        if early:
            return "early"
    finally:
        if flag:
            flag = "set"
    return "late"


def finally_after_raise(flag):
    try:
        raise KeyError(flag)
    finally:
        if flag:
            flag = "set"


def finally_in_loop_break(items, flag):
    for item in items:
        try:
            if item:
                break
        finally:
            if flag:
                flag = 0
    return flag


def finally_in_loop_continue(items, flag):
    for item in items:
        try:
            if item:
                continue
        finally:
            for _ in range(flag):
                flag -= 1
    return flag


def loop_in_finally_after_return(values):
    try:
        return len(values)
    finally:
        for value in values:
            values = values[1:]


def except_then_if(value, flag):
    try:
        return 10 // value
    except ZeroDivisionError:
        if flag:
            flag = "zero"
    return flag


def if_in_try_left_by_exception(value):
    try:
        if 10 // value:
            value = "big"
    except ZeroDivisionError:
        value = "zero"
    return value


def with_exit_after_return(flag):
    import contextlib

    with contextlib.nullcontext():
        if flag:
            return "inside"
    return "outside"


def generator_closed_early(log):
    try:
        yield 1
        yield 2
    finally:
        if log:
            log.append("closed")
    log.append("finished")


def exercise() -> None:
    assert finally_after_return(True, False) == "early"
    try:
        finally_after_raise(False)
    except KeyError:
        pass
    assert finally_in_loop_break([1], False) is False
    assert finally_in_loop_continue([1], 0) == 0
    assert loop_in_finally_after_return([]) == 0
    assert except_then_if(0, False) is False
    assert if_in_try_left_by_exception(0) == "zero"
    assert with_exit_after_return(True) == "inside"
    generator = generator_closed_early(None)
    next(generator)
    generator.close()
