# -*- coding: latin-1 -*-
"""Latin-1 source with CRLF line endings."""

NAME = "café"


def greet(name):
    if name == NAME:
        return "bonjour"
    for ch in name:
        if ch == "é":
            return "accent"
    return "hello"


def exercise() -> None:
    assert greet("xé") == "accent"
    assert greet("") == "hello"
