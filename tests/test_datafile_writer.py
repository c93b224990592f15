"""The layer's own arc writer (`datafile.ArcWriter`): files every pinned coverage.py reads, combines and reports as its own."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from coverage_wrapper import datafile
from coverage_wrapper.validation import validate_data_file
from exactness.harness import venv_python
from lambda_coverage.layer.interpreters import find_interpreter
from layer_harness import LAYER_SRC, layer_env, recorded
from test_datafile import _pinned_coverage, _runnable_pins

PINS = _runnable_pins()

# What the markers core's flushes hand the writer: the empty context (None) and a named one, a file that
# ran nothing, arcs already written, a later flush adding to a file, an add with nothing in it.
PLAN = [
    [None, {"/var/task/app.py": [[-1, 1], [1, 2], [2, 3], [3, -1]], "/var/task/idle.py": []}],
    ["GET /orders", {"/var/task/app.py": [[-1, 1], [1, 5], [5, -1]]}],
    [None, {"/var/task/app.py": [[1, 2], [2, 4], [4, -1]], "/var/task/lib/tax.py": [[-10, 11], [11, -10]]}],
    ["GET /orders", {}],
]
EXPECTED = {
    "has_arcs": True,
    "files": ["/var/task/app.py", "/var/task/idle.py", "/var/task/lib/tax.py"],
    "contexts": ["", "GET /orders"],
    "by_context": {
        "": {
            "/var/task/app.py": [[-1, 1], [1, 2], [2, 3], [2, 4], [3, -1], [4, -1]],
            "/var/task/lib/tax.py": [[-10, 11], [11, -10]],
        },
        "GET /orders": {"/var/task/app.py": [[-1, 1], [1, 5], [5, -1]]},
    },
    "arcs": {
        "/var/task/app.py": [[-1, 1], [1, 2], [1, 5], [2, 3], [2, 4], [3, -1], [4, -1], [5, -1]],
        "/var/task/idle.py": [],
        "/var/task/lib/tax.py": [[-10, 11], [11, -10]],
    },
    "lines": {"/var/task/app.py": [1, 2, 3, 4, 5], "/var/task/idle.py": [], "/var/task/lib/tax.py": [11]},
}

# In the pinned interpreter: the plan written by the layer's writer, and by that coverage.py's CoverageData.
WRITE = '''\
import json, sys
pin, layer, work, plan = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
sys.path[:0] = [pin, layer]
from coverage import CoverageData
from coverage_wrapper.datafile import ArcWriter

writer = ArcWriter(work + "/writer.coverage")
reference = CoverageData(basename=work + "/reference.coverage")
for context, arcs in plan:
    writer.add(context, {path: [tuple(arc) for arc in pairs] for path, pairs in arcs.items()})
    reference.set_context(context)
    reference.add_arcs({path: [tuple(arc) for arc in pairs] for path, pairs in arcs.items() if pairs})
    if arcs:
        reference.touch_files(list(arcs))
writer.close()
ArcWriter(work + "/empty-writer.coverage").close()
empty = CoverageData(basename=work + "/empty-reference.coverage")
empty.add_arcs({})
print("{}")
'''
# In the pinned interpreter: what that coverage.py reads from each data file.
READ = '''\
import json, sys
sys.path.insert(0, sys.argv[1])
from coverage import CoverageData, __version__
out = {"version": __version__}
for path in sys.argv[3:]:
    data = CoverageData(basename=path)
    data.read()
    files = sorted(data.measured_files())
    contexts = sorted(data.measured_contexts())
    by_context = {}
    for context in contexts:
        data.set_query_context(context)
        found = {name: sorted(data.arcs(name)) for name in files}
        by_context[context] = {name: arcs for name, arcs in found.items() if arcs}
    data.set_query_contexts(None)
    out[path] = {
        "has_arcs": data.has_arcs(), "files": files, "contexts": contexts, "by_context": by_context,
        "arcs": {name: sorted(data.arcs(name)) for name in files},
        "lines": {name: sorted(data.lines(name)) for name in files},
    }
print(json.dumps(out))
'''
APP = '''\
def price(quantity, member):
    total = quantity * 3
    if member:
        total -= 1
    for _ in range(quantity):
        if total > 100:
            break
    else:
        total += 0
    return total


def refund(amount):
    if amount < 0:
        raise ValueError(amount)
    return -amount
'''
# In the pinned interpreter: two real runs measured by coverage.py, and the second run's data copied
# into a file of the layer's writer, context by context.
MEASURE = '''\
import sys
pin, layer, work, app = sys.argv[1:5]
sys.path[:0] = [pin, layer]
import coverage
from coverage_wrapper.datafile import ArcWriter

def measure(name, first, then):
    cov = coverage.Coverage(data_file=work + "/" + name + ".coverage", branch=True, config_file=False)
    cov.start()
    namespace = {"__name__": "app"}
    exec(compile(open(app).read(), app, "exec"), namespace)
    namespace[first[0]](*first[1])
    cov.switch_context(then[0])
    namespace[then[1]](*then[2])
    cov.stop()
    cov.save()

measure("run1", ("price", (2, True)), ("refund", "refund", (5,)))
measure("run2", ("price", (0, False)), ("bulk", "price", (50, True)))
data = coverage.CoverageData(basename=work + "/run2.coverage")
data.read()
writer = ArcWriter(work + "/writer.coverage")
for context in sorted(data.measured_contexts()):
    data.set_query_context(context)
    writer.add(context or None, {name: data.arcs(name) for name in data.measured_files()})
print("{}")
'''


def _in_pinned(runtime: str, script: str, *args: str, cwd: Path | None = None) -> dict:
    """Run `script` with `runtime`'s interpreter and exactly the coverage.py the layer pins for it."""
    done = subprocess.run(
        [str(find_interpreter(runtime)), "-I", "-c", script, str(_pinned_coverage(runtime)), str(LAYER_SRC), *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=cwd,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


_COMBINE = """
import sys
sys.path.insert(0, sys.argv.pop(1))
import coverage
cov = coverage.Coverage(data_file=sys.argv[1], config_file=False)
cov.combine(sys.argv[2:], keep=True, strict=True)
cov.save()
"""
_JSON_REPORT = """
import sys
sys.path.insert(0, sys.argv.pop(1))
import coverage
cov = coverage.Coverage(data_file=sys.argv[1], config_file=False)
cov.load()
cov.json_report(outfile=sys.argv[2], show_contexts=True)
"""


def _coverage_api(runtime: str, work: Path, script: str, *args: str) -> None:
    """`coverage combine` / `coverage json` through the API of `runtime`'s pinned coverage.py, as the layer ships
    it (its command-line modules are trimmed from the layer; the API and every reporter stay whole)."""
    done = subprocess.run(
        [str(find_interpreter(runtime)), "-I", "-c", script, str(_pinned_coverage(runtime)), *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=work,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """Per pinned runtime: the plan written by the layer's writer and by that runtime's coverage.py."""
    found = {}
    for runtime in PINS:
        work = tmp_path_factory.mktemp(f"written{runtime}")
        _in_pinned(runtime, WRITE, str(work), json.dumps(PLAN))
        found[runtime] = work
    return found


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict[str, Path]:
    """Per pinned runtime: two real runs measured by that coverage.py, and the second copied by the layer's writer."""
    found = {}
    for runtime in PINS:
        work = tmp_path_factory.mktemp(f"measured{runtime}")
        (work / "app.py").write_text(APP)
        _in_pinned(runtime, MEASURE, str(work), str(work / "app.py"))
        found[runtime] = work
    return found


@pytest.mark.parametrize("runtime", PINS)
def test_every_pinned_coverage_py_reads_the_writers_arcs_contexts_and_files_as_written(runtime, written):
    work = written[runtime]
    files = [str(work / name) for name in ("writer.coverage", "reference.coverage", "empty-writer.coverage", "empty-reference.coverage")]
    read = _in_pinned(runtime, READ, *files)

    assert read[files[0]] == EXPECTED, f"coverage.py {read['version']} reads the writer's file differently"
    assert read[files[0]] == read[files[1]], "the same adds made with coverage.py's own CoverageData read alike"
    empty = {"has_arcs": True, "files": [], "contexts": [], "by_context": {}, "arcs": {}, "lines": {}}
    assert read[files[2]] == read[files[3]] == empty, "a file with nothing run yet is arc data already"


def _structure(path: Path) -> dict:
    """Every table's columns, foreign keys and unique indexes, as SQLite describes them."""
    with sqlite3.connect(path) as connection:
        tables = sorted(name for (name,) in connection.execute("select name from sqlite_master where type = 'table'"))
        described = {}
        for table in tables:
            indexes = connection.execute(f"pragma index_list({table})").fetchall()
            described[table] = {
                "columns": connection.execute(f"pragma table_info({table})").fetchall(),
                "foreign_keys": connection.execute(f"pragma foreign_key_list({table})").fetchall(),
                "indexes": [(row, connection.execute(f"pragma index_info({row[1]})").fetchall()) for row in indexes],
            }
        described["coverage_schema"]["rows"] = connection.execute("select * from coverage_schema").fetchall()
        described["meta"]["has_arcs"] = connection.execute("select value from meta where key = 'has_arcs'").fetchall()
    connection.close()
    return described


@pytest.mark.parametrize("runtime", PINS)
def test_the_writer_creates_the_tables_columns_and_constraints_of_each_pinned_coverage_py(runtime, written):
    work = written[runtime]
    ours, theirs = _structure(work / "writer.coverage"), _structure(work / "reference.coverage")

    assert sorted(ours) == sorted(datafile.SCHEMA_TABLES)
    assert ours == theirs
    with datafile.open_data_file(str(work / "writer.coverage"), integrity=True) as connection:
        datafile.check_schema(connection)
    shipped = work / "shipped.coverage"  # as the shipper uploads it: paths relative to the source root
    shutil.copyfile(work / "writer.coverage", shipped)
    datafile.relativize(str(shipped), "/var/task")
    assert validate_data_file(str(shipped)) is None
    assert validate_data_file(str(work / "empty-writer.coverage")) is None


def _read(runtime: str, path: Path) -> dict:
    return _in_pinned(runtime, READ, str(path))[str(path)]


@pytest.mark.parametrize("runtime", PINS)
def test_coverage_combine_of_a_writer_file_with_a_coverage_py_file_is_their_union(runtime, measured):
    work = measured[runtime]
    app = str(work / "app.py")
    run1, run2, writer = _read(runtime, work / "run1.coverage"), _read(runtime, work / "run2.coverage"), _read(runtime, work / "writer.coverage")
    assert writer == run2, "the writer's copy of a run reads as the run"

    _coverage_api(runtime, work, _COMBINE, "with-writer.coverage", "run1.coverage", "writer.coverage")
    _coverage_api(runtime, work, _COMBINE, "coverage-only.coverage", "run1.coverage", "run2.coverage")
    combined = _read(runtime, work / "with-writer.coverage")

    assert combined == _read(runtime, work / "coverage-only.coverage")
    assert combined["contexts"] == ["", "bulk", "refund"]
    for context in combined["contexts"]:
        union = {tuple(arc) for run in (run1, run2) for arc in run["by_context"].get(context, {}).get(app, [])}
        assert {tuple(arc) for arc in combined["by_context"][context][app]} == union, context
    assert {tuple(arc) for arc in combined["arcs"][app]} == {tuple(arc) for run in (run1, run2) for arc in run["arcs"][app]}


@pytest.mark.parametrize("runtime", PINS)
def test_coverage_json_report_of_a_writer_file_equals_the_report_of_coverage_py_s_own(runtime, measured):
    work = measured[runtime]
    reports = {}
    for name in ("writer", "run2"):
        _coverage_api(runtime, work, _JSON_REPORT, f"{name}.coverage", f"{name}.json")
        reports[name] = json.loads((work / f"{name}.json").read_text())
        reports[name]["meta"].pop("timestamp")

    assert reports["writer"] == reports["run2"]
    totals = reports["writer"]["totals"]
    assert totals["covered_branches"] and totals["num_partial_branches"], "the report has branch data to compare"
    contexts = reports["writer"]["files"]["app.py"]["contexts"]
    assert contexts["7"] == ["bulk"], "the loop's break ran in the named context only"


def test_an_add_that_fails_leaves_the_file_as_it_was_and_the_writer_usable(tmp_path):
    from coverage import CoverageData

    path = str(tmp_path / "live.coverage")
    writer = datafile.ArcWriter(path)
    writer.add(None, {"app.py": [(-1, 1), (1, -1)]})
    before = datafile.read_contents(path)

    def arcs_then_failure():
        yield (1, 2)
        raise OSError("the measurement broke off")

    with pytest.raises(OSError):
        writer.add("GET /orders", {"new.py": [(-1, 1)], "broken.py": arcs_then_failure()})
    after = datafile.read_contents(path)
    assert (after.paths, after.contexts, after.arcs) == (before.paths, before.contexts, before.arcs)

    writer.add("GET /orders", {"new.py": [(-1, 1)], "broken.py": [(1, 2)]})
    writer.close()
    data = CoverageData(basename=path)
    data.read()
    assert sorted(data.measured_files()) == ["app.py", "broken.py", "new.py"]
    assert data.arcs("new.py") == [(-1, 1)] and data.arcs("broken.py") == [(1, 2)]
    assert sorted(data.measured_contexts()) == ["", "GET /orders"]
    assert validate_data_file(path) is None, "no arc row points at a file or context that was rolled back"


def test_the_writer_starts_a_new_file_over_what_was_left_at_its_path(tmp_path):
    path = tmp_path / "live.coverage"
    path.write_bytes(b"not a data file")
    (tmp_path / "live.coverage-journal").write_bytes(b"a journal of another file")

    writer = datafile.ArcWriter(str(path))
    writer.add(None, {"app.py": [(1, 1)]})
    writer.close()

    assert validate_data_file(str(path)) is None
    assert datafile.read_contents(str(path)).arcs == {"app.py": {(1, 1)}}
    assert not (tmp_path / "live.coverage-journal").exists()


FLUSH_PROBE = '''\
import json, sys
sys.path.insert(0, sys.argv[1])
import handler
from coverage_wrapper import flush
from coverage_wrapper.session import get_session

results = [handler.lambda_handler({"n": n}, None) for n in (1, 5)]
flushed = flush()
print(json.dumps({
    "results": results, "flushed": flushed, "core": get_session().config.core,
    "coverage_modules": sorted(m for m in sys.modules if m == "coverage" or m.startswith("coverage.")),
}))
'''


def test_a_markers_core_process_flushes_its_data_without_importing_coverage_py(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "handler.py").write_text(
        "from coverage_wrapper import coverage_handler\n\n@coverage_handler\ndef lambda_handler(event, context):\n"
        "    if event['n'] > 3:\n        return 'many'\n    return 'few'\n"
    )
    env = layer_env(app, tmp_path, COVERAGE_CORE="markers", COVERAGE_FLUSH_INVOCATIONS="1000")
    done = subprocess.run([str(venv_python("3.12")), "-c", FLUSH_PROBE, str(app)], env=env, cwd=app,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    probe = json.loads(next(line for line in done.stdout.splitlines() if line.startswith('{"results"')))  # not the layer's log lines

    assert probe["core"] == "markers" and probe["results"] == ["few", "many"]
    assert probe["flushed"]["flushed"] is True, probe["flushed"]
    assert probe["coverage_modules"] == [], "the flush imported coverage.py"
    arcs = recorded(Path(probe["flushed"]["outbox_file"]), app, tmp_path).arcs["handler.py"]
    assert {(5, 6), (5, 7)} <= arcs, "both ways of the branch, from the markers"

