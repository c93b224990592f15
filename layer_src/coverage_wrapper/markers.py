"""The `markers` core: branch coverage on Python 3.12 and 3.13 at the cost of line coverage.

At import, a measured module's syntax tree gets a no-op statement (a marker) at the start of every
if/while/for body and `else` (an `else` is made where there is none) and of every `case` body, plus
a catch-all `case` after a match without one. A marker's line number, from `MARKER_BASE` up, names its
edge. `sys.monitoring` LINE events record each real line and each marker once and return DISABLE, so
a warm invocation runs no callback at all; before 3.14 BRANCH events cannot be silenced one direction
at a time (CPython issue 122548).

At save, coverage.py's own parser turns the markers into its arcs: an edge goes where the statement
after its marker goes in the marked tree, so loop tops, function exits (`-firstline`), `finally`
clauses and `with` exits are numbered by coverage.py itself. Lines are saved as self-arcs `(l, l)`,
which coverage.py's reporting reads as executed lines. The data file is ordinary coverage.py data.
"""

from __future__ import annotations

import ast
import copy
import importlib.machinery
import os
import sys
import threading
import types
from dataclasses import dataclass, field
from typing import Any, Iterator

from . import log
from .imported import measured_modules, ran_at_import
from .sources import is_measured

MARKER_BASE = 1 << 30
_BRANCHING = (ast.If, ast.While, ast.For, ast.AsyncFor)
TOOL_NAME = "lambda-coverage"


def supported(python: tuple[int, int] = sys.version_info[:2]) -> bool:
    """Python 3.12 and 3.13: sys.monitoring exists, and native branch events still cost too much."""
    return (3, 12) <= python < (3, 14)


# -- marking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One `case` of a match: the lines that run when its pattern is tried, and its body's marker."""

    first_line: int
    lines: range
    body_marker: int


@dataclass
class Marks:
    """What marking one module produced: each marker's branch line, and the case chains of its matches."""

    branch_lines: list[int] = field(default_factory=list)
    matches: list[tuple[list[Case], int | None]] = field(default_factory=list)

    def add(self, branch_line: int) -> ast.stmt:
        """A new marker statement for an edge leaving `branch_line`."""
        line = MARKER_BASE + len(self.branch_lines)
        self.branch_lines.append(branch_line)
        marker = ast.Expr(value=ast.Constant(value=None))
        for node in (marker, marker.value):
            node.lineno = node.end_lineno = line
            node.col_offset, node.end_col_offset = 0, 4
        return marker

    def marker_lines(self) -> set[int]:
        return set(range(MARKER_BASE, MARKER_BASE + len(self.branch_lines)))


def _irrefutable(case: ast.match_case) -> bool:
    def pattern_irrefutable(pattern: ast.pattern) -> bool:
        if isinstance(pattern, ast.MatchAs):
            return pattern.pattern is None or pattern_irrefutable(pattern.pattern)
        if isinstance(pattern, ast.MatchOr):
            return any(pattern_irrefutable(p) for p in pattern.patterns)
        return False

    return case.guard is None and pattern_irrefutable(case.pattern)


def mark(tree: ast.Module) -> Marks:
    """Put the markers into `tree` (in place); the same tree always gets the same markers."""
    marks = Marks()
    for node in [n for n in ast.walk(tree) if isinstance(n, (*_BRANCHING, ast.Match))]:
        if isinstance(node, ast.Match):
            _mark_match(node, marks)
            continue
        line = node.iter.lineno if isinstance(node, (ast.For, ast.AsyncFor)) else node.test.lineno
        node.body.insert(0, marks.add(line))
        node.orelse.insert(0, marks.add(line))
    return marks


def _mark_match(node: ast.Match, marks: Marks) -> None:
    chain = []
    for case in node.cases:
        end = max(case.pattern.end_lineno or case.pattern.lineno, case.guard.end_lineno if case.guard else 0)
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


