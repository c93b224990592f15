"""Reading and writing coverage.py's data file: the only module that runs SQL on its schema.

Every read passes one gate, `check_schema`: the file must hold exactly the tables of coverage.py's
SQLite schema, nothing its schema could run (triggers, views), and a `coverage_schema` version that
the coverage.py versions the layer pins write. The pipeline writes data files with coverage.py's own
`CoverageData` and only adds rows to the `meta` table, which coverage.py ignores. Inside the function
the `markers` core appends arcs with `ArcWriter`, which writes that same schema with sqlite3 alone:
importing coverage.py's data module made the first flush cost 50-57 ms of CPU more and about 5 MB
more memory on the response path. Tests hold it to what every pinned coverage.py reads, combines
and reports.
sqlite3 and coverage load on first use: the layer imports this module inside the user's function.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import sqlite3

# coverage.py's `SCHEMA_VERSION` (coverage/sqldata.py) in every version the layer pins: 7.10 to 7.17
# write 7. A coverage.py that changes its schema must be added here, and to the tests, before it ships.
SCHEMA_VERSION = 7
SUPPORTED_SCHEMA_VERSIONS = frozenset({SCHEMA_VERSION})
SCHEMA_TABLES = frozenset({"coverage_schema", "meta", "file", "context", "line_bits", "arc", "tracer"})
_MEASUREMENT_TABLES = ("line_bits", "arc", "tracer")


class DataFileError(Exception):
    """The file cannot be read as a coverage.py data file; `code` is a stable reason, `message` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _connect(path: str, writable: bool = False) -> sqlite3.Connection:
    import sqlite3

    if writable:
        connection = sqlite3.connect(path)
    else:
        # Read-only and immutable: reading never writes a journal or takes a lock on a file we do not trust.
        connection = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro&immutable=1", uri=True)
    connection.execute("pragma trusted_schema = off")
    return connection


def check_schema(connection: sqlite3.Connection) -> None:
    """The gate: raise DataFileError unless the schema is coverage.py's, at a version the pinned coverage.py writes."""
    objects = connection.execute("select type, name from sqlite_master").fetchall()
    hostile = sorted(str(name) for kind, name in objects if kind in ("trigger", "view"))
    if hostile:
        raise DataFileError("hostile_schema", f"triggers or views are not allowed: {', '.join(hostile)[:200]}")
    tables = {name for kind, name in objects if kind == "table"}
    indexes = {name for kind, name in objects if kind == "index" and not str(name).startswith("sqlite_autoindex_")}
    extra = sorted(str(name) for name in (tables - SCHEMA_TABLES) | indexes)
    if extra:
        raise DataFileError("unexpected_schema", f"objects coverage.py does not create: {', '.join(extra)[:200]}")
    if tables != SCHEMA_TABLES:
        raise DataFileError("wrong_schema", f"missing tables: {', '.join(sorted(SCHEMA_TABLES - tables))}")
    versions = [row[0] for row in connection.execute("select version from coverage_schema limit 2")]
    if len(versions) != 1 or versions[0] not in SUPPORTED_SCHEMA_VERSIONS:
        found = versions[0] if len(versions) == 1 else f"{len(versions)} rows" if versions else "none"
        raise DataFileError(
            "wrong_schema",
            f"coverage.py schema version {str(found)[:40]} is not one this pipeline reads "
            f"({', '.join(map(str, sorted(SUPPORTED_SCHEMA_VERSIONS)))}, written by the coverage.py versions the layer pins)",
        )


def check_integrity(connection: sqlite3.Connection) -> None:
    """SQLite's own structural check; DataFileError("corrupt") when it fails."""
    answer = connection.execute("pragma quick_check").fetchone()
    if not answer or answer[0] != "ok":
        raise DataFileError("corrupt", f"integrity check failed: {answer[0] if answer else 'no answer'}")


