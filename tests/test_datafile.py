"""coverage.py's data file, read and written in one module: one schema gate, tested against every coverage.py the layer pins."""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from coverage_wrapper import datafile
from coverage_wrapper.merge import merge_data_files
from coverage_wrapper.validation import validate_data_file
from lambda_coverage.layer.interpreters import find_interpreter, host_architecture
from lambda_coverage.layer.layout import ARCHITECTURES, COVERAGE_PINS, DEFAULT_WHEEL_CACHE, REPO_ROOT
from lambda_coverage.layer.wheels import ensure_wheel, unpack_wheel

PIN_ROOT = REPO_ROOT / "build" / "datafile-pins"
# No Python 3.14 interpreter can be installed on these machines (see the project notes): a 3.14 pin is
# checked through its wheel's declared schema version only.
NOT_RUNNABLE_HERE = {"3.14"}
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


price(2, True)
price(0, False)
'''
MEASURE = '''\
import json, sys
sys.path.insert(0, sys.argv[1])
import coverage
out = {"version": coverage.__version__}
for mode in ("branch", "line"):
    data = sys.argv[2] + "/" + mode + ".coverage"
    cov = coverage.Coverage(data_file=data, branch=mode == "branch", config_file=False)
    cov.start()
    exec(compile(open(sys.argv[3]).read(), sys.argv[3], "exec"), {"__name__": "app"})
    cov.stop()
    cov.save()
    recorded = coverage.CoverageData(basename=data)
    recorded.read()
    out[mode] = {"lines": sorted(recorded.lines(sys.argv[3])), "arcs": sorted(recorded.arcs(sys.argv[3]) or [])}
