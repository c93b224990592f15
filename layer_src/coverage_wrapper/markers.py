"""The `markers` core: branch coverage on Python 3.12 and 3.13 at the cost of line coverage.

At import, a measured module's syntax tree gets a no-op statement (a marker) at the start of every
if/while/for body and `else` (an `else` is made where there is none) and of every `case` body, plus
a catch-all `case` after a match without one. A marker's line number, from `MARKER_BASE` up, names its
edge. `sys.monitoring` LINE events record each real line and each marker once and return DISABLE, so
a warm invocation runs no callback at all; before 3.14 BRANCH events cannot be silenced one direction
at a time (CPython issue 122548).

At save, each marker that ran becomes the arc coverage.py's C tracer would have recorded: the
marker's LINE event carries the offset of the instruction it fired at, and following the bytecode
from there to the first instruction of another line (through jumps, into exception handlers, out
through returns as `-firstline`) gives the edge's destination in the very copy of the code that
ran (a `finally` body is compiled more than once). A `case` that failed is known from the next
`case` having been tried. Lines are saved as self-arcs `(l, l)`, which coverage.py's reporting
reads as executed lines. The data file is ordinary coverage.py data.

Code compiled before measuring began (decorator mode, a frame already running when a
`CoverageContext` block starts, a generator suspended at import) runs unmarked: its lines come from
LINE and PY_RESUME events, its branches from BRANCH events, each branch instruction silenced once it
has gone both ways.

Marking costs a parse and a compile of each measured module at import. `lambda-coverage mark` does it
ahead, when the deployment package is built: each module's marked code goes beside its bytecode in
`__pycache__`, checked against the source's hash and this layer's version, and loads as fast as a pyc.
"""

from __future__ import annotations

import _imp
import ast
import dis
import importlib.machinery
import importlib.util
import marshal
import os
import sys
import threading
import types
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import log
from ._version import __version__
from .imported import ran_at_import
from .sources import is_measured

MARKER_BASE = 1 << 30
_BRANCHING = (ast.If, ast.While, ast.For, ast.AsyncFor)
TOOL_NAME = "lambda-coverage"


# -- marking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One `case` of a match: the lines that run when its pattern is tried, and its body's marker."""

    first_line: int
    lines: range
    body_marker: int


@dataclass
class Marks:
    """What marking one module produced: each marker's branch line, the case chains of its matches, and the
    edges that need no marker, as (branch line, the line the edge is sure to reach first)."""

    branch_lines: list[int] = field(default_factory=list)
    matches: list[tuple[list[Case], int | None]] = field(default_factory=list)
    implied: list[tuple[int, int]] = field(default_factory=list)

    def add(self, branch_line: int) -> ast.stmt:
        """A new marker statement for an edge leaving `branch_line`."""
        line = MARKER_BASE + len(self.branch_lines)
        self.branch_lines.append(branch_line)
        marker = ast.Expr(value=ast.Constant(value=None))
        for node in (marker, marker.value):
            node.lineno = node.end_lineno = line
            node.col_offset, node.end_col_offset = 0, 4
        return marker