@contextmanager
def open_data_file(path: str, *, integrity: bool = False, writable: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection to a data file that passed the gate (and SQLite's integrity check when asked)."""
    import sqlite3

    try:
        connection = _connect(path, writable)
    except sqlite3.Error as exc:
        raise DataFileError("corrupt", f"cannot open: {exc}") from None
    try:
        if integrity:
            check_integrity(connection)
        check_schema(connection)
        yield connection
    except sqlite3.Error as exc:
        raise DataFileError("corrupt", f"SQLite error: {exc}") from None
    finally:
        connection.close()


# -- what a file claims, for validation to judge -------------------------------------------------


@dataclass(frozen=True)
class FileClaim:
    """One measured file as stored: its path (not necessarily text) and the highest line any row names."""

    file_id: int
    path: Any
    max_line: int = 0
    arcs: int = 0


@dataclass(frozen=True)
class Claims:
    """Everything validation needs to judge a data file, read in a few aggregate queries."""

    files: list[FileClaim]
    malformed_rows: int
    orphan_rows: int
    has_arcs_recorded: bool
    contexts: int = 0
    non_text_contexts: int = 0
    longest_context: int = 0


def read_claims(connection: sqlite3.Connection) -> Claims:
    """Per file, the highest line number claimed and the arc count; rows that are not numbers or point nowhere;
    how many context labels there are, how many are not text, and the longest.

    A line-bits row's highest line comes from its length and last byte: exact for what coverage.py
    writes (no trailing zero bytes), an upper bound for anything else.
    """
    files = {file_id: path for file_id, path in connection.execute("select id, path from file")}
    highest: dict[int, int] = {}
    arc_counts: dict[int, int] = {}
    for file_id, length, last_byte in connection.execute(
        "select file_id, length(numbits), hex(substr(numbits, length(numbits), 1)) from line_bits"
        " where typeof(numbits) = 'blob' and length(numbits) > 0"
    ):
        top = (length - 1) * 8 + int(last_byte or "0", 16).bit_length() - 1
        highest[file_id] = max(highest.get(file_id, 0), top)
    for file_id, top, count in connection.execute(
        "select file_id, max(max(abs(fromno), abs(tono))), count(*) from arc"
        " where typeof(fromno) = 'integer' and typeof(tono) = 'integer' group by file_id"
    ):
        highest[file_id] = max(highest.get(file_id, 0), top or 0)
        arc_counts[file_id] = count
    (malformed,) = connection.execute(
        "select (select count(*) from line_bits where typeof(numbits) != 'blob')"
        " + (select count(*) from arc where typeof(fromno) != 'integer' or typeof(tono) != 'integer')"
    ).fetchone()
    (orphans,) = connection.execute(
        "select (select count(*) from line_bits where file_id not in (select id from file)"
        " or context_id not in (select id from context))"
        " + (select count(*) from arc where file_id not in (select id from file) or context_id not in (select id from context))"
    ).fetchone()
    (recorded,) = connection.execute("select count(*) from meta where key = 'has_arcs'").fetchone()
    contexts, non_text, longest = connection.execute(
        "select count(*), sum(typeof(context) != 'text'), coalesce(max(case when typeof(context) = 'text' then length(context) end), 0)"
        " from context"
    ).fetchone()
    claims = [
        FileClaim(file_id, path, highest.get(file_id, 0), arc_counts.get(file_id, 0)) for file_id, path in files.items()
    ]
    return Claims(claims, malformed, orphans, bool(recorded), contexts, non_text or 0, longest)


def count_lines(connection: sqlite3.Connection) -> int:
    """How many (file, line) pairs the line-bits rows set; call after the per-file line caps held."""
    return sum(_popcount(numbits) for (numbits,) in connection.execute("select numbits from line_bits"))


def _popcount(numbits: bytes) -> int:
    number = int.from_bytes(numbits, "little")
    return number.bit_count() if hasattr(number, "bit_count") else bin(number).count("1")


# -- reading measurements --------------------------------------------------------------------------


def nums_of(bits: int) -> list[int]:
    """The line numbers set in an integer of bits (coverage.py's numbits read as little-endian), in linear time."""
    from coverage.numbits import numbits_to_nums

    return numbits_to_nums(bits.to_bytes((bits.bit_length() + 7) // 8, "little")) if bits else []


@dataclass
class Contents:
    """What one data file measured: every path, and per context label and path its line bits or arcs.

    Most data has only the empty context (""); `COVERAGE_CONTEXTS` adds one label per kind of request.
    `line_bits` and `arcs` are the union over contexts, per path.
    """

    has_arcs: bool
    paths: list[str] = field(default_factory=list)
    context_line_bits: dict[str, dict[str, int]] = field(default_factory=dict)
    context_arcs: dict[str, dict[str, set[tuple[int, int]]]] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def contexts(self) -> list[str]:
        """The context labels that hold measurements, the empty one included when it does."""
        return sorted(set(self.context_line_bits) | set(self.context_arcs))

    @property
    def line_bits(self) -> dict[str, int]:
        if len(self.context_line_bits) <= 1:
            return next(iter(self.context_line_bits.values()), {})
        union: dict[str, int] = {}
        for by_path in self.context_line_bits.values():
            for name, bits in by_path.items():
                union[name] = union.get(name, 0) | bits
        return union

    @property
    def arcs(self) -> dict[str, set[tuple[int, int]]]:
        if len(self.context_arcs) <= 1:
            return next(iter(self.context_arcs.values()), {})
        union: dict[str, set[tuple[int, int]]] = {}
        for by_path in self.context_arcs.values():
            for name, pairs in by_path.items():
                union.setdefault(name, set()).update(pairs)
        return union

    def lines(self, path: str) -> list[int]:
        """Executed lines of `path` in any context, as coverage.py's `CoverageData.lines` gives them."""
        if self.has_arcs:
            return sorted({n for by_path in self.context_arcs.values() for arc in by_path.get(path, ()) for n in arc if n > 0})
        bits = 0
        for by_path in self.context_line_bits.values():
            bits |= by_path.get(path, 0)
        return nums_of(bits)


def read_contents(path: str, meta_keys: Iterable[str] = ()) -> Contents:
    """Read a data file through the gate; unknown non-text paths and labels are left out (validation refuses them first)."""
    with open_data_file(path) as connection:
        wanted = ("has_arcs", *meta_keys)
        meta = dict(connection.execute(f"select key, value from meta where key in ({', '.join('?' * len(wanted))})", wanted))
        contents = Contents(has_arcs=str(meta.pop("has_arcs", "0")) in ("1", "True", "true"), meta=meta)
        names = {file_id: name for file_id, name in connection.execute("select id, path from file") if isinstance(name, str)}
        labels = {context_id: label for context_id, label in connection.execute("select id, context from context") if isinstance(label, str)}
        contents.paths = sorted(names.values())
        for file_id, context_id, numbits in connection.execute("select file_id, context_id, numbits from line_bits"):
            name, label = names.get(file_id), labels.get(context_id)
            if name is not None and label is not None and isinstance(numbits, bytes):
                by_path = contents.context_line_bits.setdefault(label, {})
                by_path[name] = by_path.get(name, 0) | int.from_bytes(numbits, "little")
        for file_id, context_id, start, end in connection.execute("select file_id, context_id, fromno, tono from arc"):
            name, label = names.get(file_id), labels.get(context_id)
            if name is not None and label is not None:
                contents.context_arcs.setdefault(label, {}).setdefault(name, set()).add((start, end))
    return contents


def measured_paths(path: str) -> list[str]:
    """The text paths of the files a data file measured."""
    with open_data_file(path) as connection:
        return sorted(name for (name,) in connection.execute("select path from file") if isinstance(name, str))


def measured_points(path: str, branch: bool) -> int:
    """How many (file, line) or (file, arc) pairs a data file holds: it only grows, so equal means unchanged."""
    with open_data_file(path) as connection:
        if branch:
            return connection.execute("select count(*) from arc").fetchone()[0]
        return count_lines(connection)


def read_meta(path: str, keys: Iterable[str]) -> dict[str, str]:
    """The values of `keys` in the data file's `meta` table, those present."""
    wanted = tuple(keys)
    with open_data_file(path) as connection:
        rows = connection.execute(f"select key, value from meta where key in ({', '.join('?' * len(wanted))})", wanted)
        return {key: value for key, value in rows}


# -- writing ---------------------------------------------------------------------------------------


def write_data_file(
    path: str,
    *,
    lines: Mapping[str, Iterable[int]] | None = None,
    arcs: Mapping[str, Iterable[tuple[int, int]]] | None = None,
    contexts: Mapping[str, Mapping[str, Iterable[Any]]] | None = None,
    touched: Iterable[str] = (),
    meta: Mapping[str, str] | None = None,
) -> None:
    """Write a new data file with coverage.py's `CoverageData`: lines or arcs, plus files measured with nothing run.

    `lines` or `arcs` are the measurements of the empty context; `contexts` maps other context labels
    to measurements of the same kind (lines when `lines` is given, arcs when `arcs` is).
    """
    from coverage import CoverageData

    if (lines is None) == (arcs is None):
        raise ValueError("give either lines or arcs")
    if os.path.exists(path):
        os.remove(path)
    data = CoverageData(basename=path)
    measured: set[str] = set()
    groups: list[tuple[str, Mapping[str, Iterable[Any]]]] = [("", arcs if arcs is not None else lines or {}), *sorted((contexts or {}).items())]
    for label, by_path in groups:
        if label and not by_path:
            continue
        data.set_context(label or None)
        if arcs is not None:
            data.add_arcs({name: list(pairs) for name, pairs in by_path.items()})
        else:
            data.add_lines({name: list(numbers) for name, numbers in by_path.items()})
        measured.update(by_path)
    # coverage.py leaves out a file with no lines or arcs: touching keeps every measured file in the data.
    everything = sorted(set(touched) | measured)
    if everything:
        data.touch_files(everything)
    data.write()
    if meta:
        write_meta(path, meta)


def write_meta(path: str, items: Mapping[str, str]) -> None:
    """Set rows of the `meta` table, where the pipeline records what coverage.py does not (provenance)."""
    with open_data_file(path, writable=True) as connection:
        with connection:
            connection.executemany("insert or replace into meta (key, value) values (?, ?)", list(items.items()))


def relativize(path: str, source_root: str) -> None:
    """Store paths relative to `source_root`; measurements of absolute paths outside it are removed."""
    root = source_root.rstrip("/") + "/"
    with open_data_file(path, writable=True) as connection:
        with connection:
            for file_id, name in connection.execute("select id, path from file").fetchall():
                if not isinstance(name, str):
                    continue
                if name.startswith(root):
                    connection.execute("update file set path = ? where id = ?", (name[len(root) :], file_id))
                elif os.path.isabs(name):
                    _delete_file(connection, file_id)


def remove_files(path: str, unwanted: Callable[[Any], bool], max_line: int) -> dict[str, list[int]]:
    """Remove the files whose stored path `unwanted` picks; return their executed lines (up to `max_line`) by path."""
    from coverage.numbits import numbits_to_nums

    removed: dict[str, list[int]] = {}
    with open_data_file(path, writable=True) as connection:
        with connection:
            for file_id, name in connection.execute("select id, path from file").fetchall():
                if not unwanted(name):
                    continue
                lines: set[int] = set()
                for (numbits,) in connection.execute("select numbits from line_bits where file_id = ?", (file_id,)):
                    if isinstance(numbits, bytes) and len(numbits) <= max_line // 8 + 1:
                        lines.update(numbits_to_nums(numbits))
                for start, end in connection.execute("select fromno, tono from arc where file_id = ?", (file_id,)):
                    lines.update(n for n in (start, end) if isinstance(n, int) and n > 0)
                label = name if isinstance(name, str) else repr(name)
                removed[label[:300]] = sorted(n for n in lines if 0 < n <= max_line)
                _delete_file(connection, file_id)
    return removed


def _delete_file(connection: sqlite3.Connection, file_id: int) -> None:
    for table in _MEASUREMENT_TABLES:
        connection.execute(f"delete from {table} where file_id = ?", (file_id,))
    connection.execute("delete from file where id = ?", (file_id,))


# -- appending arcs without coverage.py ------------------------------------------------------------

# The tables, columns and constraints of coverage.py's `SCHEMA` (coverage/sqldata.py), the same in every
# version the layer pins; the tests compare them with files each pinned coverage.py creates.
_SCHEMA = (
    "create table coverage_schema (version integer)",
    "create table meta (key text, value text, unique (key))",
    "create table file (id integer primary key, path text, unique (path))",
    "create table context (id integer primary key, context text, unique (context))",
    "create table line_bits (file_id integer, context_id integer, numbits blob,"
    " foreign key (file_id) references file (id), foreign key (context_id) references context (id),"
    " unique (file_id, context_id))",
    "create table arc (file_id integer, context_id integer, fromno integer, tono integer,"
    " foreign key (file_id) references file (id), foreign key (context_id) references context (id),"
    " unique (file_id, context_id, fromno, tono))",
    "create table tracer (file_id integer primary key, tracer text, foreign key (file_id) references file (id))",
)


class ArcWriter:
    """A new arc data file that coverage.py reads as its own, appended to one transaction per `add`.

    The file is created at once, in arc mode (`has_arcs` is the only `meta` row coverage.py reads;
    its `version` row, its own version, is informational and left out: coverage.py did not write
    this file). File and context ids stay cached with the connection, so a later `add` costs only
    the rows it brings. A reader that copies the file between two `add` calls gets all of each.
    """

    def __init__(self, path: str) -> None:
        import sqlite3

        for stale in (path, path + "-journal"):  # a new file, as coverage.py erases its own at first use
            with suppress(FileNotFoundError):
                os.remove(stale)
        self.path = path
        # Autocommit mode: every transaction is an explicit `begin immediate` ... `commit`.
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._files: dict[str, int] = {}
        self._contexts: dict[str, int] = {}
        try:
            # The file lives in the function's /tmp for this process only: no fsync (the journal still
            # makes each transaction all or nothing should the process die mid-write).
            self._connection.execute("pragma synchronous = off")
            with self._transaction() as cursor:
                for statement in _SCHEMA:
                    cursor.execute(statement)
                cursor.execute("insert into coverage_schema (version) values (?)", (SCHEMA_VERSION,))
                cursor.execute("insert into meta (key, value) values ('has_arcs', '1')")
        except BaseException:
            self._connection.close()
            raise

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        cursor = self._connection.cursor()
        cursor.execute("begin immediate")
        try:
            yield cursor
        except BaseException:
            cursor.execute("rollback")
            raise
        cursor.execute("commit")

    def add(self, context: str | None, arcs: Mapping[str, Iterable[tuple[int, int]]]) -> None:
        """Record each file's arcs under `context` (None: the empty context) in one transaction.

        A file with no arcs is recorded as measured, as coverage.py's `touch_files` does; arcs the file
        already holds are ignored.
        """
        label = context or ""
        new_files: dict[str, int] = {}
        new_context: dict[str, int] = {}
        with self._transaction() as cursor:
            for path, pairs in arcs.items():
                file_id = self._files.get(path) or new_files.get(path)
                if file_id is None:
                    file_id = new_files[path] = _row_id(cursor.execute("insert into file (path) values (?)", (path,)))
                measured = list(pairs)
                if not measured:
                    continue
                context_id = self._contexts.get(label) or new_context.get(label)
                if context_id is None:
                    context_id = new_context[label] = _row_id(cursor.execute("insert into context (context) values (?)", (label,)))
                cursor.executemany(
                    "insert or ignore into arc (file_id, context_id, fromno, tono) values (?, ?, ?, ?)",
                    [(file_id, context_id, start, end) for start, end in measured],
                )
        # Only ids of a committed transaction are kept: a rolled-back one's rows do not exist.
        self._files.update(new_files)
        self._contexts.update(new_context)

    def close(self) -> None:
        self._connection.close()


def _row_id(cursor: sqlite3.Cursor) -> int:
    row_id = cursor.lastrowid
    assert row_id is not None  # an insert that succeeded made a row
    return row_id
