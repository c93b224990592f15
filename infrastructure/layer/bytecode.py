"""Bytecode for each runtime, compiled by that runtime's own interpreter: unchecked-hash pycs with fixed bytes."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .interpreters import last_line
from .layout import LayerBuildError, package_pyc, site_packages

COMPILE_SCRIPT = Path(__file__).with_name("scripts") / "compile_pycs.py"


@dataclass(frozen=True)
class CompileJob:
    """One module to compile: its source in the staging tree, the pyc to write, the path it has under /opt."""

    source: Path
    target: Path
    display: str
    strip_docstrings: bool


def package_jobs(tree: Path, runtime: str, sources: Sequence[str]) -> list[CompileJob]:
    """coverage_wrapper: sources stay, pycs without docstrings go to `__pycache__/*.cpython-3X.pyc` beside them."""
    return [
        CompileJob(tree / source, tree / package_pyc(source, runtime), f"/opt/{source}", True) for source in sources
    ]


def sourceless_jobs(tree: Path, runtime: str) -> list[CompileJob]:
    """coverage.py in a runtime's own site-packages: each module's pyc replaces its source (`control.pyc`)."""
    return [
        CompileJob(path, path.with_suffix(".pyc"), f"/opt/{path.relative_to(tree).as_posix()}", True)
        for path in sorted((tree / site_packages(runtime)).rglob("*.py"))
    ]


def compile_bytecode(interpreter: Path, runtime: str, jobs: Sequence[CompileJob]) -> None:
    """Compile the jobs with the runtime's own interpreter (bytecode differs between Python versions)."""
    payload = [[str(j.source), str(j.target), j.display, j.strip_docstrings] for j in jobs]
    done = subprocess.run(
        [str(interpreter), "-S", "-s", str(COMPILE_SCRIPT)],
        input=json.dumps([runtime, payload]),
        capture_output=True,
        text=True,
        # set literals are marshalled in hash order: a fixed seed keeps the pycs identical between builds
        env={"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")},
        check=False,
    )
    if done.returncode != 0:
        raise LayerBuildError(f"python{runtime} ({interpreter}) could not compile the layer: {last_line(done.stderr)}")
