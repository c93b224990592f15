"""The merge: the union of many raw data files into one combined coverage.py data file.

The only merge implementation; the combiner service and `combine_coverage_files` both call it.
Lines are unioned as integers of bits (one OR per file and path), arcs as sets, and the result is
written once: the work is linear in the size of the data, whatever line numbers it claims.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

from . import datafile
from .imported import IMPORTED_BEFORE, parse_imported_before
from .validation import MAX_MEASURED_FILES, Rejection, validate_data_file


# Set in combined data that holds lines of line-mode files beside branch data: those lines have no branch data.
LINES_WITHOUT_BRANCHES = "lambda_coverage_lines_without_branches"
# Combined data keeps at most this many context labels (the empty one and OVERFLOW_CONTEXT included), as
# validation allows one raw file; the measurements of labels past it are kept under OVERFLOW_CONTEXT.
OVERFLOW_CONTEXT = "(more contexts than a report keeps)"


@dataclass
class Measurements:
    """What a set of data files executed: per context label and relative path, line bits (line-mode files)
    and arcs (branch-mode files).

    coverage.py refuses to combine line and branch data; here neither is dropped. When any file
    measured branches the result is branch data, and the lines of line-mode files become self-arcs
    `(n, n)`, which coverage.py's reporting counts as executed lines and never as a taken branch
    (coverage/results.py; its sysmon core records lines the same way). The result is then marked with
    LINES_WITHOUT_BRANCHES so reports can say that some lines have no branch data.

    Context labels (`COVERAGE_CONTEXTS`) are kept as coverage.py's dynamic contexts: a union per label,
    so which requests ran a line survives every merge.

    The modules some environment imported before measuring began (IMPORTED_BEFORE) are a union too: the
    reporter lists what ran unseen in them, unless another environment measured it as executed.
    """

    context_lines: dict[str, dict[str, int]] = field(default_factory=dict)
    context_arcs: dict[str, dict[str, set[tuple[int, int]]]] = field(default_factory=dict)
    line_files: set[str] = field(default_factory=set)
    arc_files: set[str] = field(default_factory=set)
    branch: bool = False
    lines_without_branches: bool = False
    imported_before: set[str] = field(default_factory=set)

    def add_file(self, path: str) -> None:
        contents = datafile.read_contents(path, meta_keys=(LINES_WITHOUT_BRANCHES, IMPORTED_BEFORE))
        if contents.has_arcs:
            self.branch = True
            self.arc_files.update(contents.paths)  # measured but nothing executed: still a file of the data
            for label, by_path in contents.context_arcs.items():
                into = self.context_arcs.setdefault(label, {})
                for name, pairs in by_path.items():
                    into.setdefault(name, set()).update(pairs)
        else:
            self.line_files.update(contents.paths)
            for label, bits_by_path in contents.context_line_bits.items():
                into_bits = self.context_lines.setdefault(label, {})
                for name, bits in bits_by_path.items():
                    into_bits[name] = into_bits.get(name, 0) | bits
        if contents.meta.get(LINES_WITHOUT_BRANCHES) == "1":
            self.lines_without_branches = True
        try:
            self.imported_before.update(parse_imported_before(contents.meta.get(IMPORTED_BEFORE), MAX_MEASURED_FILES))
        except ValueError:  # validation quarantines such a file; read unvalidated, it only lacks the note
            pass

    @property
    def has_arcs(self) -> bool:
        return self.branch

    @property
    def contexts(self) -> list[str]:
        """The context labels other than the empty one that hold measurements."""
        return sorted((set(self.context_lines) | set(self.context_arcs)) - {""})

    @property
    def lines(self) -> dict[str, int]:
        """Per path of line-mode files, the line bits of every context."""
        union: dict[str, int] = {name: 0 for name in self.line_files}
        for by_path in self.context_lines.values():
            for name, bits in by_path.items():
                union[name] = union.get(name, 0) | bits
        return union

    @property
    def arcs(self) -> dict[str, set[tuple[int, int]]]:
        """Per path of branch-mode files, the arcs of every context."""
        union: dict[str, set[tuple[int, int]]] = {name: set() for name in self.arc_files}
        for by_path in self.context_arcs.values():
            for name, pairs in by_path.items():
                union.setdefault(name, set()).update(pairs)
        return union

    @property
    def mixed(self) -> bool:
        """Branch data that also holds lines measured without branches."""
        return self.branch and (self.lines_without_branches or any(any(by_path.values()) for by_path in self.context_lines.values()))

    def executed_lines(self) -> dict[str, list[int]]:
        """Per path, the executed lines in any context: linear in the data (bits are read byte by byte, never shifted per line)."""
        result: dict[str, set[int]] = {name: set(datafile.nums_of(bits)) for name, bits in self.lines.items()}
        for name, arcs in self.arcs.items():
            result.setdefault(name, set()).update(n for arc in arcs for n in arc if n > 0)
        return {name: sorted(lines) for name, lines in sorted(result.items())}

    @staticmethod
    def _bounded(by_context: dict[str, dict[str, Any]], union: Callable[[Any, Any], Any]) -> dict[str, dict[str, Any]]:
        """At most MAX_CONTEXTS labels: past them (in label order), measurements fold into OVERFLOW_CONTEXT.

        Deterministic for a set of labels, and a union either way: no executed line is lost.
        """
        from .validation import MAX_CONTEXTS

        labels = sorted(set(by_context) - {"", OVERFLOW_CONTEXT})
        room = MAX_CONTEXTS - 1 - (OVERFLOW_CONTEXT in by_context)  # the empty label always counts
        if len(labels) <= room:
            return by_context
        kept = {"", *labels[: MAX_CONTEXTS - 2]}
        bounded = {label: by_path for label, by_path in by_context.items() if label in kept}
        overflow: dict[str, Any] = {}
        for label, by_path in by_context.items():
            if label not in kept:
                for name, value in by_path.items():
                    overflow[name] = union(overflow[name], value) if name in overflow else value
        bounded[OVERFLOW_CONTEXT] = overflow
        return bounded

    def write(self, output_path: str) -> None:
        """Write as a coverage.py data file: branch data when any file measured branches, line data otherwise."""
        measured = self.line_files | self.arc_files
        imported_before = sorted(path for path in self.imported_before if path in measured)
        meta = {IMPORTED_BEFORE: json.dumps(imported_before)} if imported_before else {}
        if not self.branch:
            by_context = self._bounded(self.context_lines, lambda a, b: a | b)
            lines = {label: {name: datafile.nums_of(bits) for name, bits in by_path.items()} for label, by_path in by_context.items()}
            unlabeled = lines.pop("", {})
            datafile.write_data_file(output_path, lines=unlabeled, contexts=lines, touched=self.line_files, meta=meta)
            return
        arcs: dict[str, dict[str, set[tuple[int, int]]]] = {label: dict(by_path) for label, by_path in self.context_arcs.items()}
        for label, by_path in self.context_lines.items():
            into = arcs.setdefault(label, {})
            for name, bits in by_path.items():
                if bits:
                    into[name] = into.get(name, set()) | {(n, n) for n in datafile.nums_of(bits)}
        arcs = self._bounded(arcs, lambda a, b: a | b)
        empty = arcs.pop("", {})
        if self.mixed:
            meta[LINES_WITHOUT_BRANCHES] = "1"
        datafile.write_data_file(output_path, arcs=empty, contexts=arcs, touched=self.line_files | self.arc_files, meta=meta)


@dataclass
class MergeResult:
    merged: list[str] = field(default_factory=list)
    rejected: list[tuple[str, Rejection]] = field(default_factory=list)
    measurements: Measurements = field(default_factory=Measurements)


def merge_data_files(
    paths: Iterable[str],
    output_path: str | None = None,
    validate: bool = True,
    line_limits: Mapping[str, int] | None = None,
) -> MergeResult:
    """Validate and union data files; invalid ones are listed in `rejected`, the rest still merge.

    `line_limits` (from `source_line_limits` of the code version's source manifest) bounds each
    file's line numbers by its real length.
    """
    result = MergeResult()
    for path in paths:
        rejection = validate_data_file(path, line_limits=line_limits) if validate else None
        if rejection is None:
            try:
                result.measurements.add_file(path)
            except Exception as exc:  # validation passed but reading failed: still a clear reason
                rejection = Rejection("unreadable", f"{type(exc).__name__}: {exc}")
        if rejection is None:
            result.merged.append(path)
        else:
            result.rejected.append((path, rejection))
    if output_path is not None:
        result.measurements.write(output_path)
    return result
