"""The measured source tree: include/exclude patterns, the code version and the source snapshot's files."""

from __future__ import annotations

import fnmatch
import hashlib
import os
from dataclasses import dataclass
from typing import Iterable

# This package never measures itself, even when it sits under the source root.
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
MAX_SOURCE_FILES = 20000


def anchor_patterns(patterns: Iterable[str], root: str) -> list[str]:
    """Make relative glob patterns absolute under the source root, as coverage.py matches absolute paths."""
    anchored = []
    for pattern in patterns:
        if pattern.startswith(("*", "/")):
            anchored.append(pattern)
        else:
            anchored.append(os.path.join(root, pattern))
    return anchored


def measurement_patterns(root: str, include: Iterable[str], exclude: Iterable[str]) -> tuple[list[str], list[str]]:
    """coverage.py's `include` and `omit` for a source root and the user's patterns."""
    include_patterns = anchor_patterns(include, root) or [os.path.join(root, "*")]
    omit_patterns = anchor_patterns(exclude, root) + [os.path.join(PACKAGE_DIR, "*")]
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


def scan_sources(root: str, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[SourceFile]:
    """Every Python file coverage.py would measure under the root, hashed, sorted by relative path."""
    include_patterns, omit_patterns = measurement_patterns(root, include, exclude)
    found: list[SourceFile] = []
    for directory, subdirs, filenames in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d != "__pycache__")
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            path = os.path.join(directory, filename)
            if not is_measured(path, include_patterns, omit_patterns) or not os.path.isfile(path):
                continue
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 16), b""):
                    digest.update(chunk)
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            found.append(SourceFile(relative, path, digest.hexdigest(), os.path.getsize(path)))
            if len(found) >= MAX_SOURCE_FILES:
                return sorted(found, key=lambda f: f.relative_path)
    return sorted(found, key=lambda f: f.relative_path)


def code_version(files: Iterable[SourceFile]) -> str:
    """First 12 hex chars of a sha256 over the sorted (relative path, file sha256) pairs."""
    digest = hashlib.sha256()
    for source in sorted(files, key=lambda f: f.relative_path):
        digest.update(f"{source.relative_path}\0{source.sha256}\n".encode())
    return digest.hexdigest()[:12]