def compile_marked(source: bytes | str, filename: str) -> tuple[types.CodeType, Marks]:
    tree = ast.parse(source, filename)
    marks = mark(tree)
    return compile(tree, filename, "exec", dont_inherit=True), marks


def code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    """A code object and every code object nested in it."""
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from code_objects(constant)


# -- resolving markers into coverage.py arcs -----------------------------------------------


class Resolver:
    """For one source file: which coverage.py arcs each marker, and each tried `case`, stands for."""

    def __init__(self, filename: str) -> None:
        from coverage.parser import PythonParser
        from coverage.python import get_python_source

        source = get_python_source(filename)
        tree = ast.parse(source, filename)
        self.marks = mark(tree)
        original = PythonParser(text=source, filename=filename)
        original.parse_source()
        marked = copy.copy(original)
        possible = original.arcs()
        marked._ast_root = tree  # coverage.py's arc analysis of the marked tree, with the markers as statements
        marked._all_arcs = None
        marked.raw_statements = original.raw_statements | self.marks.marker_lines()
        following: dict[int, set[int]] = {}
        for start, end in marked.arcs():
            following.setdefault(start, set()).add(end)
        self.first_line = original.first_line
        self._possible = possible
        self._following = following

    def _after(self, line: int) -> set[int]:
        return {end for end in self._following.get(line, ()) if end < MARKER_BASE}

    def arcs_for(self, marker_line: int) -> set[tuple[int, int]]:
        branch = self.first_line(self.marks.branch_lines[marker_line - MARKER_BASE])
        ends: set[int] = set()
        for end in self._after(marker_line):
            # A body on the branch line itself (`if x: return`): the edge goes where that body goes.
            ends |= self._after(branch) if end == branch else {end}
        return {(branch, end) for end in ends if (branch, end) in self._possible}

    def case_arcs(self, executed: set[int]) -> set[tuple[int, int]]:
        """A `case` that failed leads to the next one; it failed when the next was tried at all."""
        arcs = set()
        for chain, no_match in self.marks.matches:
            tried_later = no_match in executed if no_match is not None else False
            for earlier, later in reversed(list(zip(chain, chain[1:]))):
                tried_later = tried_later or later.body_marker in executed or any(l in executed for l in later.lines)
                arc = (self.first_line(earlier.first_line), self.first_line(later.first_line))
                if tried_later and arc in self._possible:
                    arcs.add(arc)
        return arcs

    def arcs(self, executed: set[int]) -> set[tuple[int, int]]:
        """coverage.py arcs for the raw lines and markers one file recorded: lines as self-arcs."""
        found = {(line, line) for line in executed if line < MARKER_BASE}
        for line in executed:
            if line >= MARKER_BASE:
                found |= self.arcs_for(line)
        return found | self.case_arcs(executed)


# -- the core ------------------------------------------------------------------------------


class _MarkingLoader(importlib.machinery.SourceFileLoader):
    """A source loader whose modules run from the marked tree, with LINE events on their code."""

    core: "MarkersCore"

    def get_code(self, fullname: str) -> types.CodeType:  # type: ignore[override]
        path = self.get_filename(fullname)
        try:
            code, _ = compile_marked(self.get_data(path), path)
        except SyntaxError:
            return super().get_code(fullname)  # the user's error, exactly as without the layer
        self.core.watch(code, path)
        return code


class _Finder:
    """First on sys.meta_path: hands measured source modules to the marking loader."""

    def __init__(self, core: "MarkersCore") -> None:
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
            if not origin.endswith(".py") or not self.core.wants(origin):
                return spec  # not Python source of the function's own (extension modules, built-ins, dependencies)
            if type(spec.loader) is not importlib.machinery.SourceFileLoader:
                self.core.cannot_mark(origin, f"loaded by {type(spec.loader).__name__}")
                return spec
            loader = _MarkingLoader(fullname, origin)
            loader.core = self.core
            spec.loader = loader
            return spec
        return None


