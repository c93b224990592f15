"""coverage.py as slim sources for a runtime shipped without bytecode (3.14): no docstrings or comments, lines kept.

Only a runtime's own interpreter can compile its bytecode, and 3.14's would not fit the size budget anyway,
so its coverage.py ships as `.py` files. They lose what the sourceless pycs of the other runtimes lose, docstrings, plus comments;
every other token stays where it was, so line numbers in tracebacks are coverage.py's own. Each file is
checked afterwards: its syntax tree must equal the original's but for docstrings and `pass`.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

from .layout import LayerBuildError

_OWNER_TYPES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
# What to cut: first line, first column, last line, end column (lines from 1, columns in characters), and
# what it is: a comment, a docstring, or a docstring alone in its body (a `pass` must stand in for it).
_Cut = tuple[int, int, int, int, str]


def slim_source(text: str, name: str = "<source>") -> str:
    """`text` without docstrings and comments (but a leading header: licence, coding cookie); lines stay put."""
    lines = text.splitlines(keepends=True)
    try:
        tree = ast.parse(text, filename=name)
        cuts = _docstring_cuts(tree, lines) + _comment_cuts(text)
    except (SyntaxError, tokenize.TokenError) as exc:
        raise LayerBuildError(f"{name}: cannot be slimmed, this Python does not parse it ({exc})") from None
    for first, start, last, end, kind in sorted(cuts, reverse=True):
        head, tail = lines[first - 1][:start], lines[last - 1][end:]
        # a docstring alone in its body, or sharing its line with code: `pass` keeps the syntax whole
        if kind == "alone" or (kind == "docstring" and (head.strip() or tail.strip())):
            head += "pass"
        merged = head + tail if tail.strip() else head.rstrip() + tail
        lines[first - 1 : last] = [merged] + ["\n"] * (last - first)
    slimmed = "".join(lines)
    if _shape(ast.parse(text), strip_docstrings=True) != _shape(ast.parse(slimmed, filename=name), strip_docstrings=False):
        raise LayerBuildError(f"{name}: slimming changed more than docstrings and comments")
    return slimmed


def slim_tree(directory: Path) -> None:
    """Slim every `.py` file under `directory` in place."""
    for path in sorted(directory.rglob("*.py")):
        display = path.relative_to(directory).as_posix()
        path.write_text(slim_source(path.read_text(encoding="utf-8"), display), encoding="utf-8")


def _docstring(node: ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> ast.Expr | None:
    first = node.body[0] if node.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first
    return None


def _docstring_cuts(tree: ast.Module, lines: list[str]) -> list[_Cut]:
    def column(line: int, utf8_offset: int) -> int:
        return len(lines[line - 1].encode("utf-8")[:utf8_offset].decode("utf-8"))

    cuts = []
    for node in ast.walk(tree):
        if not isinstance(node, _OWNER_TYPES):
            continue
        docstring = _docstring(node)
        if docstring is None or docstring.end_lineno is None or docstring.end_col_offset is None:
            continue
        # an empty body is a syntax error everywhere but in a module
        kind = "alone" if len(node.body) == 1 and not isinstance(node, ast.Module) else "docstring"
        start = column(docstring.lineno, docstring.col_offset)
        end = column(docstring.end_lineno, docstring.end_col_offset)
        cuts.append((docstring.lineno, start, docstring.end_lineno, end, kind))
    return cuts


def _comment_cuts(text: str) -> list[_Cut]:
    cuts = []
    in_header = True  # comments before the first statement: licence notice, coding cookie, shebang
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT and not in_header:
            cuts.append((*token.start, *token.end, "comment"))
        elif token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE):
            in_header = False
    return cuts


def _shape(tree: ast.Module, strip_docstrings: bool) -> str:
    """The tree as text, docstrings out (when asked) and `pass` dropped from the bodies that may hold one."""
    for node in ast.walk(tree):
        if isinstance(node, _OWNER_TYPES):
            if strip_docstrings and _docstring(node) is not None:
                del node.body[0]
            node.body = [statement for statement in node.body if not isinstance(statement, ast.Pass)]
    return ast.dump(tree)
