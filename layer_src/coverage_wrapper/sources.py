"""The measured source tree: include/exclude patterns, the code version and the source snapshot's files."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

# This package never measures itself, even when it sits under the source root.
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
MAX_SOURCE_FILES = 20000
# coverage.py's configuration files, in the order it looks for them (coverage.config.config_files_to_try):
# the reporter applies their report options as `coverage report` would in the function's folder.
CONFIG_FILES = (".coveragerc", ".coveragerc.toml", "setup.cfg", "tox.ini", "pyproject.toml")
MAX_CONFIG_BYTES = 256 * 1024


def anchor_patterns(patterns: Iterable[str], root: str) -> list[str]:
    """Make relative glob patterns absolute under the source root, as coverage.py matches absolute paths."""
    anchored = []
    for pattern in patterns:
        if pattern.startswith(("*", "/")):
            anchored.append(pattern)
        else:
            anchored.append(os.path.join(root, pattern))
    return anchored


def installed_packages(root: str) -> list[str]:
    """Top-level files and folders that pip installed under the source root: the function's dependencies.

    Read from each `*.dist-info` (its `top_level.txt`, else the first part of each `RECORD` path) and
    `*.egg-info/top_level.txt`, as a deployment package built with `pip install -t` has them.
    """
    try:
        entries = os.listdir(root)
    except OSError:
        return []
    names: set[str] = set()
    for entry in entries:
        if not entry.endswith((".dist-info", ".egg-info")):
            continue
        metadata = os.path.join(root, entry)
        try:
            with open(os.path.join(metadata, "top_level.txt"), encoding="utf-8") as handle:
                names.update(line.strip() for line in handle)
            continue
        except OSError:
            pass
        try:
            with open(os.path.join(metadata, "RECORD"), encoding="utf-8") as handle:
                names.update(line.split(",", 1)[0].split("/", 1)[0] for line in handle)
        except OSError:
            continue
    names = {n for n in names if n and n not in ("..", ".", "__pycache__") and not n.endswith((".dist-info", ".egg-info"))}
    found = []
    for name in sorted(names):
        if os.path.isdir(os.path.join(root, name)):
            found.append(name)
        elif os.path.isfile(os.path.join(root, name + ".py")):
            found.append(name + ".py")
        elif os.path.isfile(os.path.join(root, name)):
            found.append(name)
    return found


def measurement_patterns(root: str, include: Iterable[str], exclude: Iterable[str]) -> tuple[list[str], list[str]]:
    """coverage.py's `include` and `omit` for a source root and the user's patterns.

    Without include patterns, the packages pip installed beside the function's code are left out, as
    coverage.py leaves out site-packages; naming them in COVERAGE_INCLUDE_PATTERNS measures them.
    """
    include_patterns = anchor_patterns(include, root)
    omit_patterns = anchor_patterns(exclude, root) + [os.path.join(PACKAGE_DIR, "*")]
    if not include_patterns:
        include_patterns = [os.path.join(root, "*")]
        for name in installed_packages(root):
            path = os.path.join(root, name)
            omit_patterns.append(os.path.join(path, "*") if os.path.isdir(path) else path)
    return include_patterns, omit_patterns


@dataclass(frozen=True)
class SourceFile:
    relative_path: str
    absolute_path: str
    sha256: str
    size: int


def is_measured(path: str, include: list[str], omit: list[str]) -> bool:
    """Whether coverage.py's `include`/`omit` globs select a file (the markers core and the snapshot agree)."""
    return any(fnmatch.fnmatch(path, p) for p in include) and not any(fnmatch.fnmatch(path, p) for p in omit)


def _sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def scan_config(root: str) -> list[SourceFile]:
    """coverage.py's config files at the source root, hashed; one past MAX_CONFIG_BYTES gets no sha256.

    Regular files only: a link could point anywhere (such as /proc/self/environ), and the snapshot is readable
    by whoever reads the reports.
    """
    found = []
    for name in CONFIG_FILES:
        path = os.path.join(root, name)
        try:
            status = os.lstat(path)
            if not stat.S_ISREG(status.st_mode):
                continue
            found.append(SourceFile(name, path, _sha256_of(path) if status.st_size <= MAX_CONFIG_BYTES else "", status.st_size))
        except OSError:
            continue
    return found


def scan_sources(root: str, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[SourceFile]:
    """Every Python file coverage.py would measure under the root, hashed, sorted by relative path."""
    include_patterns, omit_patterns = measurement_patterns(root, include, exclude)
    found: list[SourceFile] = []
    left_out = {p[:-2] for p in omit_patterns if p.endswith(os.sep + "*")}
    for directory, subdirs, filenames in os.walk(root):
        subdirs[:] = sorted(
            d for d in subdirs
            if not d.startswith(".") and d != "__pycache__" and os.path.join(directory, d) not in left_out
        )
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            path = os.path.join(directory, filename)
            if not is_measured(path, include_patterns, omit_patterns) or not os.path.isfile(path):
                continue
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            found.append(SourceFile(relative, path, _sha256_of(path), os.path.getsize(path)))
            if len(found) >= MAX_SOURCE_FILES:
                return sorted(found, key=lambda f: f.relative_path)
    return sorted(found, key=lambda f: f.relative_path)


def code_version(files: Iterable[SourceFile]) -> str:
    """First 12 hex chars of a sha256 over the sorted (relative path, file sha256) pairs."""
    digest = hashlib.sha256()
    for source in sorted(files, key=lambda f: f.relative_path):
        digest.update(f"{source.relative_path}\0{source.sha256}\n".encode())
    return digest.hexdigest()[:12]
