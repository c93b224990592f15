"""Marking a code object's branches at the bytecode level, Python 3.12 and 3.13 (the `markers` core).

Each way out of a conditional jump (`POP_JUMP_IF_*`, `FOR_ITER`, and the two ways out of an `async for`
header) must tell itself apart to `sys.monitoring` LINE events, which are silenced one instruction at a
time, where a BRANCH event cannot be before 3.14 (CPython issue 122548). A way that runs straight into
the first instruction of another line, which nothing else reaches, already does: that instruction's
LINE event, where it fired, says the way was taken (`Marks.implied`). Any other way gets a NOP of its
own whose line number, from MARKER_BASE up, names the marker: inserted right after the jump for the
way that falls through, before the jump's target for the way it jumps, with a JUMP_FORWARD over it for
whatever else reaches that target. A marker's branch line is the line that jumped. An expression's
jumps (`x = a or b`, `return n if n < 2 else f(n)`) are not branches to coverage.py and get nothing.

Only the code the interpreter already has is touched: the bytecode a pyc holds, or a function's
`__code__`; the source is only read to tell an expression's jump from a statement's. Jump offsets, the
exception table and the location table (CPython's Objects/locations.md) are rewritten for the inserted
instructions; every instruction of the original keeps its own position, so tracebacks point where
they did.
"""

from __future__ import annotations

import bisect
import dis
import functools
import itertools
import re
import sys
import types
from typing import Any, Callable

MARKER_BASE = 1 << 30  # marker lines: no source file has a billion lines

_OP = dis.opmap
_CACHE_ENTRIES = dis._inline_cache_entries  # type: ignore[attr-defined]  # there since 3.11, not in typeshed
_CACHES = bytes(
    (_CACHE_ENTRIES.get(dis.opname[op], 0) if isinstance(_CACHE_ENTRIES, dict) else _CACHE_ENTRIES[op]) if op < len(dis.opname) else 0
    for op in range(256)
)
_EXTENDED_ARG = _OP["EXTENDED_ARG"]
_NOP = _OP["NOP"]
_JUMP_FORWARD = _OP["JUMP_FORWARD"]
_NOP_UNIT = bytes((_NOP, 0))
_ZEROS = bytes(2 * max(_CACHES))
_JUMPS = frozenset(op for op in dis.hasjrel if op < 256)
_BACKWARD = frozenset({_OP["JUMP_BACKWARD"], _OP["JUMP_BACKWARD_NO_INTERRUPT"]})
_CONDITIONAL = frozenset(_OP[name] for name in ("POP_JUMP_IF_FALSE", "POP_JUMP_IF_TRUE", "POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE"))
_FOR_ITER = _OP["FOR_ITER"]
_GET_ANEXT = _OP["GET_ANEXT"]
_SEND = _OP["SEND"]
_END_ASYNC_FOR = _OP["END_ASYNC_FOR"]
_NO_FALL_THROUGH = frozenset(
    _OP[name] for name in ("JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE")
)
# An exhausted FOR_ITER goes on past its target: END_FOR (3.13: END_FOR, POP_TOP), which only a generator's
# return runs.
_FOR_EXIT_SKIP = 1 if sys.version_info < (3, 13) else 2
_RETURNS = frozenset({_OP["RETURN_VALUE"], _OP["RETURN_CONST"]})
_NO_LINE_START = frozenset(_OP[name] for name in ("END_FOR", "END_SEND", "END_ASYNC_FOR", "RESUME"))  # never get a LINE event
_UNSURE = frozenset(_OP[name] for name in ("RAISE_VARARGS", "RERAISE", "YIELD_VALUE", "SEND", "END_ASYNC_FOR", "END_SEND"))
_UNSURE_FIRST = frozenset({_OP["UNPACK_SEQUENCE"], _OP["UNPACK_EX"]})  # a target split over lines: see markers.Bytecode
_NOTHING: tuple[frozenset[int], frozenset[int]] = (frozenset(), frozenset())
_EXIT_ONLY = frozenset({0})
_BRANCH_KEYWORDS = (b"if", b"elif", b"while", b"for", b"async", b"case", b"match")
_INTERESTING = re.compile(b"[" + b"".join(re.escape(bytes((op,))) for op in sorted(_JUMPS | {_END_ASYNC_FOR})) + b"]")
_ENTRY = re.compile(rb"[\x80-\xff]")  # the first byte of a location-table entry
_ENTRY_UNITS = bytes(((byte & 7) + 1) if byte >= 128 else 0 for byte in range(256))


