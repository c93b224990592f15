"""What the layer measures by default, and that every line it reports as run did run, in every core."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coverage_wrapper.sources import installed_packages, measurement_patterns, scan_sources
from exactness.harness import venv_python
from layer_harness import REPO, FIXTURES, layer_env, recorded

CONTEXT_EXAMPLE = REPO / "examples" / "context_manager_function"
CONTEXT_EVENTS = [
    {"action": "check", "items": ["apple", "pear"]},
    {"action": "update", "items": ["plum"]},
    {"action": "update", "items": ["pear"]},
    {"action": "other"},
]


def _install_dependency(root: Path, name: str, *, record: bool) -> None:
    """A package as `pip install -t` leaves it: its files plus a dist-info naming them."""
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("def shout(text):\n    if text:\n        return text.upper()\n    return ''\n")
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    if record:
        (info / "RECORD").write_text(f"{name}/__init__.py,sha256=x,10\n{name}-1.0.dist-info/RECORD,,\n../../bin/{name},,\n")
    else:
        (info / "top_level.txt").write_text(f"{name}\n")


def test_packages_installed_beside_the_function_are_left_out_unless_included(tmp_path):
    _install_dependency(tmp_path, "loud", record=True)
    _install_dependency(tmp_path, "quiet", record=False)
    (tmp_path / "legacy.egg-info").mkdir()
    (tmp_path / "legacy.egg-info" / "top_level.txt").write_text("oldmod\n")
    (tmp_path / "oldmod.py").write_text("X = 1\n")
    (tmp_path / "app.py").write_text("import loud\n")
    assert installed_packages(str(tmp_path)) == ["loud", "oldmod.py", "quiet"]

    assert [f.relative_path for f in scan_sources(str(tmp_path))] == ["app.py"]
    _, omit = measurement_patterns(str(tmp_path), (), ())
    assert str(tmp_path / "loud" / "*") in omit and str(tmp_path / "oldmod.py") in omit
    included = scan_sources(str(tmp_path), include=["app.py", "loud/*"])
    assert [f.relative_path for f in included] == ["app.py", "loud/__init__.py"]


def test_a_function_run_measures_its_own_code_not_its_dependencies(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    _install_dependency(app, "loud", record=True)
    (app / "handler.py").write_text(
        "import loud\nfrom coverage_wrapper import coverage_handler\n\n@coverage_handler\n"
        "def lambda_handler(event, context):\n    return loud.shout(event['text'])\n"
    )
    env = layer_env(app, tmp_path)
    done = subprocess.run([sys.executable, str(FIXTURES / "run_function.py"), "handler.lambda_handler", json.dumps([{"text": "hi"}])],
                          env=env, cwd=app, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert '{"result": "HI"}' in done.stdout
    data_files = sorted((tmp_path / "outbox" / "pending").glob("*.coverage"))
    assert list(recorded(data_files[-1], app, tmp_path).executed_lines()) == ["handler.py"]


def _run_context_example(python: str, core: str, branch: str, tmp_path: Path) -> dict[str, list[int]]:
    app = tmp_path / f"app-{core}"
    shutil.copytree(CONTEXT_EXAMPLE, app)
    env = layer_env(app, tmp_path, COVERAGE_CORE=core, COVERAGE_BRANCH_COVERAGE=branch,
                    COVERAGE_OUTBOX_DIR=str(tmp_path / f"outbox-{core}"))
    done = subprocess.run([python, str(FIXTURES / "run_function.py"), "handler.lambda_handler", json.dumps(CONTEXT_EVENTS)],
                          env=env, cwd=app, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"result"')]
    assert [r["result"]["statusCode"] for r in results] == [200, 200, 409, 400]
    data_files = sorted((tmp_path / f"outbox-{core}" / "pending").glob("*.coverage"))
    assert data_files, done.stdout + done.stderr
    return recorded(data_files[-1], app, tmp_path).executed_lines()["handler.py"]


@pytest.mark.parametrize("python, core, branch", [
    ("venv", "ctrace", "true"),
    ("venv", "pytrace", "true"),
    ("3.12", "markers", "true"),
    ("3.12", "sysmon", "false"),
    ("3.13", "markers", "true"),
])
def test_the_lines_of_a_coverage_context_block_are_measured_in_every_core(python, core, branch, tmp_path):
    interpreter = sys.executable if python == "venv" else str(venv_python(python))
    lines = _run_context_example(interpreter, core, branch, tmp_path)
    assert {30, 31, 32, 33, 34, 35, 36, 38, 39, 40} <= set(lines), "every statement of the block ran"
    if core != "sysmon":  # coverage.py's sysmon keeps line events on for code that ran in a block
        assert 28 not in lines, "the line before the block is not measured"
    assert {15, 16, 20, 21, 22, 23, 24} <= set(lines), "functions called from the block"
    assert {3, 5, 7, 10, 14, 19, 27} <= set(lines), "module-level statements ran at import, before the first block"
    assert 11 not in lines, "setup_resources only runs outside the block"


def test_a_module_the_markers_core_cannot_mark_is_measured_by_the_c_tracer(tmp_path):
    """A module from a zip archive has no source file to mark: the C tracer measures it, logged once."""
    import zipfile

    app = tmp_path / "app"
    app.mkdir()
    with zipfile.ZipFile(app / "vendored.zip", "w") as archive:
        archive.writestr("zipped.py", "def sign(n):\n    if n < 0:\n        return -1\n    return 1\n")
    (app / "handler.py").write_text(
        "import sys, os\nsys.path.insert(0, os.path.join(os.path.dirname(__file__), 'vendored.zip'))\n"
        "from coverage_wrapper import coverage_handler\n\n@coverage_handler\n"
        "def lambda_handler(event, context):\n    import zipped\n    return zipped.sign(event['n'])\n"
    )
    env = layer_env(app, tmp_path, COVERAGE_CORE="markers")
    done = subprocess.run([str(venv_python("3.12")), str(FIXTURES / "run_function.py"), "handler.lambda_handler",
                           json.dumps([{"n": 5}])], env=env, cwd=app, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '{"result": 1}' in done.stdout
    warnings = [json.loads(line) for line in done.stdout.splitlines() if "cannot mark branches" in line]
    assert len(warnings) == 1 and warnings[0]["file"].endswith("vendored.zip/zipped.py")
    data_files = sorted((tmp_path / "outbox" / "pending").glob("*.coverage"))
    measured = recorded(data_files[-1], app, tmp_path)
    assert {(2, 4), (4, -1)} <= measured.arcs["vendored.zip/zipped.py"], "the C tracer's arcs: the branch not taken"
    assert 8 in measured.executed_lines()["handler.py"]


@pytest.mark.parametrize("python, core", [("venv", "ctrace"), ("3.12", "markers")])
def test_a_block_at_module_level_claims_no_line_of_its_module_that_has_not_run(python, core, tmp_path):
    """Measuring that starts while a module is still being imported must not mark its later lines as run."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "handler.py").write_text(
        "from coverage_wrapper import CoverageContext\n"
        "with CoverageContext():\n"
        "    READY = True\n"
        "if READY:\n"
        "    LATER = 1\n"
        "def lambda_handler(event, context):\n"
        "    return LATER\n"
        "def never_called():\n"
        "    return 2\n"
    )
    interpreter = sys.executable if python == "venv" else str(venv_python(python))
    env = layer_env(app, tmp_path, COVERAGE_CORE=core)
    done = subprocess.run([interpreter, str(FIXTURES / "run_function.py"), "handler.lambda_handler", "[{}]"],
                          env=env, cwd=app, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data_files = sorted((tmp_path / "outbox" / "pending").glob("*.coverage"))
    lines = recorded(data_files[-1], app, tmp_path).executed_lines()["handler.py"]
    assert 3 in lines and not {4, 5, 6, 8} & set(lines), "only the block ran while measuring"


def test_a_forked_child_keeps_measuring_with_the_markers_core_into_its_own_file(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "handler.py").write_text(
        "import os\nfrom coverage_wrapper import coverage_handler, flush\n\n"
        "def in_child(n):\n    if n > 1:\n        return 'many'\n    return 'one'\n\n"
        "@coverage_handler\n"
        "def lambda_handler(event, context):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        in_child(event['n'])\n"
        "        flush()\n"
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
        "    return 'parent'\n"
    )
    env = layer_env(app, tmp_path, COVERAGE_CORE="markers")
    done = subprocess.run([str(venv_python("3.12")), str(FIXTURES / "run_function.py"), "handler.lambda_handler",
                           json.dumps([{"n": 2}])], env=env, cwd=app, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "markers core could not start" not in done.stdout + done.stderr
    files = sorted((tmp_path / "outbox" / "pending").glob("*.coverage"))
    envs = {json.loads(f.with_suffix(".json").read_text())["env"] for f in files}
    assert len(envs) == 2, "the child flushed under its own environment id"
    by_file = [recorded(f, app, tmp_path).executed_lines()["handler.py"] for f in files]
    child = next(lines for lines in by_file if 5 in lines)
    assert {5, 6, 13, 14} <= set(child)
    parent = next(lines for lines in by_file if 5 not in lines)
    assert 16 in parent and 13 not in parent
    arcs = [recorded(f, app, tmp_path).arcs["handler.py"] for f in files]
    assert any((5, 6) in a for a in arcs), "the child's branch, from the markers"


def test_a_markers_flush_with_nothing_measured_yet_writes_an_empty_data_file(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "handler.py").write_text("from coverage_wrapper import coverage_handler\n\n@coverage_handler\n"
                                    "def lambda_handler(event, context):\n    return 1\n")
    env = layer_env(app, tmp_path, COVERAGE_CORE="markers", COVERAGE_INCLUDE_PATTERNS="nothing.py")
    done = subprocess.run([str(venv_python("3.12")), str(FIXTURES / "run_function.py"), "handler.lambda_handler", "[{}]"],
                          env=env, cwd=app, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"level": "ERROR"' not in done.stdout + done.stderr
    assert sorted((tmp_path / "outbox" / "pending").glob("*.coverage")), "the final flush wrote its (empty) file"
