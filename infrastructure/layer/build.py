"""Building the layer: one reproducible zip per architecture from layer_src, coverage.py's wheels and bytecode.

A zip holds the shared pure-Python `coverage_wrapper`, coverage.py from its manylinux wheel for each runtime
and that architecture, bytecode compiled by each runtime's own interpreter (3.14, and a runtime with no
local interpreter, get coverage.py as slim sources instead), the exec wrapper, the extension and
`layer-manifest.json`. Same inputs give the same bytes.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bytecode import compile_bytecode, package_jobs, sourceless_jobs
from .interpreters import find_interpreter
from .layout import (
    ARCHITECTURES,
    COVERAGE_PINS,
    DEFAULT_DIST,
    DEFAULT_WHEEL_CACHE,
    EXEC_WRAPPER,
    EXECUTABLES,
    EXTENSION,
    LAYER_NAME,
    LAYER_SRC,
    MANIFEST_NAME,
    RUNTIMES,
    SLIM_SOURCE_RUNTIMES,
    TRIMMED_FROM_COVERAGE,
    Architecture,
    c_tracer,
    current_zips,
    layer_version,
    package_bytecode_sources,
    site_packages,
    zip_name,
)
from .slim_sources import slim_tree
from .tracers import strip_debug_info, strip_tool
from .wheels import ensure_wheel, unpack_wheel, write_record

ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: no build time leaks into the bytes


@dataclass
class BuiltZip:
    """One built layer zip."""

    architecture: str
    path: Path
    size: int
    sha256: str


@dataclass
class BuildResult:
    """What `build` produced and what it could not do (a missing interpreter means slim sources, no bytecode)."""

    version: str
    zips: list[BuiltZip] = field(default_factory=list)
    without_bytecode: list[str] = field(default_factory=list)


def build(
    dist: Path = DEFAULT_DIST,
    wheel_cache: Path = DEFAULT_WHEEL_CACHE,
    write_latest: bool = True,
    interpreters: Mapping[str, Path | None] | None = None,
) -> BuildResult:
    """Build one zip per architecture into `dist`; the same inputs give byte-identical zips.

    `interpreters` maps each runtime to the interpreter that compiles its bytecode, or None for none
    (its coverage.py then ships as slim sources); by default, the local ones `find_interpreter` finds,
    and none for `SLIM_SOURCE_RUNTIMES`.
    """
    version = layer_version()
    wheel_cache.mkdir(parents=True, exist_ok=True)
    dist.mkdir(parents=True, exist_ok=True)
    arches = list(ARCHITECTURES.values())
    pairs = [(runtime, arch) for arch in arches for runtime in RUNTIMES]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        wheels = dict(zip(pairs, pool.map(lambda pair: ensure_wheel(wheel_cache, *pair), pairs)))
    given = {runtime: None for runtime in SLIM_SOURCE_RUNTIMES} | dict(interpreters or {})
    chosen = {runtime: given[runtime] if runtime in given else find_interpreter(runtime) for runtime in RUNTIMES}
    result = BuildResult(version, without_bytecode=[r for r in RUNTIMES if chosen[r] is None])
    with tempfile.TemporaryDirectory(prefix="layer-build-") as scratch:
        trees = {arch.name: Path(scratch) / arch.name for arch in arches}
        records: dict[tuple[str, str], str] = {}
        trimmed: dict[str, list[str]] = {}
        for arch in arches:
            _copy_layer_sources(trees[arch.name])
            for runtime in RUNTIMES:
                target = trees[arch.name] / site_packages(runtime)
                records[runtime, arch.name], trimmed[runtime] = unpack_wheel(wheels[runtime, arch], target)
                strip_debug_info(target / c_tracer(runtime, arch))

        def compile_runtime(runtime: str) -> None:
            interpreter = chosen[runtime]
            if interpreter is None:
                for tree in trees.values():
                    slim_tree(tree / site_packages(runtime))
                return
            jobs = [job for tree in trees.values() for job in package_jobs(tree, runtime, package_bytecode_sources(runtime))]
            coverage_jobs = [job for tree in trees.values() for job in sourceless_jobs(tree, runtime)]
            compile_bytecode(interpreter, runtime, jobs + coverage_jobs)
            for job in coverage_jobs:
                job.source.unlink()

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(RUNTIMES)) as pool:
            list(pool.map(compile_runtime, RUNTIMES))
        for arch in arches:
            tree = trees[arch.name]
            for runtime in RUNTIMES:
                write_record(tree / site_packages(runtime), records[runtime, arch.name])
            manifest = _manifest(version, arch, wheels, chosen, trimmed)
            (tree / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            target = dist / zip_name(version, arch.name)
            write_deterministic_zip(tree, target)
            if write_latest:
                shutil.copyfile(target, dist / zip_name("latest", arch.name))
            data = target.read_bytes()
            result.zips.append(BuiltZip(arch.name, target, len(data), hashlib.sha256(data).hexdigest()))
    return result


def built_zips(dist: Path = DEFAULT_DIST) -> list[Path]:
    """This version's zips in `dist`, built first when an architecture's zip is missing."""
    zips = current_zips(dist)
    if len(zips) < len(ARCHITECTURES):
        build(dist)
        zips = current_zips(dist)
    return zips


def _copy_layer_sources(tree: Path) -> None:
    """The shared pure-Python package and the two executables."""
    package = tree / "python" / "coverage_wrapper"
    shutil.copytree(
        LAYER_SRC / "coverage_wrapper", package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
    )
    for relative in EXECUTABLES:
        (tree / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(LAYER_SRC / relative, tree / relative)


def _entry_mode(arcname: str) -> int:
    if arcname in EXECUTABLES or arcname.endswith(".so"):
        return 0o755
    return 0o644


def write_deterministic_zip(tree: Path, target: Path) -> None:
    """Zip a tree with sorted entries, a fixed timestamp, fixed permissions and maximum compression."""
    names = []
    for path in tree.rglob("*"):
        relative = path.relative_to(tree).as_posix()
        names.append(relative + "/" if path.is_dir() else relative)
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(scratch, "w") as archive:
        for arcname in sorted(names):
            info = zipfile.ZipInfo(arcname, ZIP_DATE_TIME)
            info.create_system = 3  # Unix, so unzip and Lambda honour the permission bits
            if arcname.endswith("/"):
                info.external_attr = ((stat.S_IFDIR | 0o755) << 16) | 0x10
                archive.writestr(info, b"")
            else:
                info.external_attr = (stat.S_IFREG | _entry_mode(arcname)) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, (tree / arcname).read_bytes(), compresslevel=9)
    os.replace(scratch, target)


def _manifest(
    version: str,
    arch: Architecture,
    wheels: dict[tuple[str, Architecture], Path],
    interpreters: dict[str, Path | None],
    trimmed: dict[str, list[str]],
) -> dict[str, Any]:
    runtimes = {}
    for runtime in RUNTIMES:
        wheel = wheels[runtime, arch]
        runtimes[f"python{runtime}"] = {
            "coverage": COVERAGE_PINS[runtime],
            "wheel": wheel.name,
            "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
            "site_packages": site_packages(runtime),
            "c_tracer": c_tracer(runtime, arch),
            "bytecode": interpreters[runtime] is not None,
            "coverage_modules": "bytecode" if interpreters[runtime] is not None else "source",
            "trimmed_from_coverage": trimmed[runtime],
        }
    return {
        "layer": LAYER_NAME,
        "layer_version": version,
        "architecture": arch.name,
        "architectures": sorted(ARCHITECTURES),
        "compatible_runtimes": [f"python{r}" for r in RUNTIMES],
        "runtimes": runtimes,
        "html_reporter_assets": "complete",
        "trimmed_from_coverage": TRIMMED_FROM_COVERAGE,
        "c_tracers": f"the wheels' shared objects without debug sections (llvm-strip --strip-debug, {strip_tool()[1]})",
        "bytecode": (
            "unchecked-hash pycs without docstrings, compiled by each runtime's own interpreter: coverage_wrapper "
            "keeps its sources with __pycache__/*.cpython-3X.pyc beside them; coverage.py ships as sourceless "
            "pycs (module.pyc) in each runtime's site-packages, or as slim sources (docstrings and comments "
            "removed, line numbers kept) for python3.14 and a runtime built without its interpreter"
        ),
        "exec_wrapper": f"/opt/{EXEC_WRAPPER}",
        "extension": f"/opt/{EXTENSION}",
    }
