"""Generators: yield in loops and branches, yield from, send, return, abandoned and partially consumed generators."""


def countdown(n):
    while n > 0:
        yield n
        n -= 1


def evens(values):
    for value in values:
        if value % 2:
            continue
        yield value


def delegate(first, second):
    yield from first
    result = yield from second
    if result:
        yield result


def returning(n):
    for i in range(n):
        yield i
    return "done"


def accumulator():
    total = 0
    while True:
        value = yield total
        if value is None:
            break
        total += value
    return total


def with_cleanup(log):
    try:
        yield 1
        yield 2
    finally:
        log.append("closed")


def padded(values):
    for value in values:
        yield (
            value
        )


def conditional_yield(flag):
    if flag:
        yield "flag"
    else:
        return
    yield "after"


def never_started():
    yield "never"


def exercise() -> None:
    list(countdown(3))
    list(evens([1, 2, 3, 4]))
    list(delegate(iter([1]), returning(2)))
    acc = accumulator()
    next(acc)
    acc.send(3)
    try:
        acc.send(None)
    except StopIteration:
        pass
    log = []
    gen = with_cleanup(log)
    next(gen)
    gen.close()
    list(padded([1, 2]))
    list(conditional_yield(True))
    never_started()
    partial = countdown(10)
    next(partial)
