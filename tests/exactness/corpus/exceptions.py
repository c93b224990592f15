"""try/except/else/finally: return, break and continue inside try and finally, re-raise, nesting, exception groups."""

import sys


class Refused(Exception):
    pass


def parse(text):
    try:
        value = int(text)
    except ValueError:
        return None
    except TypeError as exc:
        raise Refused(str(exc)) from exc
    else:
        value += 1
    finally:
        parse.calls = getattr(parse, "calls", 0) + 1
    return value


def return_in_try(flag):
    try:
        if flag:
            return "early"
        result = "late"
    finally:
        cleanup = True
    return result if cleanup else None


def return_in_finally(value):
    try:
        value = 10 // value
    finally:
        if value == 0:
            return "zero"
    return value


def break_in_finally(items):
    seen = []
    for item in items:
        try:
            seen.append(10 // item)
        finally:
            if item == 2:
                break
    return seen


def continue_in_finally(items):
    seen = []
    for item in items:
        try:
            seen.append(item)
        finally:
            if item == 1:
                continue
        seen.append(-item)
    return seen


def break_continue_through_try(items):
    kept = []
    for item in items:
        try:
            if item == "skip":
                continue
            if item == "end":
                break
            kept.append(item)
        except KeyError:
            kept.append("?")
    return kept


def nested(a, b):
    try:
        try:
            result = a / b
        except ZeroDivisionError:
            result = float("inf")
            if a < 0:
                raise
        finally:
            a += 1
    except ZeroDivisionError:
        result = float("-inf")
    return result


def reraise(value):
    try:
        return 1 / value
    except ZeroDivisionError:
        if value == 0:
            raise
        return None


def except_only_some(kind):
    try:
        if kind == 1:
            raise KeyError(kind)
        elif kind == 2:
            raise IndexError(kind)
        elif kind == 3:
            raise RuntimeError(kind)
    except KeyError:
        return "key"
    except (IndexError, AttributeError):
        return "index"
    except Exception:
        return "other"
    return "none"


def else_raises(value):
    try:
        number = int(value)
    except ValueError:
        number = 0
    else:
        if number < 0:
            raise Refused("negative")
    return number


def raise_followed_by_statement(flag):
    if flag:
        raise Refused("always")
        flag = False
    return flag


def bare_except(action):
    try:
        action()
    except:  # noqa: E722 -- the construct itself is what is measured
        return "caught"
    return "fine"


def except_jump_finally(x):
    for _ in range(2):
        try:
            if x == 1:
                raise ValueError(x)
            if x == 2:
                break
        except ValueError:
            if x == 1:
                continue
        finally:
            x += 10
    return x


def groups(flag):
    try:
        if flag:
            raise ExceptionGroup("two", [ValueError(1), TypeError(2)])
        return "none"
    except* ValueError:
        handled = "value"
    except* TypeError:
        handled = "type"
    return handled


def exit_handled(code):
    try:
        sys.exit(code)
    except SystemExit as exc:
        if exc.code:
            return exc.code
    return 0


def never_called(value):
    try:
        return int(value)
    except ValueError:
        return None


def exercise() -> None:
    parse("41")
    parse("x")
    try:
        parse(None)
    except Refused:
        pass
    return_in_try(True)
    return_in_finally(5)
    try:
        return_in_finally(0)
    except ZeroDivisionError:
        pass
    break_in_finally([5, 2, 1])
    continue_in_finally([1, 2])
    break_continue_through_try(["a", "skip", "end", "b"])
    nested(1, 0)
    nested(4, 2)
    try:
        nested(-1, 0)
    except ZeroDivisionError:
        pass
    reraise(2)
    try:
        reraise(0)
    except ZeroDivisionError:
        pass
    except_only_some(1)
    except_only_some(3)
    except_only_some(0)
    else_raises("x")
    try:
        else_raises("-3")
    except Refused:
        pass
    try:
        raise_followed_by_statement(True)
    except Refused:
        pass
    bare_except(lambda: 1 / 0)
    except_jump_finally(1)
    except_jump_finally(2)
    groups(True)
    exit_handled(3)