def _irrefutable(case: ast.match_case) -> bool:
    def pattern_irrefutable(pattern: ast.pattern) -> bool:
        if isinstance(pattern, ast.MatchAs):
            return pattern.pattern is None or pattern_irrefutable(pattern.pattern)
        if isinstance(pattern, ast.MatchOr):
            return any(pattern_irrefutable(p) for p in pattern.patterns)
        return False

    return case.guard is None and pattern_irrefutable(case.pattern)


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement in a body, nested ones included. Branches are statements: expressions are never
    visited, which makes this several times faster than `ast.walk` over a whole module."""
    for node in body:
        yield node
        for field_name in ("body", "orelse", "finalbody"):
            nested = getattr(node, field_name, None)
            if isinstance(nested, list):
                yield from _statements(nested)
        for clause in getattr(node, "handlers", ()):
            yield from _statements(clause.body)
        for case in getattr(node, "cases", ()):
            yield from _statements(case.body)


_PLAIN = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Delete, ast.Import, ast.ImportFrom, ast.Raise, ast.Expr, ast.If)


def _evaluated(test: ast.expr) -> bool:
    """A test the compiler cannot fold away: it names something (`__debug__` is a constant to it)."""
    return any(isinstance(node, ast.Name) and node.id != "__debug__" for node in ast.walk(test))


def _entry_line(node: ast.stmt, body: list[ast.stmt]) -> int | None:
    """The line an edge from a one-line header into `body` is sure to reach first, when nothing but that edge
    reaches it: a one-line plain statement (or `if`) after the header's line. That line's own event then says
    the edge was taken, and the body needs no marker, whose no-op instruction would run at every pass."""
    if isinstance(node, ast.For):
        header_line, header_end = node.lineno, max(node.iter.end_lineno or 0, node.target.end_lineno or 0)
    elif isinstance(node, (ast.If, ast.While)) and _evaluated(node.test):
        header_line, header_end = node.lineno, node.test.end_lineno or 0
    else:
        return None
    first = body[0] if body else None
    if header_end != header_line or first is None or not isinstance(first, _PLAIN):
        return None
    if first.lineno <= header_line or first.end_lineno != first.lineno:
        return None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):  # compiled to nothing
        return None
    if isinstance(first, ast.AnnAssign) and first.value is None:
        return None
    if isinstance(first, ast.If) and not _evaluated(first.test):
        return None
    return first.lineno


def mark(tree: ast.Module) -> Marks:
    """Put the markers into `tree` (in place); the same tree always gets the same markers.

    A body whose first line only its edge reaches (an `if` body, a loop body, an `else` or `elif` written
    in the source) gets no marker: the edge is implied by that line running. A made-up `else` always gets
    one: the statement after the `if` or loop is reached from the body too.
    """
    marks = Marks()
    for node in [n for n in _statements(tree.body) if isinstance(n, (*_BRANCHING, ast.Match))]:
        if isinstance(node, ast.Match):
            _mark_match(node, marks)
            continue
        line = node.iter.lineno if isinstance(node, (ast.For, ast.AsyncFor)) else node.test.lineno
        for body in (node.body, node.orelse):
            entry = _entry_line(node, body)
            if entry is None:
                body.insert(0, marks.add(line))
            else:
                marks.implied.append((line, entry))
    return marks


def _mark_match(node: ast.Match, marks: Marks) -> None:
    chain = []
    for case in node.cases:
        end = max(case.pattern.end_lineno or case.pattern.lineno, (case.guard.end_lineno or case.guard.lineno) if case.guard else 0)
        marker = marks.add(case.pattern.lineno)
        case.body.insert(0, marker)
        chain.append(Case(case.pattern.lineno, range(case.pattern.lineno, end + 1), marker.lineno))
    no_match = None
    if not _irrefutable(node.cases[-1]):
        marker = marks.add(node.cases[-1].pattern.lineno)
        wildcard = ast.MatchAs(pattern=None, name=None)
        wildcard.lineno = wildcard.end_lineno = marker.lineno
        wildcard.col_offset, wildcard.end_col_offset = 0, 1
        node.cases.append(ast.match_case(pattern=wildcard, guard=None, body=[marker]))
        no_match = marker.lineno
    marks.matches.append((chain, no_match))


@dataclass(frozen=True)
class Marked:
    """A measured module's marked code, its markers, and the lines sure to have run once its import finished."""

    code: types.CodeType
    marks: Marks
    ran_at_import: frozenset[int]


def compile_marked(source: bytes | str, filename: str) -> Marked:
    tree = ast.parse(source, filename)
    marks = mark(tree)
    # Markers go inside compound statements only, so the marked tree's top level is the source's.
    ran = frozenset(ran_at_import(tree))
    return Marked(compile(tree, filename, "exec", dont_inherit=True), marks, ran)


# -- marked code built ahead of time ---------------------------------------------------------

# A cache is used only by the layer version that wrote it, on the interpreter that wrote it, for the
# source it was written from: anything else is marked at import, as without a cache.
_CACHE_FORMAT = f"lambda-coverage markers 2 {__version__}"


def cache_path(source_path: str) -> str:
    """Where a module's marked code is kept: beside its bytecode, `__pycache__/NAME.cpython-3XX.markers`."""
    return importlib.util.cache_from_source(source_path)[: -len(".pyc")] + ".markers"


