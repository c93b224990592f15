"""Three handler shapes measured by the benchmarks: CPU-bound, waiting on I/O, and tiny."""

import time


def _fib(n):
    return n if n < 2 else _fib(n - 1) + _fib(n - 2)


def cpu(event, context):
    total = 0
    for value in range(event.get("n", 2000)):
        if value % 3 == 0:
            total += value
        elif value % 5 == 0:
            total -= value
    return {"total": total, "fib": _fib(14)}


def io(event, context):
    time.sleep(event.get("sleep", 0.002))
    return {"ok": True}


def tiny(event, context):
    return {"statusCode": 200, "body": event.get("name", "world")}
