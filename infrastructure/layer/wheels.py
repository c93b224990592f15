"""coverage.py's manylinux wheels: downloaded once per runtime and architecture, unpacked, their RECORD rewritten."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from .layout import COVERAGE_PINS, TRIMMED_FROM_COVERAGE, Architecture, LayerBuildError, runtime_tag


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialize concurrent builds (xdist workers, two terminals) that share the wheel cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cached_wheel(cache: Path, runtime: str, arch: Architecture) -> Path | None:
    tag = f"cp{runtime_tag(runtime)}"
    prefix = f"coverage-{COVERAGE_PINS[runtime]}-{tag}-{tag}-"
    found = sorted(
        p for p in cache.glob(f"{prefix}*.whl") if "manylinux" in p.name and p.name.endswith(f"{arch.machine}.whl")
    )
    return found[0] if found else None


def ensure_wheel(cache: Path, runtime: str, arch: Architecture) -> Path:
    """coverage.py's manylinux wheel for one runtime and architecture: from the cache, else from PyPI."""
    wheel = _cached_wheel(cache, runtime, arch)
    if wheel is not None:
        return wheel
    with _file_lock(cache / f".download-{runtime}-{arch.name}.lock"):
        wheel = _cached_wheel(cache, runtime, arch)
        if wheel is not None:
            return wheel
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as scratch:
            command = [
                sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                "--no-deps", "--only-binary=:all:", "--platform", arch.pip_platform,
                "--python-version", runtime, "--implementation", "cp", "--dest", scratch,
                f"coverage=={COVERAGE_PINS[runtime]}",
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = " ".join(done.stderr.strip().splitlines()[-3:])
                raise LayerBuildError(
                    f"pip could not download coverage=={COVERAGE_PINS[runtime]} for python{runtime} "
                    f"{arch.name}: {tail}"
                )
            downloaded = _cached_wheel(Path(scratch), runtime, arch)
            if downloaded is None:
                raise LayerBuildError(f"pip downloaded no manylinux wheel for python{runtime} {arch.name}")
            os.replace(downloaded, cache / downloaded.name)
    return cache / downloaded.name


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def unpack_wheel(wheel: Path, site_packages: Path) -> tuple[str, list[str]]:
    """Extract what the layer needs from a wheel; returns its RECORD's path and what was trimmed."""
    trimmed = []
    record_path = ""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            name = info.filename
            if info.is_dir():
                continue
            if name.endswith(".dist-info/RECORD"):
                record_path = name
            elif name in TRIMMED_FROM_COVERAGE:
                trimmed.append(name)
            else:
                target = site_packages / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(info))
    if not record_path:
        raise LayerBuildError(f"{wheel.name} has no RECORD")
    return record_path, sorted(trimmed)


def write_record(site_packages: Path, record_path: str) -> None:
    """Rewrite the wheel's RECORD so that it lists exactly the files the layer ships."""
    lines = []
    for path in sorted(p for p in site_packages.rglob("*") if p.is_file()):
        name = path.relative_to(site_packages).as_posix()
        if name != record_path:
            data = path.read_bytes()
            lines.append(f"{name},{_record_hash(data)},{len(data)}")
    (site_packages / record_path).write_text("\n".join(lines + [f"{record_path},,"]) + "\n", encoding="utf-8")
