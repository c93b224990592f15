"""Comprehensions and generator expressions: list, dict, set, nested, with conditions, at module and class level."""

SQUARES = [n * n for n in range(5)]
EVENS = {n for n in range(10) if n % 2 == 0}
INDEX = {name: position for position, name in enumerate(["a", "b"]) if name}
NOTHING = [n for n in [] if n]


class Table:
    COLUMNS = [c.upper() for c in ("id", "name")]
    WIDTHS = {c: len(c) for c in COLUMNS if c != "ID"}


def flatten(rows):
    return [cell for row in rows for cell in row if cell is not None]


def nested(matrix):
    return [[value * 2 for value in row if value] for row in matrix if row]


def dict_filter(mapping, keep):
    return {key: value for key, value in mapping.items() if key in keep if value}


def set_of_lengths(words):
    return {len(word) for word in words}


def lazy_sum(values):
    return sum(value for value in values if value > 0)


def first_match(values, wanted):
    return next((value for value in values if value == wanted), None)


def multiline(values):
    return {
        key: value
        for key, value
        in values
        if key
    }


def condition_in_element(values):
    return [value if value else -1 for value in values]


def generator_abandoned(values):
    squares = (value * value for value in values)
    return next(squares)


def never_called(values):
    return [value for value in values if value]


def exercise() -> None:
    flatten([[1, None], [], [2]])
    nested([[1, 0], [], [3]])
    dict_filter({"a": 1, "b": 0, "c": 2}, {"a", "b"})
    set_of_lengths(["ab", "c"])
    lazy_sum([1, -2, 3])
    lazy_sum([])
    first_match([1, 2, 3], 2)
    first_match([], 2)
    multiline([("a", 1), ("", 2)])
    condition_in_element([0, 1])
    generator_abandoned([3, 4])
