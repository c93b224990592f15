"""Syntax new in Python 3.12: type aliases, generic functions and classes, nested f-strings, with branches inside."""

type Pair[T] = tuple[T, T]


def first[T](items: list[T], default: T) -> T:
    if items:
        return items[0]
    return default


class Box[T]:
    def __init__(self, value: T) -> None:
        self.value = value

    def get_or[D](self, default: D) -> T | D:
        if self.value is None:
            return default
        return self.value


def render(names: list[str]) -> str:
    return f"{", ".join(f"<{n}>" if n else "?" for n in names)}"


def swap[T](pair: "Pair[T]") -> "Pair[T]":
    left, right = pair
    if left == right:
        return pair
    return right, left


def exercise() -> None:
    assert first([], 3) == 3
    assert Box(None).get_or(1) == 1
    assert render(["a", ""]) == "<a>, ?"
    assert swap((1, 1)) == (1, 1)
