"""Modules imported before measuring began (decorator mode, CoverageContext): the lines sure to have run, and
those whose execution is not known.

Which modules were imported before measuring began travels with the data: the shipper records their
paths in the uploaded file's `meta` table (IMPORTED_BEFORE), the merge unions them, and the reporter,
which has the code version's source, lists the lines `not_measured_at_import` finds there that no
environment measured as executed. The function itself parses nothing for it.
"""

from __future__ import annotations

import ast
import json
import sys
import types
from collections.abc import Iterable, Iterator
from typing import Any, Callable

# `meta` row of a data file: JSON list of the relative paths of measured modules imported before measuring began.
IMPORTED_BEFORE = "lambda_coverage_imported_before"


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


def not_measured_at_import(tree: ast.Module) -> set[int]:
    """Statements that ran, or not, at import, unseen: those of the module's code (class bodies included,
    function bodies not: calls are measured) that `ran_at_import` cannot vouch for. An `except` and a
    `case` count by their own line, as coverage.py counts them."""
    lines: set[int] = set()

    def statements(body: Iterable[ast.stmt]) -> None:
        for node in body:
            lines.add(node.lineno)
            lines.update(decorator.lineno for decorator in getattr(node, "decorator_list", ()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for field_name in ("body", "orelse", "finalbody"):
                nested = getattr(node, field_name, None)
                if isinstance(nested, list):
                    statements(nested)
            for handler in getattr(node, "handlers", ()):
                lines.add(handler.lineno)
                statements(handler.body)
            for case in getattr(node, "cases", ()):
                lines.add(case.pattern.lineno)
                statements(case.body)

    statements(tree.body)
    return lines - ran_at_import(tree)


def lines_run_before(filenames: Iterable[str]) -> dict[str, set[int]]:
    """For measured modules already imported: the lines sure to have run at their import."""
    found = {}
    for filename in filenames:
        try:
            with open(filename, "rb") as handle:
                found[filename] = ran_at_import(ast.parse(handle.read(), filename))
        except (OSError, SyntaxError, ValueError):
            continue
    return found


def record_imported_before(data_path: str, filenames: Any, source_root: str) -> None:
    """Record in a data file being shipped which of its modules were imported before measuring began, relative to
    `source_root` as its measured paths are (the outbox entry's metadata lists them; anything else there is ignored)."""
    if not isinstance(filenames, list):
        return
    root = source_root.rstrip("/") + "/"
    relative = sorted({name[len(root) :] for name in filenames if isinstance(name, str) and name.startswith(root)})
    if relative:
        from . import datafile

        datafile.write_meta(data_path, {IMPORTED_BEFORE: json.dumps(relative)})


def parse_imported_before(text: str | None, max_files: int) -> list[str]:
    """The relative paths an IMPORTED_BEFORE row lists; ValueError saying why when it is not what the layer writes."""
    if text is None:
        return []
    if not isinstance(text, str):
        raise ValueError("it is not text")
    from .validation import check_path

    try:
        paths = json.loads(text)
    except ValueError:
        raise ValueError("it is not JSON") from None
    if not isinstance(paths, list) or not all(isinstance(path, str) for path in paths):
        raise ValueError("it is not a list of paths")
    if len(paths) > max_files:
        raise ValueError(f"{len(paths)} paths is over {max_files}")
    for path in paths:
        problem = check_path(path)
        if problem is not None:
            raise ValueError(problem.message)
    return paths