class Marks:
    """One file's markers: the branch line of each, marker MARKER_BASE + i having `branch_lines[i]`; and for
    each code object with edges that a line implies, the offset (in bytes, as `f_lasti`) of that line's first
    instruction -> marker."""

    def __init__(self, branch_lines: list[int] | None = None, implied: list[tuple[types.CodeType, dict[int, int]]] | None = None) -> None:
        self.branch_lines = branch_lines if branch_lines is not None else []
        self.implied = implied if implied is not None else []

    def add(self, branch_line: int) -> int:
        self.branch_lines.append(branch_line)
        return MARKER_BASE + len(self.branch_lines) - 1


def jump_target(op: int, arg: int, unit: int) -> int | None:
    """Where the instruction `op` at code unit `unit` jumps (its argument with its EXTENDED_ARGs applied), in
    code units; None when it is not a jump. Every jump is relative on 3.12 and 3.13, past inline caches."""
    if op not in _JUMPS:
        return None
    following = unit + 1 + _CACHES[op]
    return following - arg if op in _BACKWARD else following + arg


def after(op: int, unit: int) -> int:
    """The code unit after the instruction `op` at `unit` and its inline caches."""
    return unit + 1 + _CACHES[op]


def has_async_for(code: types.CodeType) -> bool:
    """Whether `code` or code nested in it has an `async for`, whose ways out only markers can tell."""
    if bytes((_END_ASYNC_FOR,)) in code.co_code[::2]:
        return True
    return any(has_async_for(constant) for constant in code.co_consts if isinstance(constant, types.CodeType))


def mark_code(code: types.CodeType, marks: Marks) -> types.CodeType:
    """`code` and the code nested in it with a marker on each way out of each branch; `code` itself
    when there is no branch in any of it."""
    consts = code.co_consts
    if any(isinstance(constant, types.CodeType) for constant in consts):
        marked = tuple(mark_code(constant, marks) if isinstance(constant, types.CodeType) else constant for constant in consts)
        if any(new is not old for new, old in zip(marked, consts)):
            consts = marked
    raw = code.co_code
    ops = raw[::2]  # one opcode per code unit; an inline cache's units read 0 (CACHE)
    found = [match.start() for match in _INTERESTING.finditer(ops)]
    if not found:
        return code if consts is code.co_consts else code.replace(co_consts=consts)
    return _Rewrite(code, raw, ops, marks).run(found, consts)


