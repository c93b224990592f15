"""`lambda-coverage mark`: modules marked when the package is built, loaded at cold start instead of marked.

That the data measured with marked-ahead code equals coverage.py's is proved over the whole corpus by the
exactness suite (its `marked-ahead` runs); these tests cover the build step itself, moving the package to
where Lambda runs it, and caches that no longer fit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exactness.harness import venv_python
from layer_harness import FIXTURES, layer_env, recorded

CLI = Path(sys.executable).with_name("lambda-coverage")
HANDLER = (
    "from coverage_wrapper import coverage_handler\n"
    "from coverage_wrapper.session import get_session\n"
    "import pricing\n"
    "\n"
    "@coverage_handler\n"
    "def lambda_handler(event, context):\n"
    "    total = pricing.price(event['n'])\n"
    "    return {'total': total, 'marked': get_session().status()['modules_marked']}\n"
)
PRICING = "def price(n):\n    if n > 10:\n        return n * 9\n    return n * 10\n"


def _app(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "handler.py").write_text(HANDLER)
    (root / "pricing.py").write_text(PRICING)
    return root


def _mark(code: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), "mark", str(code), *extra], capture_output=True, text=True, timeout=120)


def _invoke(app: Path, tmp_path: Path, events: list) -> tuple[list[dict], list[dict]]:
    """Invocations' results and the layer's log lines, in a 3.12 process running the function from `app`."""
    done = subprocess.run(
        [str(venv_python("3.12")), str(FIXTURES / "run_function.py"), "handler.lambda_handler", json.dumps(events)],
        env=layer_env(app, tmp_path, COVERAGE_FLUSH_INVOCATIONS="1"), cwd=app, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return [line["result"] for line in lines if "result" in line], [line for line in lines if "level" in line]


def test_a_package_marked_at_build_runs_from_its_lambda_folder_on_the_marked_code(tmp_path):
    """Marked in the build folder, then moved as the zip lands in /var/task: the cache still fits, paths are the new ones."""
    build = _app(tmp_path / "build" / "function")
    done = _mark(build, "--python", str(venv_python("3.12")))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Marked 2 modules under {build} for Python 3.12"
    task = tmp_path / "task"
    shutil.move(str(build), str(task))

    results, _ = _invoke(task, tmp_path, [{"n": 3}, {"n": 30}])
    assert results[-1] == {"total": 270, "marked": {"ahead": 2, "at_import": 0}}
    data_file = sorted((tmp_path / "outbox" / "pending").glob("*.coverage"))[-1]
    measured = recorded(data_file, task, tmp_path)
    assert set(measured.arcs) == {"handler.py", "pricing.py"}, "the data names where the code runs, not where it was built"
    assert {(2, 3), (2, 4)} <= measured.arcs["pricing.py"], "both ways of the branch"


def _edit_source(app: Path) -> None:
    (app / "pricing.py").write_text(PRICING.replace("    return n * 10\n", "    discount = 0\n    return n * 10 - discount\n"))


def _overwrite_cache(app: Path) -> None:
    next((app / "__pycache__").glob("pricing.*.markers")).write_bytes(b"not marshal data")


def _other_layer_version(app: Path) -> None:
    cache = next((app / "__pycache__").glob("pricing.*.markers"))
    rewrite = "import marshal, sys; p = sys.argv[1]; t = marshal.loads(open(p, 'rb').read()); " \
              "open(p, 'wb').write(marshal.dumps(('lambda-coverage markers 0.0.1',) + t[1:]))"
    subprocess.run([str(venv_python("3.12")), "-c", rewrite, str(cache)], check=True, timeout=60)


@pytest.mark.parametrize("spoil, reason", [
    (_edit_source, "the source changed since it was marked"),
    (_overwrite_cache, "unreadable"),
    (_other_layer_version, "written by 'lambda-coverage markers 0.0.1'"),
])
def test_a_cache_that_no_longer_fits_is_ignored_with_one_warning_and_the_module_is_marked_at_import(spoil, reason, tmp_path):
    app = _app(tmp_path / "app")
    assert _mark(app, "--python", str(venv_python("3.12"))).returncode == 0
    spoil(app)

    results, logs = _invoke(app, tmp_path, [{"n": 3}])
    assert results == [{"total": 30, "marked": {"ahead": 1, "at_import": 1}}]
    stale = [line for line in logs if "out of date" in line["message"]]
    assert len(stale) == 1 and stale[0]["file"] == str(app / "pricing.py"), logs
    assert stale[0]["reason"].startswith(reason)
    data_file = sorted((tmp_path / "outbox" / "pending").glob("*.coverage"))[-1]
    lines = recorded(data_file, app, tmp_path).executed_lines()["pricing.py"]
    assert set(lines) == ({1, 2, 4, 5} if spoil is _edit_source else {1, 2, 4}), "measured on the source that ran"


def test_mark_marks_the_functions_own_code_and_names_what_it_cannot_mark(tmp_path):
    app = _app(tmp_path / "app")
    (app / "broken.py").write_text("def oops(:\n")
    dependency = app / "vendor"
    dependency.mkdir()
    (dependency / "__init__.py").write_text("X = 1\n")
    (app / "vendor-1.0.dist-info").mkdir()
    (app / "vendor-1.0.dist-info" / "top_level.txt").write_text("vendor\n")

    done = _mark(app, "--python", str(venv_python("3.13")))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Marked 2 modules under {app} for Python 3.13"
    assert done.stderr.startswith("not marked: broken.py: SyntaxError")
    assert sorted(p.name for p in app.rglob("*.markers")) == ["handler.cpython-313.markers", "pricing.cpython-313.markers"]

    included = _mark(app, "--python", str(venv_python("3.13")), "--include", "pricing.py,vendor/*")
    assert included.stdout.strip() == f"Marked 2 modules under {app} for Python 3.13"
    assert (dependency / "__pycache__" / "__init__.cpython-313.markers").is_file()


def test_mark_fails_in_one_line_on_a_missing_folder_an_unfit_python_or_nothing_to_mark(tmp_path):
    missing = _mark(tmp_path / "nowhere", "--python", str(venv_python("3.12")))
    assert missing.returncode != 0 and "not a folder" in missing.stderr
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1

    app = _app(tmp_path / "app")
    old = _mark(app)  # the dev environment's Python is 3.11
    assert old.returncode != 0 and "runs on 3.12 and 3.13: give --python" in old.stderr, old.stderr
    assert not list(app.rglob("*.markers"))

    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = _mark(empty, "--python", str(venv_python("3.12")))
    assert nothing.returncode != 0 and "no module to mark" in nothing.stderr
