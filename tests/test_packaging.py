"""The installable distribution: two import names, package data, and the CLI working from a plain install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from layer_harness import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
                   check=True, capture_output=True, timeout=600)
    [built] = out.glob("lambda_coverage_layer-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv outside the repository with only the wheel installed; its dependencies are the dev
    venv's, reached through a path entry (no editable install, no repository on the path)."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return venv


def test_the_wheel_adds_exactly_two_import_names_and_ships_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"coverage_wrapper", "lambda_coverage"}
    for needed in ("lambda_coverage/statemachine/combine.asl.json", "lambda_coverage/statemachine/intake.asl.json",
                   "lambda_coverage/examples/simple_function/handler.py", "lambda_coverage/layer_src/coverage-instrument",
                   "lambda_coverage/layer_src/extensions/lambda-coverage-shipper", "lambda_coverage/cdk/instrument.py",
                   "lambda_coverage/services/reporter/render.py", "lambda_coverage/cli.py", "coverage_wrapper/markers.py"):
        assert needed in names, needed
    metadata = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert {"Provides-Extra: cdk", "Provides-Extra: local", "Provides-Extra: dev"} <= set(metadata.splitlines())


def test_a_plain_install_runs_the_demo_outside_the_repository(installed, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "PYTHON", "AWS_"))}
    env["PATH"] = f"{installed / 'bin'}{os.pathsep}{env['PATH']}"
    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import lambda_coverage, coverage_wrapper, importlib.util; "
                            "print(lambda_coverage.__file__); print(importlib.util.find_spec('services'))"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert where[0].startswith(str(installed)) and where[1] == "None", "no repository folder leaks in"
    done = subprocess.run([str(installed / "bin" / "lambda-coverage"), "demo", "--out", "reports", "--environments", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    dashboard = tmp_path / "reports" / "reports" / "index.html"
    assert dashboard.is_file() and "simple-function" in dashboard.read_text()
    summaries = list((tmp_path / "reports").glob("combined/*/*/*/summary.json"))
    assert summaries and all(json.loads(s.read_text())["files_with_source"] > 0 for s in summaries)