print(json.dumps(out))
'''


def _pinned_coverage(runtime: str) -> Path:
    """coverage.py exactly as the layer ships it for `runtime`: its pinned wheel, unpacked once under build/."""
    wheel = ensure_wheel(DEFAULT_WHEEL_CACHE, runtime, ARCHITECTURES[host_architecture()])
    target = PIN_ROOT / wheel.name[: -len(".whl")]
    PIN_ROOT.mkdir(parents=True, exist_ok=True)
    with open(PIN_ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".unpacked").exists():
            shutil.rmtree(target, ignore_errors=True)
            unpack_wheel(wheel, target)
            (target / ".unpacked").write_text(wheel.name)
    return target


def _runnable_pins() -> list[str]:
    return sorted(r for r in COVERAGE_PINS if find_interpreter(r) is not None)


@pytest.fixture(scope="module")
def pinned_data(tmp_path_factory):
    """Per runtime the layer pins: branch and line data files written by that runtime's pinned coverage.py."""
    produced = {}
    for runtime in _runnable_pins():
        work = tmp_path_factory.mktemp(f"py{runtime}")
        app = work / "src" / "app.py"
        app.parent.mkdir()
        app.write_text(APP)
        run = subprocess.run(
            [str(find_interpreter(runtime)), "-I", "-c", MEASURE, str(_pinned_coverage(runtime)), str(work), str(app)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        truth = json.loads(run.stdout.splitlines()[-1])
        for mode in ("branch", "line"):
            datafile.relativize(str(work / f"{mode}.coverage"), str(app.parent))
        produced[runtime] = (work, truth)
    return produced


def test_every_pin_but_an_uninstallable_314_has_a_local_interpreter_to_write_real_data():
    assert set(COVERAGE_PINS) - set(_runnable_pins()) <= NOT_RUNNABLE_HERE


@pytest.mark.parametrize("runtime", sorted(COVERAGE_PINS))
def test_every_pinned_wheel_declares_a_schema_version_the_gate_accepts(runtime):
    wheel = ensure_wheel(DEFAULT_WHEEL_CACHE, runtime, ARCHITECTURES[host_architecture()])
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read("coverage/sqldata.py").decode("utf-8")
    declared = int(re.search(r"^SCHEMA_VERSION = (\d+)$", source, re.M).group(1))
    assert declared in datafile.SUPPORTED_SCHEMA_VERSIONS


@pytest.mark.parametrize("runtime", _runnable_pins())
def test_data_written_by_each_pinned_coverage_py_passes_the_gate_and_reads_as_it_wrote_it(runtime, pinned_data):
    work, truth = pinned_data[runtime]
    assert truth["version"] == COVERAGE_PINS[runtime]
    for mode in ("branch", "line"):
        path = str(work / f"{mode}.coverage")
        assert validate_data_file(path) is None
        contents = datafile.read_contents(path)
        assert contents.paths == ["app.py"]
        assert contents.has_arcs is (mode == "branch")
        assert contents.lines("app.py") == truth[mode]["lines"]
        if mode == "branch":
            assert sorted(contents.arcs["app.py"]) == [tuple(arc) for arc in truth[mode]["arcs"]]
            assert datafile.measured_points(path, branch=True) == len(truth[mode]["arcs"])
        else:
            assert datafile.measured_points(path, branch=False) == len(truth[mode]["lines"])


def test_data_of_every_pinned_coverage_py_merges_into_one_file_this_coverage_py_reads(pinned_data, tmp_path):
    from coverage import CoverageData

    branch_files = [str(work / "branch.coverage") for work, _ in pinned_data.values()]
    result = merge_data_files(branch_files, str(tmp_path / "merged.sqlite"))

    assert result.rejected == [] and len(result.merged) == len(pinned_data)
    merged = CoverageData(basename=str(tmp_path / "merged.sqlite"))
    merged.read()
    expected = {tuple(arc) for _, truth in pinned_data.values() for arc in truth["branch"]["arcs"]}
    assert set(merged.arcs("app.py")) == expected


@pytest.fixture
def branch_file(pinned_data, tmp_path) -> Path:
    work, _ = pinned_data[_runnable_pins()[-1]]
    copy = tmp_path / "copy.coverage"
    shutil.copyfile(work / "branch.coverage", copy)
    return copy


def _tamper(path: Path, sql: str) -> Path:
    connection = sqlite3.connect(path)
    with connection:
        connection.executescript(sql)
    connection.close()
    return path


READERS = {
    "read_contents": lambda p: datafile.read_contents(p),
    "measured_paths": lambda p: datafile.measured_paths(p),
    "measured_points": lambda p: datafile.measured_points(p, branch=True),
    "read_meta": lambda p: datafile.read_meta(p, ["has_arcs"]),
    "write_meta": lambda p: datafile.write_meta(p, {"x": "y"}),
    "relativize": lambda p: datafile.relativize(p, "/var/task"),
    "remove_files": lambda p: datafile.remove_files(p, lambda path: True, 100),
}
UNSUPPORTED = {
    "older": ("update coverage_schema set version = 6;", "schema version 6 is not one this pipeline reads"),
    "newer": ("update coverage_schema set version = 8;", "schema version 8 is not one this pipeline reads"),
    "text": ("update coverage_schema set version = 'seven';", "schema version seven is not"),
    "none": ("delete from coverage_schema;", "schema version none is not"),
    "two_rows": ("insert into coverage_schema values (7);", "schema version 2 rows is not"),
}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("variant", sorted(UNSUPPORTED))
def test_every_read_and_write_refuses_a_schema_version_no_pinned_coverage_py_writes(reader, variant, branch_file):
    sql, message = UNSUPPORTED[variant]
    _tamper(branch_file, sql)
    before = branch_file.read_bytes()

    with pytest.raises(datafile.DataFileError, match=message) as refused:
        READERS[reader](str(branch_file))

    assert refused.value.code == "wrong_schema"
    assert "written by the coverage.py versions the layer pins" in refused.value.message
    assert branch_file.read_bytes() == before
    assert validate_data_file(str(branch_file)).code == "wrong_schema"


@pytest.mark.parametrize(
    "sql, code",
    [
        ("create trigger t after insert on meta begin delete from arc; end;", "hostile_schema"),
        ("create view v as select * from file;", "hostile_schema"),
        ("create table loot (x);", "unexpected_schema"),
        ("create index i on arc (tono);", "unexpected_schema"),
        ("drop table tracer;", "wrong_schema"),
    ],
)
def test_writes_refuse_a_file_whose_schema_could_run_something(sql, code, branch_file):
    _tamper(branch_file, sql)
    with pytest.raises(datafile.DataFileError) as refused:
        datafile.write_meta(str(branch_file), {"lambda_coverage_generation": "1"})
    assert refused.value.code == code
    with sqlite3.connect(branch_file) as connection:
        assert connection.execute("select count(*) from meta where key = 'lambda_coverage_generation'").fetchone() == (0,)


def test_written_files_are_coverage_py_data_with_the_pipeline_meta_rows(tmp_path):
    from coverage import CoverageData

    path = str(tmp_path / "written.sqlite")
    datafile.write_data_file(path, arcs={"a.py": {(-1, 1), (1, 2), (2, -1)}, "b.py": set()}, touched=["c.py"], meta={"k": "v"})

    written = CoverageData(basename=path)
    written.read()
    assert written.has_arcs() and sorted(written.measured_files()) == ["a.py", "b.py", "c.py"]
    assert sorted(written.arcs("a.py")) == [(-1, 1), (1, 2), (2, -1)] and written.arcs("b.py") == []
    assert datafile.read_meta(path, ["k", "absent"]) == {"k": "v"}
    with pytest.raises(ValueError):
        datafile.write_data_file(path, lines={}, arcs={})


def test_importing_the_module_loads_neither_sqlite3_nor_coverage_nor_boto3():
    probe = (
        "import sys, coverage_wrapper.datafile; "
        "print([m for m in ('sqlite3', 'coverage', 'boto3', 'botocore') if m in sys.modules])"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