def write_cache(source_path: str) -> str:
    """Mark a module ahead of time; the cache file written."""
    with open(source_path, "rb") as handle:
        source = handle.read()
    marked = compile_marked(source, source_path)
    matches = tuple(
        (tuple((c.first_line, c.lines.start, c.lines.stop, c.body_marker) for c in chain), no_match)
        for chain, no_match in marked.marks.matches
    )
    payload = marshal.dumps((
        _CACHE_FORMAT, importlib.util.MAGIC_NUMBER, importlib.util.source_hash(source),
        marked.code, tuple(marked.marks.branch_lines), matches, tuple(marked.marks.implied), tuple(sorted(marked.ran_at_import)),
    ))
    target = cache_path(source_path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = f"{target}.{os.getpid()}.tmp"
    with open(partial, "wb") as handle:
        handle.write(payload)
    os.replace(partial, target)
    return target


def load_cache(source: bytes, source_path: str) -> tuple[Marked | None, str]:
    """The marked code `lambda-coverage mark` left for this source, or None and why there is none usable."""
    try:
        with open(cache_path(source_path), "rb") as handle:
            payload = handle.read()
    except (OSError, ValueError, NotImplementedError):
        return None, ""  # never marked ahead: nothing to say
    try:
        fields = marshal.loads(payload)
        fmt = fields[0]
    except Exception:
        return None, "unreadable"
    if fmt != _CACHE_FORMAT:
        return None, f"written by {fmt!r}, not {_CACHE_FORMAT!r}"
    _, magic, digest, code, branch_lines, matches, implied, ran = fields
    if magic != importlib.util.MAGIC_NUMBER:
        return None, "written by another Python version"
    if digest != importlib.util.source_hash(source):
        return None, "the source changed since it was marked"
    _imp._fix_co_filename(code, source_path)  # type: ignore[attr-defined]  # as importlib does for a pyc: the path is where it runs now
    marks = Marks(
        list(branch_lines),
        [([Case(first, range(start, stop), body) for first, start, stop, body in chain], no_match) for chain, no_match in matches],
        [tuple(edge) for edge in implied],
    )
    return Marked(code, marks, frozenset(ran)), ""


def mark_tree(root: str, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> tuple[list[str], dict[str, str]]:
    """Mark ahead every module under `root` the layer would measure there; the files marked, and those
    that could not be, with why."""
    from .sources import scan_sources

    marked, failed = [], {}
    for source in scan_sources(root, include, exclude):
        try:
            write_cache(source.absolute_path)
            marked.append(source.relative_path)
        except (OSError, SyntaxError, ValueError) as exc:
            failed[source.relative_path] = f"{type(exc).__name__}: {exc}"
    return marked, failed


_RESUME = dis.opmap["RESUME"]


def events_to_wait_for(code: types.CodeType) -> set[Any]:
    """The LINE events a code object can still report: each line but its prologue's (up to RESUME), and
    each place a marker sits, as (marker, offset): a `finally` body compiled twice has its markers twice,
    each leading somewhere else."""
    raw = code.co_code
    prologue_end = next((offset + 2 for offset in range(0, len(raw), 2) if raw[offset] == _RESUME), 0)
    return {
        (line, start) if line >= MARKER_BASE else line
        for start, end, line in code.co_lines()
        if line is not None and end > prologue_end
    }


def _has_markers(code: types.CodeType) -> bool:
    """Whether marking put a marker in a code object or in the code nested in it."""
    return any(line is not None and line >= MARKER_BASE for nested in code_objects(code) for _, _, line in nested.co_lines())


def code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    """A code object and every code object nested in it."""
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from code_objects(constant)


# -- resolving markers into coverage.py arcs -----------------------------------------------

_EXITS = frozenset({"RETURN_VALUE", "RETURN_CONST", "YIELD_VALUE"})
_RAISES = frozenset({"RAISE_VARARGS", "RERAISE"})
_ALWAYS_JUMPS = frozenset({"JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP", "JUMP_NO_INTERRUPT"})
_JUMPS = frozenset(dis.opname[op] for op in (*dis.hasjrel, *dis.hasjabs))


class Bytecode:
    """One code object's instructions, lines and exception handlers, to follow what runs after a marker."""

    def __init__(self, code: types.CodeType) -> None:
        listing = dis.Bytecode(code)
        self.instructions = {ins.offset: ins for ins in listing}
        offsets = sorted(self.instructions)
        self.following = dict(zip(offsets, offsets[1:]))
        self.handlers = listing.exception_entries  # type: ignore[attr-defined]  # there since 3.11, not in typeshed
        self.line_of: dict[int, int | None] = {}
        for start, end, line in code.co_lines():
            for offset in range(start, end, 2):
                self.line_of[offset] = line
        self.exit = -code.co_firstlineno

    def _handler(self, offset: int) -> int | None:
        for entry in self.handlers:  # the innermost entry comes first
            if entry.start <= offset < entry.end:
                return entry.target
        return None

    def next_lines(self, offset: int, branch_line: int) -> set[int]:
        """The lines a line tracer sees next after `branch_line`, running on from `offset`; a function exit
        is `-firstline`, as coverage.py records it."""
        found: set[int] = set()
        todo, seen = [offset], set()
        while todo:
            position = todo.pop()
            if position in seen or position not in self.instructions:
                continue
            seen.add(position)
            line = self.line_of.get(position)
            if line is not None and line != branch_line and line < MARKER_BASE:
                found.add(line)
                continue
            name = self.instructions[position].opname
            if name in _EXITS or name in _RAISES:
                handler = self._handler(position) if name in _RAISES else None
                if handler is None:
                    found.add(self.exit)
                else:
                    todo.append(handler)
                continue
            if name in _JUMPS:
                todo.append(self.instructions[position].argval)
                if name in _ALWAYS_JUMPS:
                    continue
            following = self.following.get(position)
            if following is not None:
                todo.append(following)
        return found


def case_arcs(marks: Marks, executed: set[int]) -> set[tuple[int, int]]:
    """A `case` that failed leads to the next one; it failed when the next was tried at all."""
    arcs = set()
    for chain, no_match in marks.matches:
        tried_later = no_match in executed if no_match is not None else False
        for earlier, later in reversed(list(zip(chain, chain[1:]))):
            tried_later = tried_later or later.body_marker in executed or any(line in executed for line in later.lines)
            if tried_later:
                arcs.add((earlier.first_line, later.first_line))
    return arcs


# -- the core ------------------------------------------------------------------------------

# Python 3.12 runs code whose events were switched off 5-9 % slower on call-heavy code than code never
# instrumented (measured here; a fresh copy runs at full speed); 3.13 does not, and there a function
# whose `__code__` is set loses its call specializations, so the copy would cost more than it saves.
_FRESH_COPIES = sys.version_info[:2] == (3, 12)


def _functions_of(value: Any) -> Iterator[types.FunctionType]:
    """The functions a module or class attribute holds: itself, what it wraps, a method's or property's functions."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        for accessor in (value.fget, value.fset, value.fdel):
            yield from _functions_of(accessor)
        return
    for _ in range(10):  # a stack of decorators, each keeping what it wraps in `__wrapped__`
        if not isinstance(value, types.FunctionType):
            return
        yield value
        value = getattr(value, "__wrapped__", None)


def _run_fresh_copy(code: types.CodeType, namespace: dict[str, Any]) -> None:
    """Code that has nothing left to report: the function running it, found by its qualified name in its
    module, gets an uninstrumented copy from its next call on. Functions found no other way keep the code."""
    parts = code.co_qualname.split(".")
    if "<locals>" in parts or code.co_name.startswith("<"):
        return
    holder: Any = namespace.get(parts[0])
    for part in parts[1:]:
        holder = vars(holder).get(part) if isinstance(holder, type) else None
    for function in _functions_of(holder):
        if function.__code__ is code:
            function.__code__ = code.replace()

_active: MarkersCore | None = None
_source_get_code = importlib.machinery.SourceFileLoader.get_code


def _marking_get_code(loader: Any, fullname: str) -> types.CodeType | None:
    """SourceFileLoader.get_code while the markers core measures: measured modules run marked.

    Installed on the class, so modules loaded by path (`spec_from_file_location`), reloaded, or found by
    any finder are marked alike. Anything unexpected, the user's syntax errors included, goes through the
    original, which answers exactly as without the layer.
    """
    core = _active
    try:
        path = loader.get_filename(fullname)
        if core is None or not core.measuring_imports or not path.endswith(".py") or not core.wants(path):
            return _source_get_code(loader, fullname)
        return core.load_module(loader.get_data(path), path).code
    except Exception:
        return _source_get_code(loader, fullname)


class _Finder:
    """First on sys.meta_path: notices measured source modules that no source file loader will load."""

    def __init__(self, core: MarkersCore) -> None:
        self.core = core

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not self.core.measuring_imports:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            origin = spec.origin or ""
            # Extension modules, built-ins and dependencies are not the function's own Python source.
            if origin.endswith(".py") and self.core.wants(origin) and not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
                self.core.cannot_mark(origin, f"loaded by {type(spec.loader).__name__}")
            return spec
        return None


class MarkersCore:
    """Measures the files coverage.py's `include`/`omit` select; `save` writes coverage.py arc data."""

    def __init__(self, data_file: str, include: list[str], omit: list[str], imported_before: Iterable[str] = ()) -> None:
        self.data_file = data_file
        self.include = include
        self.omit = omit
        self.imported_before = list(imported_before)  # measured modules whose import finished before measuring began
        self.measuring_imports = False
        self._measuring = False
        self._files: set[str] = set()
        self._marks: dict[str, Marks] = {}
        self._bytecode: dict[types.CodeType, Bytecode] = {}
        self._context = ""
        # Per dynamic context: the lines (markers included) each file ran, and where each marker ran.
        self._executed: dict[str, set[int]] = {}
        self._sites: set[tuple[str, types.CodeType, int, int]] = set()
        # Per dynamic context, for code running unmarked: each branch instruction and where it went.
        self._branch_sites: set[tuple[str, types.CodeType, int, int]] = set()
        self._ways: dict[tuple[str, types.CodeType, int], set[int]] = {}
        # Per dynamic context, per marked code object: the events it has not reported yet in that context;
        # a code object that reported them all has its events off.
        self._pending: dict[tuple[str, types.CodeType], set[Any]] = {}
        self._watched: dict[tuple[str, types.CodeType], None] = {}  # marked modules' code
        # Code compiled before measuring began, held weakly: once its functions run marked code, nothing runs it.
        self._watched_unmarked: weakref.WeakSet[types.CodeType] = weakref.WeakSet()
        self._code_trees: dict[types.CodeType, tuple[tuple[types.CodeType, frozenset[Any]], ...]] = {}
        # Per dynamic context: lines a generator suspended before measuring resumed on. They ran, but not
        # by an edge measured here, so no edge is inferred from them.
        self._resumed: dict[str, set[int]] = {}
        self._by_context: dict[str, tuple[dict[str, set[int]], set, set, dict, dict[str, set[int]]]] = {
            "": (self._executed, self._sites, self._branch_sites, self._pending, self._resumed)
        }
        self._ran_at_import: dict[str, set[int]] = {}
        self._unmarked: set[str] = set()
        self._fallback: Any = None
        self._finder = _Finder(self)
        self._lock = threading.Lock()
        self._data: Any = None
        self._saved: dict[str, dict[str, set[tuple[int, int]]]] = {}
        self._tool: int | None = None
        # Off with dynamic contexts: a new context turns the events of the measured code back on, so that
        # code must stay the code that runs.
        self.fresh_copies = _FRESH_COPIES
        self.marked_ahead = 0  # modules whose marked code `lambda-coverage mark` built
        self.marked_at_import = 0
        self._stale_logged = False

    # sys.monitoring wiring

    def _on_line(self, code: types.CodeType, line: int) -> Any:
        if not self._measuring:
            return None  # outside a CoverageContext block: keep the event for when measuring resumes
        executed = self._executed.get(code.co_filename)
        if executed is None:
            executed = self._executed.setdefault(code.co_filename, set())
        executed.add(line)
        event: Any = line
        if line >= MARKER_BASE:  # where it ran: the copy of the code it belongs to
            event = (line, sys._getframe(1).f_lasti)
            # Equal code objects of two files compare equal: the file name keeps their sites apart.
            self._sites.add((code.co_filename, code, event[1], line))
        pending = self._pending.get((code.co_filename, code))
        if pending is not None:
            pending.discard(event)
            if not pending:
                # Every line of this code ran: no event is left to wait for. A jump back into a line
                # keeps an instrumentation point that never fires, so it never gets its DISABLE;
                # switching the code's events off removes it (and the cost of calling through it).
                sys.monitoring.set_local_events(self._tool, code, 0)  # type: ignore[arg-type]  # _tool is set once started
                if self.fresh_copies:
                    try:
                        _run_fresh_copy(code, sys._getframe(1).f_globals)
                    except Exception:  # an attribute that raises, a frozen class: the function keeps its code
                        pass
        return sys.monitoring.DISABLE

    def wants(self, filename: str) -> bool:
        return is_measured(filename, self.include, self.omit)

    def load_module(self, source: bytes, filename: str) -> Marked:
        """A measured module's code, marked (ahead of time when `lambda-coverage mark` did it), with line events on."""
        marked, stale = load_cache(source, filename)
        if marked is None:
            if stale:
                self._stale_cache(filename, stale)
            marked = compile_marked(source, filename)
            self.marked_at_import += 1
        else:
            self.marked_ahead += 1
        self._marks[filename] = marked.marks
        self.watch(marked.code, filename)
        return marked

    def _stale_cache(self, filename: str, reason: str) -> None:
        if not self._stale_logged:  # once: every module of a package marked by another layer version says the same
            self._stale_logged = True
            log.warning(
                "Marked code from `lambda-coverage mark` is out of date: modules are marked at import (slower cold start)",
                operation="coverage_markers",
                file=filename,
                reason=reason,
            )

    def _on_branch(self, code: types.CodeType, offset: int, destination: int) -> Any:
        """Unmarked code only: a branch instruction is silenced once it went both ways."""
        if not self._measuring:
            return None
        self._branch_sites.add((code.co_filename, code, offset, destination))
        ways = self._ways.setdefault((code.co_filename, code, offset), set())
        ways.add(destination)
        return sys.monitoring.DISABLE if len(ways) > 1 else None

    def _on_resume(self, code: types.CodeType, offset: int) -> Any:
        """Unmarked code only: a generator suspended before measuring began resumes on a line that ran."""
        if not self._measuring:
            return None
        self._resumed.setdefault(code.co_filename, set()).add(sys._getframe(1).f_lineno)
        return sys.monitoring.DISABLE

    def watch(self, code: types.CodeType, filename: str, marked: bool = True) -> None:
        """Turn on the events of a module's code objects: LINE for marked code; for code that runs unmarked
        (compiled before measuring began), BRANCH and PY_RESUME too."""
        self._files.add(filename)
        if marked:
            self._watched[(filename, code)] = None
        else:
            self._watched_unmarked.add(code)
        self._arm(code, filename, marked)

    def _arm(self, code: types.CodeType, filename: str, marked: bool, switching: bool = False) -> None:
        """Events on for the code objects of `code` that have something left to report in this context;
        off, then on: that also brings back the events DISABLE turned off. A switch of context leaves a
        module's own code alone: it ran at its import and runs no more."""
        events = sys.monitoring.events
        wanted = events.LINE if marked else events.LINE | events.BRANCH | events.PY_RESUME
        tree = self._code_trees.get(code) if marked else tuple((nested, frozenset()) for nested in code_objects(code))
        if tree is None:  # code objects never change: what each can report is worked out once
            tree = self._code_trees[code] = tuple((nested, frozenset(events_to_wait_for(nested))) for nested in code_objects(code))
        for nested, waiting in tree:
            if switching and nested.co_name == "<module>":
                continue
            sys.monitoring.set_local_events(self._tool, nested, 0)  # type: ignore[arg-type]  # _tool is set once started
            if marked:
                pending = self._pending.get((filename, nested))
                if pending is None:
                    pending = self._pending[(filename, nested)] = set(waiting)
                if not pending:
                    continue  # it reported everything in this context already
            sys.monitoring.set_local_events(self._tool, nested, wanted)  # type: ignore[arg-type]  # _tool is set once started

    def measure_running(self, code: types.CodeType) -> None:
        """A frame already running unmarked code: a `with CoverageContext()` block's own lines and branches."""
        if self.wants(code.co_filename):
            self.watch(code, code.co_filename, marked=False)

    def cannot_mark(self, filename: str, reason: str) -> None:
        """A module that cannot be marked is measured by coverage.py's C tracer instead (logged once)."""
        if filename in self._unmarked:
            return
        self._unmarked.add(filename)
        log.warning(
            "Coverage cannot mark branches in a module: the C tracer measures it",
            operation="coverage_markers",
            file=filename,
            reason=reason,
        )
        if self._fallback is None:
            import coverage

            fallback = coverage.Coverage(
                data_file=None, branch=True, include=self.include, omit=self.omit, config_file=False, messages=False
            )
            fallback.set_option("run:core", "ctrace")
            fallback.set_option("run:disable_warnings", ["no-data-collected", "module-not-measured", "no-ctracer"])
            self._fallback = fallback
            if self._measuring:
                fallback.start()

    def start(self) -> None:
        global _active
        monitoring = sys.monitoring
        if self._tool is None:
            tool = monitoring.COVERAGE_ID
            if monitoring.get_tool(tool) is not None:
                raise RuntimeError(f"sys.monitoring tool {tool} is taken by {monitoring.get_tool(tool)}")
            monitoring.use_tool_id(tool, TOOL_NAME)
            monitoring.register_callback(tool, monitoring.events.LINE, self._on_line)
            monitoring.register_callback(tool, monitoring.events.BRANCH, self._on_branch)
            monitoring.register_callback(tool, monitoring.events.PY_RESUME, self._on_resume)
            self._tool = tool
            _active = self
            importlib.machinery.SourceFileLoader.get_code = _marking_get_code  # type: ignore[method-assign, assignment]  # patched on the class on purpose
            sys.meta_path.insert(0, self._finder)
            self.measuring_imports = True
            self._adopt_imported_modules()
        if self._fallback is not None:
            self._fallback.start()
        self._measuring = True

    def switch_context(self, context: str) -> None:
        """Record lines under another dynamic context from now on.

        Lines already recorded have their events off: a named context turns back on the events of the
        measured code that has not reported all its lines in that context yet (`restart_events` would
        re-instrument every code object of the process), so its lines are recorded even when they ran
        before; the empty context (invocations not sampled for contexts) only takes what runs for the
        first time.
        """
        if context == self._context:
            return
        self._context = context
        self._executed, self._sites, self._branch_sites, self._pending, self._resumed = self._by_context.setdefault(
            context, ({}, set(), set(), {}, {})
        )
        if context:
            self._ways = {}
            for filename, code in list(self._watched):
                self._arm(code, filename, True, switching=True)
            for code in list(self._watched_unmarked):
                self._arm(code, code.co_filename, False)

    def after_fork_in_child(self, data_file: str) -> None:
        """A forked child keeps measuring, into its own data file: what the parent recorded so far comes
        along (events of lines it ran are off in the child too), which merging treats as a union."""
        self.data_file = data_file
        self._data = None
        self._saved = {}
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._measuring = False
        if self._fallback is not None:
            self._fallback.stop()

    # modules imported before start (decorator mode, CoverageContext)

    def _adopt_imported_modules(self) -> None:
        """Modules imported before measuring began: their functions are given the marked code.

        Every function object is found through the garbage collector (functions kept only by a cache, a
        dispatch table or a stack of wrappers included) and gets the marked code object of the same name
        and first line, unless that is ambiguous (two lambdas on one line). A function without a marker in
        it or in the code nested in it keeps its code, measured as marked code is: its marked copy would
        differ in nothing, and Python 3.13 stops specializing calls to a function whose `__code__` is set.
        Code that keeps running unmarked (a frame already running it, an ambiguous function, a generator
        suspended at import) has its lines measured through line events on the old code.
        """
        import gc

        replacements: dict[str, dict[tuple[str, int], types.CodeType | None]] = {}
        for filename in self.imported_before:
            try:
                with open(filename, "rb") as handle:
                    source = handle.read()
                loaded = self.load_module(source, filename)
                self._ran_at_import[filename] = set(loaded.ran_at_import)
                marked = loaded.code
            except Exception as exc:  # never stop measuring over one module
                self.cannot_mark(filename, f"{type(exc).__name__}: {exc}")
                continue
            by_name: dict[tuple[str, int], types.CodeType | None] = {}
            for code in code_objects(marked):
                key = (code.co_qualname, code.co_firstlineno)
                by_name[key] = None if key in by_name else code
            replacements[filename] = by_name
        if not replacements:
            return
        unmarked: set[types.CodeType] = set()
        kept: set[types.CodeType] = set()
        for value in gc.get_objects():
            if type(value) is not types.FunctionType:
                continue
            code = value.__code__
            found = replacements.get(code.co_filename)
            if found is None:
                continue
            new = found.get((code.co_qualname, code.co_firstlineno))
            if new is not None and new.co_freevars == code.co_freevars:
                if not _has_markers(new):
                    kept.add(code)
                    continue
                value.__code__ = new
            unmarked.add(code)
        for code in kept:
            self.watch(code, code.co_filename)
        for code in unmarked:
            self.watch(code, code.co_filename, marked=False)

    # saving

    def _bytecode_of(self, code: types.CodeType) -> Bytecode:
        bytecode = self._bytecode.get(code)
        if bytecode is None:
            bytecode = self._bytecode[code] = Bytecode(code)
        return bytecode

    def _arcs_of(
        self, filename: str, executed: set[int], entered: set[int], sites: Iterable[tuple], branches: Iterable[tuple]
    ) -> set[tuple[int, int]]:
        """coverage.py arcs for what one file ran: lines as self-arcs, markers and branch events as the arcs
        of their edges, and the edges implied by the lines that line events reported (`entered`)."""
        found = {(line, line) for line in executed if line < MARKER_BASE}
        marks = self._marks.get(filename)
        if marks is not None:
            found.update(edge for edge in marks.implied if edge[1] in entered)
            for _, code, offset, marker in sites:
                branch = marks.branch_lines[marker - MARKER_BASE]
                found.update((branch, end) for end in self._bytecode_of(code).next_lines(offset, branch))
            found |= case_arcs(marks, executed)
        for _, code, offset, destination in branches:
            bytecode = self._bytecode_of(code)
            branch = bytecode.line_of.get(offset)
            if branch is not None:
                found.update((branch, end) for end in bytecode.next_lines(destination, branch))
        return found

    def arcs(self) -> dict[str, dict[str, set[tuple[int, int]]]]:
        """What was measured so far, as coverage.py arcs per dynamic context and file."""
        measured: dict[str, dict[str, set[tuple[int, int]]]] = {}
        for context, (recorded, recorded_sites, recorded_branches, _, resumed) in list(self._by_context.items()):
            entered = {filename: lines.copy() for filename, lines in list(recorded.items())}
            executed = {filename: lines.copy() for filename, lines in entered.items()}
            for filename, lines in list(resumed.items()):
                executed.setdefault(filename, set()).update(lines)
            if not context:  # files measured but not run, and lines run before measuring, belong to no request
                for filename in self._files | set(self._ran_at_import):
                    executed[filename] = executed.get(filename, set()) | self._ran_at_import.get(filename, set())
            sites: dict[str, list[tuple]] = {}
            for site in recorded_sites.copy():
                sites.setdefault(site[0], []).append(site)
            branches: dict[str, list[tuple]] = {}
            for site in recorded_branches.copy():
                branches.setdefault(site[0], []).append(site)
                executed.setdefault(site[0], set())
            measured[context] = {
                filename: self._arcs_of(filename, lines, entered.get(filename, set()), sites.get(filename, ()), branches.get(filename, ()))
                for filename, lines in executed.items()
            }
        if self._fallback is not None:
            traced = self._fallback.get_data()
            for filename in self._unmarked:
                measured[""].setdefault(filename, set()).update(traced.arcs(filename) or ())
        return measured

    def save(self) -> None:
        # Importing coverage.py's data module cost the first flush ~50 ms and ~5 MB: the writer needs only sqlite3.
        from .datafile import ArcWriter

        with self._lock:
            if self._data is None:
                self._data = ArcWriter(self.data_file)  # the file exists, in arc mode, even before any measured code ran
            for context, arcs in self.arcs().items():
                saved = self._saved.setdefault(context, {})
                new = {path: found - saved.get(path, set()) for path, found in arcs.items()}
                new = {path: found for path, found in new.items() if found or path not in saved}
                if new:  # only what the data file lacks: a flush costs what is new, not all that was measured
                    self._data.add(context, new)
                for path, found in new.items():
                    saved.setdefault(path, set()).update(found)
