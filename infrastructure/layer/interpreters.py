"""The local CPython interpreters the build compiles with and the validation runs in, and this machine's architecture."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path


def _pyenv_root() -> Path | None:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    if shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            return Path(found.stdout.strip())
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


def find_interpreter(runtime: str) -> Path | None:
    """The newest local CPython `runtime`: pyenv's versions, `python3.X` on PATH, or the one running this."""
    root = _pyenv_root()
    if root is not None and (root / "versions").is_dir():
        pattern = re.compile(rf"^{re.escape(runtime)}\.(\d+)$")
        candidates = []
        for entry in (root / "versions").iterdir():
            match = pattern.match(entry.name)
            if match and (entry / "bin" / "python").is_file():
                candidates.append((int(match.group(1)), entry / "bin" / "python"))
        if candidates:
            return max(candidates)[1]
    on_path = shutil.which(f"python{runtime}")
    if on_path:
        return Path(on_path)
    if runtime == "%d.%d" % sys.version_info[:2]:
        base = Path(sys.base_prefix) / "bin" / f"python{runtime}"
        return base if base.is_file() else Path(sys.executable)
    return None


def host_architecture() -> str | None:
    """This machine's Lambda architecture name (`x86_64`, `arm64`), or None when Lambda has no such architecture."""
    machine = platform.machine().lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)


def last_line(output: str) -> str:
    """The last non-blank line of an interpreter's output: what a one-line error message quotes."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
