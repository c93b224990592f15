"""Several functions made on one line at module level: lambdas share a name and a first line, and must keep their own code."""

INC, DEC = (lambda v: v + 1), (lambda v: v - 1)
PICK = {"low": lambda v: v if v < 10 else 10, "high": lambda v: v if v > 10 else 10}


class Bounds:
    lower, upper = (lambda self, v: max(v, 0)), (lambda self, v: min(v, 9))


def exercise() -> None:
    assert INC(1) == 2
    assert DEC(1) == 0
    assert PICK["low"](50) == 10
    assert PICK["high"](50) == 50
    bounds = Bounds()
    assert bounds.lower(-5) == 0
    assert bounds.upper(20) == 9
