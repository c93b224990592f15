"""Constructs combined: match in loops, guards on one-line cases, loops and ifs ending try, with and case bodies."""

import asyncio
import contextlib


def route_all(events):
    handled = []
    for event in events:
        match event:
            case {"skip": True}:
                continue
            case {"stop": True}:
                break
            case {"kind": kind} if kind in ("a", "b"):
                handled.append(kind)
            case _:
                if event:
                    handled.append("other")
    else:
        handled.append("done")
    return handled


def guarded_one_liners(value):
    match value:
        case int(n) if n > 5: return "big"
        case int(n): return "small"
        case _: return "other"


def case_body_ends_with_if(value, log):
    match value:
        case [first, *_]:
            if first:
                log.append(first)
        case _:
            log.append(None)
    return log


def while_else_multiline(items, limit):
    while (
        items
        and len(items) > limit
    ):
        if items.pop() is None:
            break
    else:
        items.append("exhausted")
    return items


def loop_ends_with_try(values):
    kept = []
    for value in values:
        try:
            if value < 0:
                continue
            kept.append(value)
        finally:
            kept.append("f")
    else:
        kept.append("end")
    return kept


def with_ends_with_loop(values):
    with contextlib.nullcontext(values) as items:
        for item in items:
            if item:
                return item
    return None


def nested_functions_in_branches(flag):
    if flag:
        def pick(value):
            if value:
                return value
            return "empty"
    else:
        pick = None
    return pick("") if pick else None


async def async_one_liners(values):
    async def source():
        for value in values:
            yield value
    seen = []
    async for value in source(): seen.append(value)
    async with contextlib.nullcontext():
        if seen:
            return seen
    return None


def exercise() -> None:
    assert route_all([{"skip": True}, {"kind": "a"}, {"kind": "z"}, {"stop": True}]) == ["a", "other"]
    assert route_all([]) == ["done"]
    assert guarded_one_liners(9) == "big"
    assert guarded_one_liners(2) == "small"
    assert case_body_ends_with_if([0, 1], []) == []
    assert while_else_multiline([1, None, 2], 1) == [1]
    assert while_else_multiline([1], 3) == [1, "exhausted"]
    assert loop_ends_with_try([1, -1]) == [1, "f", "f", "end"]
    assert with_ends_with_loop([0, 5]) == 5
    assert nested_functions_in_branches(True) == "empty"
    assert asyncio.run(async_one_liners([1])) == [1]