class MarkersCore:
    """Measures the files coverage.py's `include`/`omit` select; `save` writes coverage.py arc data."""

    def __init__(self, data_file: str, include: list[str], omit: list[str]) -> None:
        self.data_file = data_file
        self.include = include
        self.omit = omit
        self.measuring_imports = False
        self._measuring = False
        self._files: set[str] = set()
        self._context = ""
        self._executed: dict[str, set[int]] = {}  # of the current context
        self._by_context: dict[str, dict[str, set[int]]] = {"": self._executed}
        self._resolvers: dict[str, Resolver | None] = {}
        self._ran_at_import: dict[str, set[int]] = {}
        self._unmarked: set[str] = set()
        self._fallback: Any = None
        self._finder = _Finder(self)
        self._lock = threading.Lock()
        self._data: Any = None
        self._saved: dict[str, dict[str, set[tuple[int, int]]]] = {}
        self._tool: int | None = None

    # sys.monitoring wiring

    def _on_line(self, code: types.CodeType, line: int) -> Any:
        if not self._measuring:
            return None  # outside a CoverageContext block: keep the event for when measuring resumes
        executed = self._executed.get(code.co_filename)
        if executed is None:
            executed = self._executed.setdefault(code.co_filename, set())
        executed.add(line)
        return sys.monitoring.DISABLE

    def wants(self, filename: str) -> bool:
        return is_measured(filename, self.include, self.omit)

    def watch(self, code: types.CodeType, filename: str) -> None:
        """Turn on LINE events for a module's code objects."""
        self._files.add(filename)
        events = sys.monitoring.events.LINE
        for nested in code_objects(code):
            sys.monitoring.set_local_events(self._tool, nested, events)  # type: ignore[arg-type]

    def measure_running(self, code: types.CodeType) -> None:
        """Line events for code a frame already runs (a `with CoverageContext()` block): its lines, not its branches."""
        if self.wants(code.co_filename):
            self.watch(code, code.co_filename)

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
        monitoring = sys.monitoring
        if self._tool is None:
            tool = monitoring.COVERAGE_ID
            if monitoring.get_tool(tool) is not None:
                raise RuntimeError(f"sys.monitoring tool {tool} is taken by {monitoring.get_tool(tool)}")
            monitoring.use_tool_id(tool, TOOL_NAME)
            monitoring.register_callback(tool, monitoring.events.LINE, self._on_line)
            self._tool = tool
            sys.meta_path.insert(0, self._finder)
            self.measuring_imports = True
            self._adopt_imported_modules()
        if self._fallback is not None:
            self._fallback.start()
        self._measuring = True

    def switch_context(self, context: str) -> None:
        """Record lines under another dynamic context from now on.

        Lines already recorded have their events off: a named context turns every event back on
        (`restart_events`), so its lines are recorded even when they ran before; the empty context
        (invocations not sampled for contexts) only takes what runs for the first time.
        """
        if context == self._context:
            return
        self._context = context
        self._executed = self._by_context.setdefault(context, {})
        if context:
            sys.monitoring.restart_events()

    def stop(self) -> None:
        self._measuring = False
        if self._fallback is not None:
            self._fallback.stop()

    # modules imported before start (decorator mode, CoverageContext)

    def _adopt_imported_modules(self) -> None:
        for module, filename in measured_modules(self.wants):
            try:
                self._adopt(module, filename)
            except Exception as exc:  # lines of old code still count; never stop measuring over one module
                self.cannot_mark(filename, f"{type(exc).__name__}: {exc}")

    def _adopt(self, module: types.ModuleType, filename: str) -> None:
        """Swap the marked code into the module's functions; the old code keeps LINE events for frames
        already running it (a `with CoverageContext()` block) and references not found here."""
        with open(filename, "rb") as handle:
            source = handle.read()
        tree = ast.parse(source, filename)
        self._ran_at_import[filename] = ran_at_import(tree)
        marked, _ = compile_marked(source, filename)
        replacements = {(c.co_qualname, c.co_firstlineno): c for c in code_objects(marked)}
        self.watch(marked, filename)
        seen: set[int] = set()
        old_code: list[types.CodeType] = []

        def visit(value: Any, depth: int) -> None:
            if id(value) in seen or depth > 4:
                return
            seen.add(id(value))
            if isinstance(value, types.FunctionType):
                code = value.__code__
                if code.co_filename == filename:
                    old_code.append(code)
                    new = replacements.get((code.co_qualname, code.co_firstlineno))
                    if new is not None and new.co_freevars == code.co_freevars:
                        value.__code__ = new
                for cell in value.__closure__ or ():
                    try:
                        visit(cell.cell_contents, depth + 1)
                    except ValueError:  # an empty cell
                        pass
                visit(getattr(value, "__wrapped__", None), depth + 1)
            elif isinstance(value, (staticmethod, classmethod)):
                visit(value.__func__, depth + 1)
            elif isinstance(value, property):
                for accessor in (value.fget, value.fset, value.fdel):
                    visit(accessor, depth + 1)
            elif isinstance(value, type) and getattr(value, "__module__", None) == module.__name__:
                for member in list(vars(value).values()):
                    visit(member, depth + 1)

        for value in list(vars(module).values()):
            visit(value, 0)
        for code in old_code:
            for nested in code_objects(code):
                sys.monitoring.set_local_events(self._tool, nested, sys.monitoring.events.LINE)  # type: ignore[arg-type]

    # saving

    def _resolver(self, filename: str) -> Resolver | None:
        if filename not in self._resolvers:
            try:
                self._resolvers[filename] = Resolver(filename)
            except Exception as exc:  # its lines still count
                self._resolvers[filename] = None
                log.warning(
                    "Coverage could not resolve a module's branches: its lines are saved, its branches are not",
                    operation="coverage_markers",
                    file=filename,
                    error=f"{type(exc).__name__}: {exc}",
                )
        return self._resolvers[filename]

    def _arcs_of(self, filename: str, executed: set[int]) -> set[tuple[int, int]]:
        resolver = None if filename in self._unmarked else self._resolver(filename)
        if resolver is None:
            return {(line, line) for line in executed if line < MARKER_BASE}
        return resolver.arcs(executed)

    def arcs(self) -> dict[str, dict[str, set[tuple[int, int]]]]:
        """What was measured so far, as coverage.py arcs per dynamic context and file."""
        measured: dict[str, dict[str, set[tuple[int, int]]]] = {}
        for context, recorded in list(self._by_context.items()):
            executed = {filename: lines.copy() for filename, lines in list(recorded.items())}
            if not context:  # files measured but not run, and lines run before measuring, belong to no request
                for filename in self._files | set(self._ran_at_import):
                    executed[filename] = executed.get(filename, set()) | self._ran_at_import.get(filename, set())
            measured[context] = {filename: self._arcs_of(filename, lines) for filename, lines in executed.items()}
        if self._fallback is not None:
            traced = self._fallback.get_data()
            for filename in self._unmarked:
                measured[""].setdefault(filename, set()).update(traced.arcs(filename) or ())
        return measured

    def save(self) -> None:
        from coverage.sqldata import CoverageData

        with self._lock:
            if self._data is None:
                self._data = CoverageData(basename=self.data_file)
            for context, arcs in self.arcs().items():
                saved = self._saved.setdefault(context, {})
                new = {path: found - saved.get(path, set()) for path, found in arcs.items()}
                new = {path: found for path, found in new.items() if found or path not in saved}
                if new:  # only what the data file lacks: a flush costs what is new, not all that was measured
                    self._data.set_context(context or None)
                    self._data.add_arcs(new)
                for path, found in new.items():
                    saved.setdefault(path, set()).update(found)
