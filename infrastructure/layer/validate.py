"""Validating built zips: every zip's structure, then the one for this machine run in each local Python."""

from __future__ import annotations

import concurrent.futures
import json
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .interpreters import find_interpreter, host_architecture
from .layout import MANIFEST_NAME, RUNTIMES
from .runtime_checks import RuntimeCheck, check_runtime, extract_as_opt
from .structure import check_structure


@dataclass
class ValidationReport:
    """Structure problems per zip and the runtime checks of the zip that matches this machine."""

    structure: dict[str, list[str]] = field(default_factory=dict)
    runtime_checks: list[RuntimeCheck] = field(default_factory=list)
    missing_interpreters: list[str] = field(default_factory=list)
    runtime_zip: str = ""

    @property
    def ok(self) -> bool:
        return not any(self.structure.values()) and all(check.ok for check in self.runtime_checks)


def validate(zips: Sequence[Path], run_layer: bool = True) -> ValidationReport:
    """Check every zip's structure, then run the one built for this machine's architecture in each local Python."""
    report = ValidationReport()
    for path in zips:
        report.structure[str(path)] = check_structure(path)
    if not run_layer:
        return report
    host = host_architecture()
    runnable = [p for p in zips if _zip_architecture(p) == host and not report.structure[str(p)]]
    if not runnable:
        return report
    report.runtime_zip = str(runnable[0])
    interpreters = {runtime: find_interpreter(runtime) for runtime in RUNTIMES}
    report.missing_interpreters = [r for r, path in interpreters.items() if path is None]
    with tempfile.TemporaryDirectory(prefix="layer-validate-") as scratch:
        opt = Path(scratch) / "opt"
        extract_as_opt(runnable[0], opt)
        available = [(r, p) for r, p in interpreters.items() if p is not None]
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(RUNTIMES)) as pool:
            futures = {r: pool.submit(check_runtime, opt, r, p, Path(scratch) / f"work-{r}") for r, p in available}
            for runtime, interpreter in available:
                try:
                    report.runtime_checks.append(futures[runtime].result())
                except Exception as exc:  # a check that breaks is a failed check, reported like the others
                    report.runtime_checks.append(RuntimeCheck(runtime, str(interpreter), [f"check crashed: {exc!r}"]))
    return report


def _zip_architecture(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(MANIFEST_NAME)).get("architecture")
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return None
