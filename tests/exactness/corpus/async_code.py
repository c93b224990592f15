"""Async code: coroutines, await, async for, async with, async generators and comprehensions, tasks."""

import asyncio


class Session:
    def __init__(self, log):
        self.log = log

    async def __aenter__(self):
        self.log.append("open")
        return self

    async def __aexit__(self, exc_type, exc, tb):
        self.log.append("close")
        return exc_type is KeyError


async def ticker(n):
    for i in range(n):
        await asyncio.sleep(0)
        if i == 2:
            return
        yield i


async def fetch(value):
    await asyncio.sleep(0)
    if value < 0:
        raise ValueError(value)
    return value * 2


async def consume(n):
    seen = []
    async for tick in ticker(n):
        if tick == 1:
            continue
        seen.append(tick)
    else:
        seen.append("end")
    return seen


async def guarded(log, fail):
    async with Session(log) as session:
        if fail:
            raise KeyError("swallowed")
        session.log.append("work")
        return "returned"
    return "suppressed"


async def gather_some(values):
    results = await asyncio.gather(*(fetch(v) for v in values), return_exceptions=True)
    return [r for r in results if not isinstance(r, Exception)]


async def comprehension(n):
    return [tick async for tick in ticker(n) if tick]


async def awaited_in_condition(value):
    if await fetch(value) > 2:
        return "big"
    return "small"


async def never_awaited():
    await asyncio.sleep(0)


async def main():
    await consume(2)
    await consume(5)
    log = []
    await guarded(log, True)
    await guarded(log, False)
    await gather_some([1, -1, 2])
    await comprehension(3)
    await awaited_in_condition(2)
    try:
        await fetch(-5)
    except ValueError:
        pass


def exercise() -> None:
    asyncio.run(main())
