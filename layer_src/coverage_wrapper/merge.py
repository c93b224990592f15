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


@dataclass
class Measurements:
    """What a set of data files executed: per relative path, line bits or arcs."""

    lines: dict[str, int] = field(default_factory=dict)
    arcs: dict[str, set[tuple[int, int]]] = field(default_factory=dict)

    def add_file(self, path: str) -> None:
        contents = datafile.read_contents(path)
        for name, bits in contents.line_bits.items():
            self.lines[name] = self.lines.get(name, 0) | bits
        for name, arcs in contents.arcs.items():
            self.arcs.setdefault(name, set()).update(arcs)
        for name in contents.paths:  # measured but nothing executed: still a file of the data
            if name not in self.lines and name not in self.arcs:
                self.lines.setdefault(name, 0)

    @property
    def has_arcs(self) -> bool:
        return bool(self.arcs) and not any(self.lines.get(p) for p in self.lines if p not in self.arcs)

    def executed_lines(self) -> dict[str, list[int]]:
        """Per path, the executed lines: linear in the data (bits are read byte by byte, never shifted per line)."""
        result: dict[str, set[int]] = {}
        for name, bits in self.lines.items():
            result.setdefault(name, set()).update(datafile.nums_of(bits))
        for name, arcs in self.arcs.items():
            result.setdefault(name, set()).update(n for arc in arcs for n in arc if n > 0)
        return {name: sorted(lines) for name, lines in sorted(result.items())}

    def write(self, output_path: str) -> None:
        """Write as a coverage.py data file: arcs when every file has them, lines otherwise."""
        if self.has_arcs:
            datafile.write_data_file(output_path, arcs=self.arcs, touched=self.lines)
        else:
            datafile.write_data_file(output_path, lines=self.executed_lines())


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
