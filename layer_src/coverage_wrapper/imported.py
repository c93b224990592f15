"""Modules imported before measuring began (decorator mode, CoverageContext): the lines sure to have run."""

from __future__ import annotations

import ast
import sys
import types
from collections.abc import Iterable, Iterator
from typing import Callable


def measured_modules(wants: Callable[[str], bool]) -> Iterator[tuple[types.ModuleType, str]]:
    """Imported modules with a source file that is measured, their import finished (importlib flags a
    module whose code is still running, e.g. a `with CoverageContext()` block at module level)."""
    for module in list(sys.modules.values()):
        filename = getattr(module, "__file__", None)
        if getattr(getattr(module, "__spec__", None), "_initializing", False):
            continue
        if isinstance(filename, str) and filename.endswith(".py") and wants(filename):
            yield module, filename


def ran_at_import(tree: ast.Module) -> set[int]:
    """Lines sure to have run once a module's import finished: its top-level statements (the header of
    compound ones), their decorators, and recursively the statements of its top-level class bodies.

    What ran inside top-level compound statements (an `if`'s body, a `try`'s handlers) is not known.
    """
    lines: set[int] = set()

    def statements(body: Iterable[ast.stmt]) -> None:
        for node in body:
            lines.add(node.lineno)
            lines.update(decorator.lineno for decorator in getattr(node, "decorator_list", ()))
            if isinstance(node, ast.ClassDef):
                statements(node.body)

    statements(tree.body)
    return lines


def lines_run_before(wants: Callable[[str], bool]) -> dict[str, set[int]]:
    """For every measured module already imported: the lines sure to have run at its import."""
    found = {}
    for _, filename in measured_modules(wants):
        try:
            with open(filename, "rb") as handle:
                found[filename] = ran_at_import(ast.parse(handle.read(), filename))
        except (OSError, SyntaxError, ValueError):
            continue
    return found