class _Rewrite:
    """One code object's rewriting. Offsets are in code units (two bytes) of the original unless named new."""

    def __init__(self, code: types.CodeType, raw: bytes, ops: bytes, marks: Marks) -> None:
        self.code = code
        self.raw = raw
        self.ops = ops
        self.marks = marks
        ranges = list(code.co_lines())
        self.range_starts = [start for start, _, _ in ranges]
        self.range_lines = [line for _, _, line in ranges]
        self.arrivals: dict[int, int] = {}  # how many jumps land at each offset
        self.exception_entries: list[Any] = []
        self.handlers: set[int] = set()  # where exception handlers begin
        self.implied: dict[int, int] = {}  # an instruction whose LINE event says a way was taken -> its marker
        # What goes in before the instruction at an offset: the marker the instruction before falls into,
        # then a marker per branch line of the jumps landing there.
        self.falls_into: dict[int, int] = {}
        self.landing: dict[int, dict[int, int]] = {}

    def line_at(self, unit: int) -> int | None:
        return self.range_lines[bisect.bisect_right(self.range_starts, 2 * unit) - 1]

    def branch_line(self, unit: int) -> int:
        line = self.line_at(unit)
        return line if line is not None else self.line_before(unit)

    def line_before(self, unit: int) -> int:
        """The line of the last instruction before `unit` that has one: what the location table counts from."""
        index = bisect.bisect_right(self.range_starts, 2 * unit - 1) - 1
        while index >= 0:
            line = self.range_lines[index]
            if line is not None:
                return line
            index -= 1
        return self.code.co_firstlineno

    def run(self, found: list[int], consts: tuple) -> types.CodeType:
        ops, args, marks = self.ops, self.raw[1::2], self.marks
        jumps = []  # (prefix start, opcode unit, opcode, argument, target, marker it lands on instead, or 0)
        for unit in found:
            op = ops[unit]
            start, arg, shift = unit, args[unit], 8
            while start and ops[start - 1] == _EXTENDED_ARG:
                start -= 1
                arg |= args[start] << shift
                shift += 8
            target = jump_target(op, arg, unit)
            if target is not None:  # not the end of an `async for`
                jumps.append((start, unit, op, arg, target, 0))
                self.arrivals[target] = self.arrivals.get(target, 0) + 1
                if op == _FOR_ITER:
                    self.arrivals[target + _FOR_EXIT_SKIP] = self.arrivals.get(target + _FOR_EXIT_SKIP, 0) + 1
        self.exception_entries = dis._parse_exception_table(self.code) if self.code.co_exceptiontable else []  # type: ignore[attr-defined]  # there since 3.11, not in typeshed
        self.handlers = {entry.target // 2 for entry in self.exception_entries}
        for index, (start, unit, op, arg, target, _) in enumerate(jumps):
            following = unit + 1 + _CACHES[op]
            if op in _CONDITIONAL:
                line = self.branch_line(unit)
                falls, jumps_to = self._ways_out(unit, following, target, line)
                if falls:
                    self._way(following, line, marks)
                if jumps_to and not self._implied(target, line, marks, taken=True):
                    landing = self.landing.setdefault(target, {})
                    jumps[index] = (start, unit, op, arg, target, landing.get(line) or landing.setdefault(line, marks.add(line)))
            elif op == _FOR_ITER:
                line = self.branch_line(unit)
                self._way(following, line, marks)
                self._way(target + _FOR_EXIT_SKIP, line, marks, own_arrivals=1)  # FOR_ITER skips to it
            elif op == _SEND and unit >= 2 and ops[unit - 2] == _GET_ANEXT:  # into an `async for` body
                self.falls_into[target + 1] = marks.add(self.branch_line(unit))
        for unit in found:
            if ops[unit] == _END_ASYNC_FOR:  # out of an `async for`, its iterator exhausted
                self.falls_into[unit + 1] = marks.add(self.branch_line(unit))
        blocks = self._blocks()
        if not blocks:  # nothing to insert: expressions' jumps only, or edges that lines imply
            code = self.code if consts is self.code.co_consts else self.code.replace(co_consts=consts)
            if self.implied:
                marks.implied.append((code, {2 * at: marker for at, marker in self.implied.items()}))
            return code
        layout = self._layout(blocks, jumps)
        code = self.code.replace(
            co_code=self._bytecode(blocks, layout),
            co_consts=consts,
            co_exceptiontable=self._exception_table(layout),
            co_linetable=self._location_table(blocks, layout),
        )
        if self.implied:
            marks.implied.append((code, {2 * layout.new(at): marker for at, marker in self.implied.items()}))
        return code

    def _way(self, at: int, line: int, marks: Marks, own_arrivals: int = 0) -> None:
        """A way out of a branch that runs on from `at`, falling into it: a marker, unless a line implies it."""
        if not self._implied(at, line, marks, False, own_arrivals):
            self.falls_into[at] = marks.add(line)

    def _implied(self, at: int, line: int, marks: Marks, taken: bool, own_arrivals: int = 0) -> bool:
        """Whether the way out of a branch from `at` runs, without a jump or anything else reaching it, into the
        first instruction of another line: that instruction's own LINE event (where it fired, recorded as a site
        like a marker's) then says the way was taken, with no instruction added to the hot path."""
        ops = self.ops
        if at in self.handlers or self.arrivals.get(at, 0) > (1 if taken else own_arrivals) or (taken and self._falls_through_to(at)):
            return False
        unit = at
        for _ in range(16):
            op = ops[unit]
            unit_line = self.line_at(unit)
            if unit_line is not None and unit_line != line:
                if op in _JUMPS or op in _NO_LINE_START or op in _UNSURE_FIRST or op == _EXTENDED_ARG:
                    return False
                if unit == at and taken and self.line_at(self._before(at)) == unit_line:
                    return False  # not a line of its own in the order of the code
                self.implied[unit] = marks.add(line)
                return True
            if (unit != at and (unit in self.arrivals or unit in self.handlers)) or op in _JUMPS or op in _RETURNS:
                return False
            if op in _UNSURE or op in _UNSURE_FIRST or op == _EXTENDED_ARG:
                return False
            unit += 1 + _CACHES[op]
        return False

    def _before(self, at: int) -> int:
        """The instruction before `at` in the order of the code."""
        before = at - 1
        while before > 0 and self.ops[before] == 0:  # an inline cache
            before -= 1
        return before

    def _ways_out(self, unit: int, following: int, target: int, line: int) -> tuple[bool, bool]:
        """Which ways out of a conditional jump need a marker. On a line that starts a statement coverage.py
        reports branches of, both. Elsewhere a jump is an expression's (`x = a if c else b`, `x = a or b`,
        `return n if n < 2 else f(n)`): when its two ways go on the same way, neither; a way that meets
        another branch before it leaves the line says nothing (that branch's markers do). Anything unsure
        is marked."""
        if self._starts_branch(line):
            return True, True
        falls, jumps_to = self._walk(following, line), self._walk(target, line)
        if falls is None or jumps_to is None:
            return falls != _NOTHING, jumps_to != _NOTHING
        if falls[0] == jumps_to[0] and (falls[1] & jumps_to[1] or falls[0] == _EXIT_ONLY):
            return False, False
        return bool(falls[0]), bool(jumps_to[0])

    def _walk(self, unit: int, line: int) -> tuple[frozenset[int], frozenset[int]] | None:
        """Where running on from `unit` leaves `line`: the lines (0 for a return) and the instructions of
        `line` on the way; None where that is not plain (a raise, a yield, an unpacking, a long way)."""
        ops, found, on_line = self.ops, set[int](), set[int]()
        if ops[unit] in _UNSURE_FIRST:
            return None
        for _ in range(64):
            at_line = self.line_at(unit)
            if at_line is not None and at_line != line:
                found.add(at_line)
                break
            op = ops[unit]
            if op == _EXTENDED_ARG or op in _CONDITIONAL or op == _FOR_ITER or op in _UNSURE:
                return None if op not in _CONDITIONAL and op != _FOR_ITER else (frozenset(found), frozenset(on_line))
            on_line.add(unit)
            if op in _RETURNS:
                found.add(0)
                break
            target = jump_target(op, self.raw[2 * unit + 1], unit)
            unit = after(op, unit) if target is None else target
        else:
            return None
        return frozenset(found), frozenset(on_line)

    def _starts_branch(self, line: int) -> bool:
        """Whether a source line starts with a statement coverage.py reports branches of (unknown: yes)."""
        lines = _source_lines(self.code.co_filename)
        return not 0 < line <= len(lines) or lines[line - 1].lstrip().startswith(_BRANCH_KEYWORDS)

    def _blocks(self) -> dict[int, list[int]]:
        """The units going in before each offset: a marker's NOP as its marker, a JUMP_FORWARD (to the
        original instruction) as 0 where what comes before must not run into the next marker."""
        blocks = {}
        for at in set(self.falls_into) | set(self.landing):
            units = []
            fall = self.falls_into.get(at)
            if fall is not None:
                units.append(fall)
            for marker in self.landing.get(at, {}).values():
                if units or self._falls_through_to(at):
                    units.append(0)
                units.append(marker)
            blocks[at] = units
        return blocks

    def _falls_through_to(self, at: int) -> bool:
        return at > 0 and self.ops[self._before(at)] not in _NO_FALL_THROUGH

    def _layout(self, blocks: dict[int, list[int]], jumps: list[tuple]) -> _Layout:
        """New offsets, and each jump's new argument; a jump gets EXTENDED_ARGs where its argument needs them."""
        growth: dict[int, int] = {}
        while True:
            layout = _Layout(blocks, growth)
            markers = layout.markers(blocks)
            encoded = []
            grew = False
            new = layout.new
            for start, unit, op, old_arg, target, lands_on in jumps:
                prefix = unit - start + growth.get(start, 0)
                following = new(start) + prefix + 1 + _CACHES[op]
                destination = markers[lands_on] if lands_on else new(target)
                arg = following - destination if op in _BACKWARD else destination - following
                if arg == old_arg and prefix == unit - start:
                    continue  # the instruction as it was
                needed = 0 if arg < 1 << 8 else 1 if arg < 1 << 16 else 2 if arg < 1 << 24 else 3
                if needed > prefix:
                    growth[start] = growth.get(start, 0) + needed - prefix
                    grew = True
                encoded.append((start, unit, op, arg, prefix))
            if not grew:
                layout.jumps = encoded
                return layout

    def _bytecode(self, blocks: dict[int, list[int]], layout: _Layout) -> bytes:
        raw = self.raw
        chunks = []
        jump_at = {jump[0]: jump for jump in layout.jumps}
        done = 0
        for at in sorted(set(blocks) | set(jump_at)):
            chunks.append(raw[2 * done : 2 * at])
            done = at
            units = blocks.get(at, ())
            for index, marker in enumerate(units):
                chunks.append(_NOP_UNIT if marker else bytes((_JUMP_FORWARD, len(units) - index - 1)))
            jump = jump_at.get(at)
            if jump is not None:
                _, unit, op, arg, prefix = jump
                for shift in range(prefix, 0, -1):
                    chunks.append(bytes((_EXTENDED_ARG, (arg >> (8 * shift)) & 255)))
                chunks.append(bytes((op, arg & 255)) + _ZEROS[: 2 * _CACHES[op]])
                done = unit + 1 + _CACHES[op]
        chunks.append(raw[2 * done :])
        return b"".join(chunks)

    def _exception_table(self, layout: _Layout) -> bytes:
        # What goes in before an instruction raises nothing: whether a handler covers it does not matter.
        table = bytearray()
        for entry in self.exception_entries:
            start, end = layout.new(entry.start // 2), layout.new(entry.end // 2)
            for value, first in ((start, True), (end - start, False), (layout.new(entry.target // 2), False), ((entry.depth << 1) | entry.lasti, False)):
                _exception_varint(value, table, first)
        return bytes(table)

    def _location_table(self, blocks: dict[int, list[int]], layout: _Layout) -> bytes:
        inserted: dict[int, list[int | None]] = {}
        for at, units in blocks.items():
            lines = inserted[at] = []
            for marker in units:  # a JUMP_FORWARD has the line of what runs into it, or none as it has none
                lines.append(marker or (lines[-1] if lines else self.line_at(at - 1)))
        return _splice_locations(self.code.co_linetable, inserted, layout.growth, self.line_before)


@functools.lru_cache(maxsize=1)  # marking goes file by file
def _source_lines(filename: str) -> list[bytes]:
    try:
        with open(filename, "rb") as handle:
            return handle.read().splitlines()
    except OSError:
        return []


class _Layout:
    """Where the original offsets go once blocks go in before them and jumps grow EXTENDED_ARGs."""

    def __init__(self, blocks: dict[int, list[int]], growth: dict[int, int]) -> None:
        # A block at an offset goes before it; a jump's new EXTENDED_ARGs are part of its instruction.
        inserts = sorted([(2 * at, len(units)) for at, units in blocks.items()] + [(2 * at + 1, extra) for at, extra in growth.items()])
        self.keys = [key for key, _ in inserts]
        self.sums = list(itertools.accumulate(size for _, size in inserts))
        self.growth = growth
        self.jumps: list[tuple] = []

    def new(self, at: int) -> int:
        index = bisect.bisect_right(self.keys, 2 * at)
        return at + (self.sums[index - 1] if index else 0)

    def markers(self, blocks: dict[int, list[int]]) -> dict[int, int]:
        found = {}
        for at, units in blocks.items():
            begin = self.new(at) - len(units)
            for index, marker in enumerate(units):
                if marker:
                    found[marker] = begin + index
        return found


def _varint(value: int, out: bytearray) -> None:
    while value >= 64:
        out.append(0x40 | (value & 63))
        value >>= 6
    out.append(value)


def _signed_varint(value: int, out: bytearray) -> None:
    _varint(((-value) << 1) | 1 if value < 0 else value << 1, out)


def _exception_varint(value: int, out: bytearray, first: bool) -> None:
    chunks = [value & 63]
    while value >= 64:
        value >>= 6
        chunks.append(value & 63)
    for index in range(len(chunks) - 1, -1, -1):
        out.append(chunks[index] | (64 if index else 0) | (128 if first and index == len(chunks) - 1 else 0))


@functools.lru_cache(maxsize=4096)  # entries repeat: the same kind, columns and delta
def _entry(entry: bytes) -> tuple[int, int, bytes]:
    """A location-table entry's kind, line delta, and what a long form (kind 14) writes after the delta."""
    kind = (entry[0] >> 3) & 15
    if kind == 15:  # no location
        return kind, 0, b""
    if kind >= 13:  # no columns; long form
        index, value, shift = 1, 0, 0
        while True:
            byte = entry[index]
            value |= (byte & 63) << shift
            shift += 6
            index += 1
            if not byte & 64:
                break
        return kind, (-(value >> 1) if value & 1 else value >> 1), entry[index:]
    rest = bytearray((0,))  # the end line's delta: these forms are one line
    if kind >= 10:  # one line form: columns in two bytes
        _varint(entry[1] + 1, rest)
        _varint(entry[2] + 1, rest)
        return kind, kind - 10, bytes(rest)
    column = kind * 8 + (entry[1] >> 4)  # short form
    _varint(column + 1, rest)
    _varint(column + (entry[1] & 15) + 1, rest)
    return kind, 0, bytes(rest)


def _inserted_location(line: int | None, current: int, out: bytearray) -> int:
    """The entry of one inserted unit: its line without columns (kind 13), or no location (15)."""
    if line is None:
        out.append(0x80 | (15 << 3))
        return current
    out.append(0x80 | (13 << 3))
    _signed_varint(line - current, out)
    return line


def _splice_locations(old: bytes, inserted: dict[int, list[int | None]], grown: dict[int, int], line_before: Callable[[int], int]) -> bytes:
    """The location table once units go in: one entry per unit of `inserted` (a line, no columns) before
    the offset it is keyed by, and the instructions of `grown` longer by their new EXTENDED_ARGs, at their
    own location. An entry's line is a delta from the entry before it with a line, so the original entries
    are copied as they are up to where units go in, split there, and the next one with a line gets its
    delta anew."""
    cumulative = list(itertools.accumulate(old.translate(_ENTRY_UNITS)))
    size = len(old)
    out = bytearray()
    stops = sorted(set(inserted) | set(grown))
    next_stop = 0
    at = 0  # the next entry of the old table
    running: int | None = None  # the new table's line to count from, while it is not the old table's
    while next_stop < len(stops) or running is not None:
        if running is None:  # in step with the old table: copy it up to the entry where units go in next
            following = bisect.bisect_right(cumulative, stops[next_stop])
            out += old[at:following]
            at = following
        if at >= size:  # units going in after the last instruction
            for stop in stops[next_stop:]:
                for inserted_line in inserted.get(stop, ()):
                    running = _inserted_location(inserted_line, running if running is not None else line_before(stop), out)
            break
        match = _ENTRY.search(old, at + 1)
        end = match.start() if match else size
        units = (old[at] & 7) + 1
        first_unit = cumulative[at] - units
        old_running = line_before(first_unit)
        kind, delta, rest = _entry(old[at:end])
        line = old_running + delta
        current = running if running is not None else old_running
        position, extra = first_unit, 0
        while True:
            stop = stops[next_stop] if next_stop < len(stops) and stops[next_stop] < first_unit + units else first_unit + units
            count = stop - position + extra
            if count and kind == 15:
                while count:
                    out.append(0x80 | (15 << 3) | (min(count, 8) - 1))
                    count -= min(count, 8)
            elif count == units and position == first_unit and not extra and current == old_running:
                out += old[at:end]
                current = line
            elif count:
                while count:
                    out.append(0x80 | ((13 if kind == 13 else 14) << 3) | (min(count, 8) - 1))
                    _signed_varint(line - current, out)
                    out += rest
                    current = line
                    count -= min(count, 8)
            if stop == first_unit + units:
                break
            for inserted_line in inserted.get(stop, ()):
                current = _inserted_location(inserted_line, current, out)
            position, extra = stop, grown.get(stop, 0)
            next_stop += 1
        at = end
        running = None if current == (line if kind != 15 else old_running) else current
        if running is not None and at >= size:
            break
    out += old[at:]
    return bytes(out)
