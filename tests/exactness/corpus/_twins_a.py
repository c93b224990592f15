"""A module whose code is another file's, line for line: its code objects compare equal to that file's."""

LIMIT = 3


def classify(value):
    if value > LIMIT:
        return "big"
    return "small"
