"""The merge: the union of many raw data files into one combined coverage.py data file.

The only merge implementation; the combiner service and `combine_coverage_files` both call it.
Lines are unioned as integers of bits (one OR per file and path), arcs as sets, and the result is
written once: the work is linear in the size of the data, whatever line numbers it claims.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from . import datafile
from .validation import Rejection, validate_data_file


# Set in combined data that holds lines of line-mode files beside branch data: those lines have no branch data.
LINES_WITHOUT_BRANCHES = "lambda_coverage_lines_without_branches"


@dataclass
class Measurements:
    """What a set of data files executed: per relative path, line bits (line-mode files) and arcs (branch-mode files).

    coverage.py refuses to combine line and branch data; here neither is dropped. When any file
    measured branches the result is branch data, and the lines of line-mode files become self-arcs
    `(n, n)`, which coverage.py's reporting counts as executed lines and never as a taken branch
    (coverage/results.py; its sysmon core records lines the same way). The result is then marked with
    LINES_WITHOUT_BRANCHES so reports can say that some lines have no branch data.
    """

    lines: dict[str, int] = field(default_factory=dict)
    arcs: dict[str, set[tuple[int, int]]] = field(default_factory=dict)
    branch: bool = False
    lines_without_branches: bool = False

    def add_file(self, path: str) -> None:
        contents = datafile.read_contents(path, meta_keys=(LINES_WITHOUT_BRANCHES,))
        if contents.has_arcs:
            self.branch = True
            for name in contents.paths:  # measured but nothing executed: still a file of the data
                self.arcs.setdefault(name, set()).update(contents.arcs.get(name, ()))
        else:
            for name in contents.paths:
                self.lines[name] = self.lines.get(name, 0) | contents.line_bits.get(name, 0)
        if contents.meta.get(LINES_WITHOUT_BRANCHES) == "1":
            self.lines_without_branches = True

    @property
    def has_arcs(self) -> bool:
        return self.branch

    @property
    def mixed(self) -> bool:
        """Branch data that also holds lines measured without branches."""
        return self.branch and (self.lines_without_branches or any(self.lines.values()))

    def executed_lines(self) -> dict[str, list[int]]:
        """Per path, the executed lines: linear in the data (bits are read byte by byte, never shifted per line)."""
        result: dict[str, set[int]] = {}
        for name, bits in self.lines.items():
            result.setdefault(name, set()).update(datafile.nums_of(bits))
        for name, arcs in self.arcs.items():
            result.setdefault(name, set()).update(n for arc in arcs for n in arc if n > 0)
        return {name: sorted(lines) for name, lines in sorted(result.items())}

    def write(self, output_path: str) -> None:
        """Write as a coverage.py data file: branch data when any file measured branches, line data otherwise."""
        if not self.branch:
            datafile.write_data_file(output_path, lines=self.executed_lines())
            return
        arcs = dict(self.arcs)
        for name, bits in self.lines.items():
            if bits:
                arcs[name] = arcs.get(name, set()) | {(n, n) for n in datafile.nums_of(bits)}
        meta = {LINES_WITHOUT_BRANCHES: "1"} if self.mixed else None
        datafile.write_data_file(output_path, arcs=arcs, touched=self.lines, meta=meta)


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
