"""coverage.py's C tracers as the layer ships them: the wheel's shared objects without their debug sections.

The manylinux wheels carry DWARF debug info, three quarters of each tracer's compressed size; nothing on
Lambda reads it. `llvm-strip --strip-debug` removes only the `.debug_*` sections: code, data and the symbol
table (for crash backtraces) stay. One tool strips both architectures' ELF files on any build machine.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from .interpreters import last_line
from .layout import LayerBuildError


@lru_cache(maxsize=1)
def strip_tool() -> tuple[str, str]:
    """`llvm-strip` (on PATH, else Debian's /usr/lib/llvm-N/bin) and the version line it prints."""
    found = shutil.which("llvm-strip")
    if found is None:
        versioned = sorted(glob.glob("/usr/lib/llvm-*/bin/llvm-strip"), key=_llvm_major)
        found = versioned[-1] if versioned else None
    if found is None:
        raise LayerBuildError(
            "llvm-strip not found: the build strips debug info from coverage.py's C tracers to fit the size "
            "budget (Debian/Ubuntu: apt-get install llvm; macOS: brew install llvm and put its bin/ on PATH)"
        )
    done = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
    version = next((line.strip() for line in done.stdout.splitlines() if "version" in line.lower()), "unknown version")
    return found, version


def strip_debug_info(shared_object: Path) -> None:
    """Remove the debug sections of one shared object in place."""
    tool, _ = strip_tool()
    done = subprocess.run([tool, "--strip-debug", str(shared_object)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LayerBuildError(f"llvm-strip failed on {shared_object.name}: {last_line(done.stderr)}")


def _llvm_major(path: str) -> int:
    digits = Path(path).parts[-3].rpartition("-")[2]
    return int(digits) if digits.isdigit() else 0
