"""What a layer zip is: its runtimes, architectures, pins, names and paths, and the version it carries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYER_SRC = REPO_ROOT / "layer_src"
VERSION_FILE = LAYER_SRC / "coverage_wrapper" / "_version.py"
DEFAULT_DIST = REPO_ROOT / "dist"
DEFAULT_WHEEL_CACHE = REPO_ROOT / "build" / "wheels"

LAYER_NAME = "lambda-coverage-layer"
RUNTIMES = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
# Pinned so that a rebuild months later gives the same bytes; 7.10.x is the last for 3.9, 7.16.x for 3.10.
COVERAGE_PINS = {
    "3.9": "7.10.7",
    "3.10": "7.16.2",
    "3.11": "7.17.4",
    "3.12": "7.17.4",
    "3.13": "7.17.4",
    "3.14": "7.17.4",
}
# Runtimes whose coverage.py ships as slim sources whatever the build machine has, so that the zip does not
# depend on it: no 3.14 can be installed on the build machines, and its bytecode (coverage.py's and the
# layer's own, about +270 KB) would not fit the size budget beside the other runtimes'.
SLIM_SOURCE_RUNTIMES = ("3.14",)
MAX_ZIP_BYTES = 2 * 1024 * 1024
MANIFEST_NAME = "layer-manifest.json"
EXEC_WRAPPER = "coverage-instrument"
EXTENSION = "extensions/lambda-coverage-shipper"
EXECUTABLES = (EXEC_WRAPPER, EXTENSION)
# Files of coverage.py's wheel that nothing reads at run time on Lambda; the API and every reporter stay whole.
TRIMMED_FROM_COVERAGE = {
    "coverage/__main__.py": "`python -m coverage`: the command line is not used on Lambda",
    "coverage/cmdline.py": "the `coverage` command line; nothing else in coverage.py imports it",
    "coverage/execfile.py": "runs programs for `coverage run`; only the command line imports it",
    "coverage/htmlfiles/style.scss": "SCSS source of style.css; the HTML reporter copies style.css only",
    "coverage/tracer.pyi": "type stub for type checkers",
    "coverage/py.typed": "PEP 561 marker for type checkers",
    "a1_coverage.pth": ".pth files are processed only in site directories; Lambda adds layer dirs via PYTHONPATH",
}
VERSION_PATTERN = re.compile(r'^__version__ = "([^"]+)"', re.M)


@dataclass(frozen=True)
class Architecture:
    """A Lambda architecture and how its wheels and shared objects are named."""

    name: str
    pip_platform: str
    machine: str
    elf_machine: int


ARCHITECTURES = {
    "x86_64": Architecture("x86_64", "manylinux2014_x86_64", "x86_64", 62),
    "arm64": Architecture("arm64", "manylinux2014_aarch64", "aarch64", 183),
}


class LayerBuildError(Exception):
    """A build, validation or deploy step failed; the message says what and what to do."""


def layer_version() -> str:
    """The layer version from `coverage_wrapper/_version.py`, read without importing it."""
    match = VERSION_PATTERN.search(VERSION_FILE.read_text(encoding="utf-8"))
    if not match:
        raise LayerBuildError(f"no __version__ in {VERSION_FILE}")
    return match.group(1)


def runtime_tag(runtime: str) -> str:
    """`3.11` → `311`."""
    return runtime.replace(".", "")


def site_packages(runtime: str) -> str:
    """Where a runtime's coverage.py sits in the zip (and under /opt)."""
    return f"python/lib/python{runtime}/site-packages"


def c_tracer(runtime: str, arch: Architecture) -> str:
    """coverage.py's compiled tracer for a runtime and architecture, relative to site-packages."""
    return f"coverage/tracer.cpython-{runtime_tag(runtime)}-{arch.machine}-linux-gnu.so"


def package_sources() -> list[str]:
    """The modules of `coverage_wrapper` as the zip holds them (`python/coverage_wrapper/...py`), sorted."""
    return sorted(
        "python/" + p.relative_to(LAYER_SRC).as_posix()
        for p in (LAYER_SRC / "coverage_wrapper").rglob("*.py")
        if "__pycache__" not in p.parts
    )


# Modules only some runtimes run: their bytecode ships for those runtimes alone (another runtime would compile
# one from its source, were it ever imported there). The markers core measures on 3.12 and 3.13 only.
BYTECODE_RUNTIMES = {
    "python/coverage_wrapper/markers.py": ("3.12", "3.13"),
    "python/coverage_wrapper/marking.py": ("3.12", "3.13"),
}


def package_bytecode_sources(runtime: str) -> list[str]:
    """The `coverage_wrapper` modules whose bytecode the zip holds for `runtime`."""
    return [source for source in package_sources() if runtime in BYTECODE_RUNTIMES.get(source, (runtime,))]


def package_pyc(source: str, runtime: str) -> str:
    """Where a `coverage_wrapper` module's pyc for `runtime` sits: `__pycache__/{name}.cpython-3X.pyc` beside it."""
    directory, _, filename = source.rpartition("/")
    return f"{directory}/__pycache__/{filename[:-3]}.cpython-{runtime_tag(runtime)}.pyc"


def zip_name(version: str, architecture: str) -> str:
    """`lambda-coverage-layer-{version}-{architecture}.zip`."""
    return f"{LAYER_NAME}-{version}-{architecture}.zip"


def current_zips(dist: Path = DEFAULT_DIST) -> list[Path]:
    """This version's zips in `dist`, one per architecture, those that exist."""
    version = layer_version()
    return [dist / zip_name(version, arch) for arch in ARCHITECTURES if (dist / zip_name(version, arch)).is_file()]
