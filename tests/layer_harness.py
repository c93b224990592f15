"""Runs fixture functions in their own processes with the layer on the path, and reads what they recorded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from coverage_wrapper.merge import Measurements
from coverage_wrapper.shipper import relativize

REPO = Path(__file__).resolve().parent.parent
LAYER_SRC = REPO / "layer_src"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
APP = FIXTURES / "app"

EVENTS = [
    {"items": [{"qty": 2, "unit": 3.5}], "country": "de"},
    {"items": [{"qty": 1, "unit": 500}], "country": "xx"},
    {"items": [{"qty": 0, "unit": 1}]},
    {"fail": True},
]


def copy_app(tmp_path: Path) -> Path:
    """A private copy of the fixture app, so each test has its own source root."""
    app = tmp_path / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    return app


def layer_env(app: Path, tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(LAYER_SRC), str(app)]),
        COVERAGE_SOURCE_ROOT=str(app),
        COVERAGE_OUTBOX_DIR=str(tmp_path / "outbox"),
        AWS_LAMBDA_FUNCTION_NAME="orders-fn",
    )
    env.update(overrides)
    return env


def run_function(spec: str, events: list, env: dict[str, str], *extra: str, timeout: float = 60) -> list[dict]:
    """Invoke a handler in a fresh process; returns its per-invocation JSON lines (layer logs dropped)."""
    done = subprocess.run(
        [sys.executable, str(FIXTURES / "run_function.py"), spec, json.dumps(events), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=env.get("COVERAGE_SOURCE_ROOT"),
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith(('{"result"', '{"error"'))]


def log_lines(output: str) -> list[dict]:
    lines = []
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("logger") == "coverage_wrapper":
            lines.append(record)
    return lines


def outbox_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "outbox" / "pending").glob("*.coverage"))


def recorded(data_file: Path, root: Path, tmp_path: Path) -> Measurements:
    """What a data file holds, with paths relative to the source root (as the shipper uploads it)."""
    copy = tmp_path / f"read-{data_file.name}"
    shutil.copyfile(data_file, copy)
    relativize(str(copy), str(root))
    measurements = Measurements()
    measurements.add_file(str(copy))
    return measurements


def measured_directly(app: Path, spec: str, events: list, tmp_path: Path) -> Measurements:
    """coverage.py alone on the same invocations: the reference the layer must equal."""
    data_file = tmp_path / "direct.coverage"
    env = layer_env(app, tmp_path, COVERAGE_ENABLED="false")
    subprocess.run(
        [sys.executable, str(FIXTURES / "measure_directly.py"), str(app), spec, json.dumps(events), str(data_file)],
        env=env,
        check=True,
        cwd=str(app),
        capture_output=True,
    )
    return recorded(data_file, app, tmp_path)
