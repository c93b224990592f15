"""The `markers` core: branch coverage on Python 3.12 and 3.13 at the cost of line coverage.

A function's code is marked (`marking.mark_code`) at its first call: each way out of each branch
either runs into a line's first instruction that only it reaches, or gets a no-op instruction (a
marker) whose line number, from `MARKER_BASE` up, names it. `sys.monitoring` LINE events record each
real line and each marker once and return DISABLE, so a warm invocation runs no callback at all;
before 3.14 BRANCH events cannot be silenced one direction at a time (CPython issue 122548). The
first call itself runs the code as it was compiled, its lines from LINE events and its branches from
BRANCH events (see below); from the second call on the function runs its marked copy. So a cold start
pays for the code that runs, not for the size of the package: most of a package never runs in one
execution environment. A module with an `async for` is marked whole at import (only markers tell the
ways out of one), as is a module `lambda-coverage mark` marked ahead.

At save, each marker that ran, and each line's first instruction that implies a way out, becomes the
arc coverage.py's C tracer would have recorded: the LINE event carries the offset of the instruction
it fired at, and following the bytecode from there to the first instruction of another line (through
jumps, into exception handlers, out through returns as `-firstline`, up to the next branch, whose own
markers speak for it) gives the edge's destination in the very copy of the code that ran (a `finally`
body is compiled more than once). Lines are saved as self-arcs `(l, l)`, which coverage.py's reporting reads as executed lines.
The data file is ordinary coverage.py data.

In zero-code mode the functions are found by their qualified names in their module (methods, and
decorated functions through `__wrapped__`, included); decorator mode measures from the first
invocation, and finds every function of the modules imported before then through the garbage
collector. Code that runs unmarked (a function's first call, a closure made before its enclosing
function was marked, a function found no other way, a frame already running when a `CoverageContext`
block starts, a generator suspended at import) has its lines from LINE and PY_RESUME events and its
branches from BRANCH events, each branch instruction silenced once it has gone both ways.

`lambda-coverage mark` marks ahead, when the deployment package is built: each module's marked code
goes beside its bytecode in `__pycache__`, checked against the source's hash and this layer's
version, with the lines its import is sure to have run (decorator mode reports them; without the
file, they take a parse of the module at the first save).
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
from dataclasses import dataclass
from typing import Any

from . import log
from ._version import __version__
from .imported import ran_at_import
from .marking import MARKER_BASE, Marks, after, has_async_for, jump_target, mark_code
from .sources import is_measured

TOOL_NAME = "lambda-coverage"


@dataclass(frozen=True)
class Marked:
    """A measured module's marked code and its markers, and, when known, the lines its import is sure to have run."""

    code: types.CodeType
    marks: Marks
    ran_at_import: frozenset[int] | None = None


# -- marked code built ahead of time ---------------------------------------------------------

# A cache is used only by the layer version that wrote it, on the interpreter that wrote it, for the
# source it was written from: anything else is marked at import, as without a cache.
_CACHE_FORMAT = f"lambda-coverage markers 4 {__version__}"


def cache_path(source_path: str) -> str:
    """Where a module's marked code is kept: beside its bytecode, `__pycache__/NAME.cpython-3XX.markers`."""
    return importlib.util.cache_from_source(source_path)[: -len(".pyc")] + ".markers"


