"""The structure checks of a layer zip: everything that can be checked without running the layer."""

from __future__ import annotations

import ast
import json
import stat
import zipfile
from pathlib import Path

from .layout import (
    ARCHITECTURES,
    EXECUTABLES,
    MANIFEST_NAME,
    MAX_ZIP_BYTES,
    RUNTIMES,
    VERSION_PATTERN,
    Architecture,
    c_tracer,
    package_pyc,
    package_bytecode_sources,
    package_sources,
    site_packages,
)


def check_structure(zip_path: Path, max_bytes: int = MAX_ZIP_BYTES) -> list[str]:
    """Everything that can be checked without running the layer; returns the problems found (empty = fine)."""
    problems: list[str] = []
    size = zip_path.stat().st_size
    if size > max_bytes:
        problems.append(f"zip is {size} bytes, over the budget of {max_bytes} bytes")
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        return problems + [f"not a readable zip: {exc}"]
    with archive:
        infos = {info.filename: info for info in archive.infolist()}
        damaged = archive.testzip()
        if damaged:
            problems.append(f"{damaged}: CRC mismatch")
        for name in infos:
            if name.startswith("/") or ".." in name.split("/"):
                problems.append(f"{name}: path escapes the layer root")
        if MANIFEST_NAME not in infos:
            return problems + [f"{MANIFEST_NAME} is missing"]
        try:
            manifest = json.loads(archive.read(MANIFEST_NAME))
        except ValueError as exc:
            return problems + [f"{MANIFEST_NAME} is not JSON: {exc}"]
        problems += _check_manifest_and_files(archive, infos, manifest)
    return problems


def _elf_machine(data: bytes) -> int | None:
    if data[:4] != b"\x7fELF" or len(data) < 20:
        return None
    return int.from_bytes(data[18:20], "little" if data[5] == 1 else "big")


def _check_manifest_and_files(archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], manifest: dict) -> list[str]:
    problems: list[str] = []
    arch = ARCHITECTURES.get(manifest.get("architecture", ""))
    if arch is None:
        return [f"{MANIFEST_NAME}: unknown architecture {manifest.get('architecture')!r}"]
    version_entry = "python/coverage_wrapper/_version.py"
    if version_entry in infos:
        found = VERSION_PATTERN.search(archive.read(version_entry).decode())
        if not found or found.group(1) != manifest.get("layer_version"):
            problems.append(f"{MANIFEST_NAME}: layer_version does not match {version_entry}")
    expected_package = package_sources()
    for name in expected_package:
        if name not in infos:
            problems.append(f"{name} is missing (rebuild after changing layer_src)")
    for name in EXECUTABLES:
        info = infos.get(name)
        if info is None:
            problems.append(f"{name} is missing")
            continue
        mode = info.external_attr >> 16
        if info.create_system != 3 or not stat.S_ISREG(mode) or mode & 0o111 != 0o111:
            problems.append(f"{name} is not executable in the zip (mode {oct(mode)}); Lambda would not run it")
        if not archive.read(name).startswith(b"#!"):
            problems.append(f"{name} has no #! line")
    runtimes = manifest.get("runtimes", {})
    for runtime in RUNTIMES:
        label = f"python{runtime}"
        if label not in runtimes or label not in manifest.get("compatible_runtimes", []):
            problems.append(f"{MANIFEST_NAME}: {label} is not listed")
            continue
        problems += _check_runtime_files(archive, infos, runtime, runtimes[label], arch)
    return problems


def _check_runtime_files(
    archive: zipfile.ZipFile,
    infos: dict[str, zipfile.ZipInfo],
    runtime: str,
    entry: dict,
    arch: Architecture,
) -> list[str]:
    problems: list[str] = []
    site = site_packages(runtime)
    suffix = ".pyc" if entry.get("coverage_modules") == "bytecode" else ".py"
    modules = ("__init__", "control", "collector", "core", "sysmon", "pytracer", "data", "sqldata", "html", "xmlreport")
    needed = [f"coverage/{module}{suffix}" for module in modules]
    needed += [f"coverage/htmlfiles/{name}" for name in ("style.css", "coverage_html.js", "index.html", "pyfile.html")]
    missing = [name for name in needed if f"{site}/{name}" not in infos]
    if missing:
        return [f"python{runtime}: coverage.py is missing from {site} ({', '.join(missing[:3])}, ...)"]
    metadata = f"{site}/coverage-{entry.get('coverage')}.dist-info/METADATA"
    if metadata not in infos:
        problems.append(f"python{runtime}: {metadata} is missing (coverage version differs from the manifest?)")
    tracer = f"{site}/{c_tracer(runtime, arch)}"
    if tracer not in infos:
        problems.append(f"python{runtime}: coverage.py's C tracer {tracer} is missing")
    elif _elf_machine(archive.read(tracer)) != arch.elf_machine:
        problems.append(f"python{runtime}: {tracer} is not an {arch.machine} shared object")
    if entry.get("coverage_modules") == "source":
        problems += _check_sources(archive, infos, runtime, site)
    if entry.get("bytecode"):
        pycs = [package_pyc(source, runtime) for source in package_bytecode_sources(runtime)]
        pycs += sorted(n for n in infos if n.startswith(f"{site}/") and n.endswith(".pyc"))
        for pyc in pycs:
            if pyc not in infos:
                problems.append(f"python{runtime}: bytecode {pyc} is missing")
                break
            if archive.read(pyc)[4:8] != b"\x01\x00\x00\x00":
                problems.append(f"python{runtime}: {pyc} is not an unchecked-hash pyc")
                break
    return problems


def _check_sources(archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], runtime: str, site: str) -> list[str]:
    """coverage.py as sources: no stray bytecode, and every module parses (the grammar the build slimmed it with)."""
    problems: list[str] = []
    stray = sorted(n for n in infos if n.startswith(f"{site}/") and n.endswith(".pyc"))
    if stray:
        problems.append(f"python{runtime}: coverage.py ships as sources but {stray[0]} is bytecode of unknown origin")
    for name in sorted(n for n in infos if n.startswith(f"{site}/coverage/") and n.endswith(".py")):
        try:
            ast.parse(archive.read(name), filename=name)
        except (SyntaxError, ValueError) as exc:
            problems.append(f"python{runtime}: {name} does not parse: {exc}")
    return problems