def write_cache(source_path: str) -> str:
    """Mark a module ahead of time; the cache file written."""
    with open(source_path, "rb") as handle:
        source = handle.read()
    tree = ast.parse(source, source_path)
    marks = Marks()
    code = mark_code(compile(tree, source_path, "exec", dont_inherit=True), marks)
    position = {id(nested): index for index, nested in enumerate(code_objects(code))}
    implied = tuple((position[id(nested)], tuple(offsets.items())) for nested, offsets in marks.implied)
    payload = marshal.dumps((
        _CACHE_FORMAT, importlib.util.MAGIC_NUMBER, importlib.util.source_hash(source),
        code, tuple(marks.branch_lines), implied, tuple(sorted(ran_at_import(tree))),
    ))
    target = cache_path(source_path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = f"{target}.{os.getpid()}.tmp"
    with open(partial, "wb") as handle:
        handle.write(payload)
    os.replace(partial, target)
    return target


def load_cache(source_path: str) -> tuple[Marked | None, str]:
    """The marked code `lambda-coverage mark` left for this module, or None and why there is none usable."""
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
    _, magic, digest, code, branch_lines, implied, ran = fields
    if magic != importlib.util.MAGIC_NUMBER:
        return None, "written by another Python version"
    try:
        with open(source_path, "rb") as handle:
            source = handle.read()
    except OSError as exc:
        return None, f"the source cannot be read: {exc}"
    if digest != importlib.util.source_hash(source):
        return None, "the source changed since it was marked"
    _imp._fix_co_filename(code, source_path)  # type: ignore[attr-defined]  # as importlib does for a pyc: the path is where it runs now
    nested = list(code_objects(code))
    return Marked(code, Marks(list(branch_lines), [(nested[index], dict(offsets)) for index, offsets in implied]), frozenset(ran)), ""


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


def events_to_wait_for(code: types.CodeType, implied: Iterable[int] = ()) -> set[Any]:
    """The LINE events a code object can still report: each line but its prologue's (up to RESUME), and
    each place a marker sits, as (marker, offset): a `finally` body compiled twice has its markers twice,
    each leading somewhere else; and each instruction whose line implies an edge, as (line, offset)."""
    raw = code.co_code
    prologue_end = next((offset + 2 for offset in range(0, len(raw), 2) if raw[offset] == _RESUME), 0)
    ranges = list(code.co_lines())
    events: set[Any] = {(line, start) if line >= MARKER_BASE else line for start, end, line in ranges if line is not None and end > prologue_end}
    for offset in implied:
        events.update((line, offset) for start, end, line in ranges if start <= offset < end)
    return events


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
_UNPACKS = frozenset({"UNPACK_SEQUENCE", "UNPACK_EX"})
_BRANCHES = frozenset({"POP_JUMP_IF_FALSE", "POP_JUMP_IF_TRUE", "POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE", "FOR_ITER"})


class Bytecode:
    """One code object's instructions, lines and exception handlers, to follow what runs after a marker."""

    def __init__(self, code: types.CodeType) -> None:
        self.code = code
        # Offset -> (name, jump target or None, source positions), read straight from the code as `dis`
        # lists it (inline caches left out, an EXTENDED_ARG its own instruction): `dis.Bytecode` builds far
        # more than this needs, at ~0.5 ms per function.
        raw, positions = code.co_code, list(code.co_positions())
        self.instructions: dict[int, tuple[str, int | None, Any]] = {}
        offset, arg = 0, 0
        while offset < len(raw):
            op, unit = raw[offset], offset // 2
            arg = arg << 8 | raw[offset + 1]
            target = jump_target(op, arg, unit)
            self.instructions[offset] = (dis.opname[op], None if target is None else 2 * target, positions[unit])
            arg = arg if op == dis.EXTENDED_ARG else 0
            offset = 2 * after(op, unit)
        offsets = list(self.instructions)
        self.following = dict(zip(offsets, offsets[1:]))
        self.handlers = dis._parse_exception_table(code) if code.co_exceptiontable else []  # type: ignore[attr-defined]  # there since 3.11, not in typeshed
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
        is `-firstline`, as coverage.py records it. A branch met on the way (its conditional jump, or a
        marker) ends the search: which way it went, its own marker or BRANCH event says."""
        found: set[int] = set()
        start_line = self.line_of.get(offset)
        # A header split over lines is one statement to coverage.py, which reports the edge to the line after
        # it: a loop's target (`for (index,\n value) in ...`), whose unpacking spans its lines, and, on the
        # way straight on from the branch, the code of a `case` pattern that spans the guard's line.
        first = last = branch_line
        way = self.instructions.get(self.following.get(offset, -1) if start_line and start_line >= MARKER_BASE else offset)
        if way is not None and way[0] in _UNPACKS and way[2][0] is not None:
            first, last = min(first, way[2][0]), max(last, way[2][1] or last)
        todo, seen = [(offset, True)], set()
        while todo:
            position, straight = todo.pop()
            if position in seen or position not in self.instructions:
                continue
            seen.add(position)
            line = self.line_of.get(position)
            if line is not None and line >= MARKER_BASE and line != start_line:
                continue
            name, target, (span_first, span_last, _, _) = self.instructions[position]
            if line is not None and line < MARKER_BASE and not first <= line <= last:
                if straight and span_first is not None and span_first <= branch_line == span_last:
                    first = min(first, span_first)
                else:
                    found.add(line)
                    continue
            if name in _BRANCHES and position != offset:
                continue
            if name in _EXITS or name in _RAISES:
                handler = self._handler(position) if name in _RAISES else None
                if handler is None:
                    found.add(self.exit)
                else:
                    todo.append((handler, False))
                continue
            if target is not None:  # a jump
                todo.append((target, False))
                if name in _ALWAYS_JUMPS:
                    continue
            following = self.following.get(position)
            if following is not None:
                todo.append((following, straight))
        return found


# -- the core ------------------------------------------------------------------------------

# Python 3.12 runs code whose events were switched off 5-9 % slower on call-heavy code than code never
# instrumented (measured here; a fresh copy runs at full speed); 3.13 does not, and there a function
# whose `__code__` is set loses its call specializations, so the copy would cost more than it saves.
_FRESH_COPIES = sys.version_info[:2] == (3, 12)
_FUNCTION = 0x0001  # CO_OPTIMIZED: a function's code, not a module's or a class body's


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


def _functions_running(code: types.CodeType, namespace: dict[str, Any]) -> list[types.FunctionType]:
    """The functions whose code is `code`, found by its qualified name in its module's namespace: a module's
    functions and its classes' methods (decorated ones through `__wrapped__`), not closures."""
    parts = code.co_qualname.split(".")
    if "<locals>" in parts or code.co_name.startswith("<"):
        return []
    holder: Any = namespace.get(parts[0])
    for part in parts[1:]:
        holder = vars(holder).get(part) if isinstance(holder, type) else None
    return [function for function in _functions_of(holder) if function.__code__ is code]


def _run_fresh_copy(code: types.CodeType, namespace: dict[str, Any]) -> None:
    """Code that has nothing left to report: the function running it gets an uninstrumented copy from its
    next call on. Functions found no other way keep the code."""
    for function in _functions_running(code, namespace):
        function.__code__ = code.replace()

_active: MarkersCore | None = None
_NOT_YET: set[Any] = {object()}  # pending events of marked code that has not run yet: worked out at its first event
_source_get_code = importlib.machinery.SourceFileLoader.get_code


def _marking_get_code(loader: Any, fullname: str) -> types.CodeType | None:
    """SourceFileLoader.get_code while the markers core measures: measured modules run marked.

    Installed on the class, so modules loaded by path (`spec_from_file_location`), reloaded, or found by
    any finder are marked alike. The code comes from the original (the pyc, or the source compiled), which
    answers exactly as without the layer, the user's syntax errors included; a module that cannot be marked
    runs it as it is, measured by the C tracer.
    """
    code = _source_get_code(loader, fullname)
    core = _active
    if core is None or not core.measuring_imports or code is None:
        return code
    path = code.co_filename
    try:
        if not path.endswith(".py") or not core.wants(path):
            return code
        return core.load_module(code, path)
    except Exception as exc:  # never stop an import over its measurement
        core.cannot_mark(path, f"{type(exc).__name__}: {exc}")
        return code


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
        self._marks: dict[str, Marks] = {}  # what each file's code is marked with from now on
        self._marks_by_code: dict[int, Marks] = {}  # what each marked code object's markers are numbered in, by id
        # The arcs each recorded site stands for, worked out once (a site is recorded once per context), by
        # the id of its code object (kept alive by the site) and its offset and marker or destination.
        self._resolved: dict[tuple[int, int, int], tuple[tuple[int, int], ...]] = {}
        self._context = ""
        # Per dynamic context: the lines (markers included) each file ran, and where each marker ran.
        self._executed: dict[str, set[int]] = {}
        self._sites: set[tuple[str, types.CodeType, int, int]] = set()
        # Per dynamic context, for code running unmarked: each branch instruction and where it went.
        self._branch_sites: set[tuple[str, types.CodeType, int, int]] = set()
        self._ways: dict[tuple[str, types.CodeType, int], set[int]] = {}
        # Per dynamic context, per marked code object: the events it has not reported yet in that context;
        # a code object that reported them all has its events off.
        # Keyed by the code object's id (its hash covers all the code nested in it: a module's costs ~7 us);
        # `_code_trees` keeps each marked code object alive.
        self._pending: dict[int, set[Any]] = {}
        # Code objects compare equal by content, not by file (two sibling packages' identical `__init__`
        # modules, say): every table of code objects here is keyed by id, and keeps the object alive.
        self._watched: dict[int, tuple[str, types.CodeType]] = {}  # marked modules' code
        # Code compiled before measuring began, held weakly: once its functions run marked code, nothing runs it.
        self._watched_unmarked: weakref.WeakSet[types.CodeType] = weakref.WeakSet()
        self._code_trees: dict[int, tuple[types.CodeType, ...]] = {}  # a code object first, then all nested in it
        self._waiting_for: dict[int, frozenset[Any]] = {}  # the events each marked code object can report, by id
        # Functions' code not marked yet, by id: marked at its first call (PY_START), which runs unmarked. With
        # the functions running it when they are known (decorator mode), else found by qualified name.
        self._lazy: dict[int, tuple[types.CodeType, str, list[weakref.ref[types.FunctionType]] | None]] = {}
        # Per marked code object (by id; the object is kept here): offset of a line's first instruction -> marker.
        self._implied: dict[int, tuple[types.CodeType, dict[int, int]]] = {}
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
        else:
            implied = self._implied.get(id(code))
            if implied is not None and implied[0] is code:
                offset = sys._getframe(1).f_lasti
                marker = implied[1].get(offset)
                if marker is not None:  # a line whose first instruction only an edge reaches: the edge was taken
                    self._sites.add((code.co_filename, code, offset, marker))
                    event = (line, offset)
        pending = self._pending.get(id(code))
        if pending is _NOT_YET:
            pending = self._pending[id(code)] = set(self._waiting(code))
        if pending is not None:
            pending.discard(line)
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

    def load_module(self, code: types.CodeType, filename: str) -> types.CodeType:
        """A measured module's code, with its events on: marked ahead of time when `lambda-coverage mark` did
        it; else as it is, its functions marked at their first call (most code of a package never runs in one
        environment); a module with an `async for` is marked whole now."""
        marked, stale = load_cache(filename)
        if marked is not None:
            self.marked_ahead += 1
            self._marks.setdefault(filename, marked.marks)
            self._watch_marked(marked.code, filename, marked.marks)
            return marked.code
        if stale:
            self._stale_cache(filename, stale)
        self.marked_at_import += 1
        if has_async_for(code):
            marks = self._marks_of(filename)
            known_implied = len(marks.implied)
            marked_code = mark_code(code, marks)
            self._watch_marked(marked_code, filename, marks, known_implied)
            return marked_code
        for nested in code_objects(code):
            if nested.co_flags & _FUNCTION and "<locals>" not in nested.co_qualname:
                self._lazy[id(nested)] = (nested, filename, None)
                self._watched_unmarked.add(nested)  # a switch of context re-arms each function, not the module
        self._files.add(filename)
        self._arm(code, filename, False)
        return code

    def _watch_marked(self, code: types.CodeType, filename: str, marks: Marks, implied_from: int = 0) -> None:
        """Marked code (or code marking left as it is) comes into use: its markers resolve through `marks` (a
        module reloaded from `lambda-coverage mark`'s file numbers its markers apart from the code marked before)."""
        for nested in code_objects(code):
            self._marks_by_code[id(nested)] = marks
        for nested, offsets in marks.implied[implied_from:]:
            self._implied[id(nested)] = (nested, offsets)
        self._watched_unmarked.discard(code)  # code that waited for its first call, now measured as marked
        self.watch(code, filename)

    def _marks_of(self, filename: str) -> Marks:
        marks = self._marks.get(filename)
        if marks is None:
            marks = self._marks[filename] = Marks()
        return marks

    def _stale_cache(self, filename: str, reason: str) -> None:
        if not self._stale_logged:  # once: every module of a package marked by another layer version says the same
            self._stale_logged = True
            log.warning(
                "Marked code from `lambda-coverage mark` is out of date: functions are marked at their first calls",
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

    def _on_start(self, code: types.CodeType, offset: int) -> Any:
        """A function's first call: its code is marked for the calls after this one, which runs unmarked."""
        waiting = self._lazy.pop(id(code), None)
        if waiting is not None and waiting[0] is code:
            try:
                self._mark_lazily(code, waiting[1], waiting[2], sys._getframe(1).f_globals)
            except Exception:  # never fail a call over its measurement: the function keeps running unmarked
                pass
        return sys.monitoring.DISABLE

    def _mark_lazily(self, code: types.CodeType, filename: str, known: list[Any] | None, namespace: dict[str, Any]) -> None:
        functions = [function for function in (ref() for ref in known) if function is not None and function.__code__ is code] \
            if known is not None else _functions_running(code, namespace)
        if not functions:
            return  # found no other way (a function kept only in a registry): it runs unmarked, measured as such
        marks = self._marks_of(filename)
        known_implied = len(marks.implied)
        new = mark_code(code, marks)
        # Nothing rewritten (no branch, or each way runs into a line only it reaches): measured as marked code
        # from this call on, which has run nothing yet.
        self._watch_marked(new, filename, marks, known_implied)
        if new is code:
            return
        for function in functions:
            function.__code__ = new
        # Only this first call runs the old code: a switch of context need not turn its events back on.
        self._watched_unmarked.discard(code)

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
            self._watched[id(code)] = (filename, code)
        else:
            self._watched_unmarked.add(code)
        self._arm(code, filename, marked)

    def _arm(self, code: types.CodeType, filename: str, marked: bool, switching: bool = False) -> None:
        """Events on for the code objects of `code` that have something left to report in this context;
        off, then on: that also brings back the events DISABLE turned off. A switch of context leaves a
        module's own code alone: it ran at its import and runs no more. What a code object can report is
        worked out at its first event (most code of a package never runs in a given environment)."""
        events = sys.monitoring.events
        wanted = events.LINE if marked else events.LINE | events.BRANCH | events.PY_RESUME
        lazy = self._lazy
        tree = self._code_trees.get(id(code)) if marked else tuple(code_objects(code))  # unmarked code is held weakly
        if tree is None:  # code objects never change
            tree = self._code_trees[id(code)] = tuple(code_objects(code))
        for nested in tree:
            if switching and nested.co_name == "<module>":
                continue
            if switching or not marked:  # events DISABLE turned off come back
                sys.monitoring.set_local_events(self._tool, nested, 0)  # type: ignore[arg-type]  # _tool is set once started
            if marked:
                pending = self._pending.get(id(nested))
                if pending is None:
                    self._pending[id(nested)] = _NOT_YET
                elif not pending:
                    continue  # it reported everything in this context already
            first_call = events.PY_START if not marked and id(nested) in lazy else 0
            sys.monitoring.set_local_events(self._tool, nested, wanted | first_call)  # type: ignore[arg-type]  # _tool is set once started

    def _waiting(self, code: types.CodeType) -> frozenset[Any]:
        waiting = self._waiting_for.get(id(code))
        if waiting is None:
            waiting = self._waiting_for[id(code)] = frozenset(events_to_wait_for(code, self._implied.get(id(code), (code, {}))[1]))
        return waiting

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
            monitoring.register_callback(tool, monitoring.events.PY_START, self._on_start)
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
            for filename, code in list(self._watched.values()):
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
        """Modules imported before measuring began: each of their functions gets its code marked at its first call.

        Every function object is found through the garbage collector (functions kept only by a cache, a
        dispatch table or a stack of wrappers included); functions sharing a code object share its marked
        copy. A function with nothing to rewrite keeps its code, measured as marked code is: its marked copy
        would differ in nothing, and Python 3.13 stops specializing calls to a function whose `__code__` is
        set. The old code of the others is measured unmarked from then on: a frame may be running it (a
        generator suspended at import).

        The lines each module's import is sure to have run come from `lambda-coverage mark`'s file when
        there is one, else from a parse at the first save, off the first invocation's path.
        """
        import gc

        wanted = set(self.imported_before)
        if not wanted:
            return
        for filename in wanted:
            self._files.add(filename)
            marked, stale = load_cache(filename)
            if marked is not None and marked.ran_at_import is not None:
                self._ran_at_import[filename] = set(marked.ran_at_import)
                self.marked_ahead += 1
            else:
                if stale:
                    self._stale_cache(filename, stale)
                self.marked_at_import += 1
        # By id: equal code objects of two files are two files' code.
        functions: dict[int, tuple[types.CodeType, list[weakref.ref[types.FunctionType]]]] = {}
        for value in gc.get_objects():
            if type(value) is types.FunctionType and value.__code__.co_filename in wanted:
                functions.setdefault(id(value.__code__), (value.__code__, []))[1].append(weakref.ref(value))
        for key, (code, holders) in functions.items():
            if not has_async_for(code):
                self._lazy[key] = (code, code.co_filename, holders)
                self.watch(code, code.co_filename, marked=False)
                continue
            marks = self._marks_of(code.co_filename)
            known_implied = len(marks.implied)
            try:
                new = mark_code(code, marks)
            except Exception:  # never stop measuring over one function: it runs unmarked
                self.watch(code, code.co_filename, marked=False)
                continue
            self._watch_marked(new, code.co_filename, marks, known_implied)
            if new is code:
                continue
            for ref in holders:
                function = ref()
                if function is not None:
                    function.__code__ = new
            self.watch(code, code.co_filename, marked=False)  # a frame may be running it (a generator suspended at import)

    def _lines_ran_at_import(self) -> dict[str, set[int]]:
        """Per module imported before measuring began, the lines its import is sure to have run."""
        for filename in self.imported_before:
            if filename not in self._ran_at_import:
                try:
                    with open(filename, "rb") as handle:
                        self._ran_at_import[filename] = ran_at_import(ast.parse(handle.read(), filename))
                except Exception:  # unreadable now, or not Python: only what ran since is reported
                    self._ran_at_import[filename] = set()
        return self._ran_at_import

    # saving

    def _arcs_of(self, filename: str, executed: set[int], sites: Iterable[tuple], branches: Iterable[tuple]) -> set[tuple[int, int]]:
        """coverage.py arcs for what one file ran: lines as self-arcs, markers and branch events as the arcs
        of their edges.

        A site is resolved once and remembered. The bytecode followed to resolve them is read one code
        object at a time and let go: every function's first call runs unmarked, so a first flush can have
        sites in two copies of each function's code, and all their instructions at once would cost megabytes.
        """
        found = {(line, line) for line in executed if line < MARKER_BASE}
        new: list[tuple[bool, tuple[Any, ...]]] = []
        for is_marker, recorded in ((True, sites), (False, branches)):
            for site in recorded:
                resolved = self._resolved.get((id(site[1]), site[2], site[3]))
                if resolved is None:
                    new.append((is_marker, site))
                else:
                    found.update(resolved)
        new.sort(key=lambda entry: id(entry[1][1]))  # by code object
        bytecode: Bytecode | None = None
        for is_marker, site in new:
            _, code, offset, end_or_marker = site
            if bytecode is None or bytecode.code is not code:
                bytecode = Bytecode(code)
            if is_marker:
                branch: int | None = self._marks_by_code[id(code)].branch_lines[end_or_marker - MARKER_BASE]
                start = offset
            else:
                branch, start = bytecode.line_of.get(offset), end_or_marker
            resolved = tuple((branch, end) for end in bytecode.next_lines(start, branch)) if branch is not None else ()
            self._resolved[(id(code), offset, end_or_marker)] = resolved
            found.update(resolved)
        return found

    def arcs(self) -> dict[str, dict[str, set[tuple[int, int]]]]:
        """What was measured so far, as coverage.py arcs per dynamic context and file."""
        measured: dict[str, dict[str, set[tuple[int, int]]]] = {}
        for context, (recorded, recorded_sites, recorded_branches, _, resumed) in list(self._by_context.items()):
            executed = {filename: lines.copy() for filename, lines in list(recorded.items())}
            for filename, lines in list(resumed.items()):
                executed.setdefault(filename, set()).update(lines)
            if not context:  # files measured but not run, and lines run before measuring, belong to no request
                ran = self._lines_ran_at_import()
                for filename in self._files | set(ran):
                    executed[filename] = executed.get(filename, set()) | ran.get(filename, set())
            sites: dict[str, list[tuple]] = {}
            for site in recorded_sites.copy():
                sites.setdefault(site[0], []).append(site)
            branches: dict[str, list[tuple]] = {}
            for site in recorded_branches.copy():
                branches.setdefault(site[0], []).append(site)
                executed.setdefault(site[0], set())
            measured[context] = {
                filename: self._arcs_of(filename, lines, sites.get(filename, ()), branches.get(filename, ()))
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
