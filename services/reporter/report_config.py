"""The function's own coverage.py configuration: the report options of its config file, read by coverage.py's reader."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coverage_wrapper.sources import CONFIG_FILES, MAX_CONFIG_BYTES

# coverage.py reads these as its own files; in the others it looks only for [coverage:*] / [tool.coverage.*].
_OWN_FILES = frozenset({".coveragerc", ".coveragerc.toml"})
# The options taken from a config file, by coverage.py's attribute names. Nothing of [run] is read: the
# pipeline decides how data is read, and a plugin a config names is never loaded.
_REPORT_OPTIONS = {
    "exclude_list": "exclude_lines",
    "exclude_also": "exclude_also",
    "partial_list": "partial_branches",
    "partial_also": "partial_also",
    "report_omit": "omit",
    "precision": "precision",
}
# Every precision coverage.py's own reports are read with; far larger ones only make reports huge.
MAX_PRECISION = 10
MAX_WARNINGS = 20
MAX_TEXT = 300
MAX_LISTED = 50


@dataclass
class ReportConfig:
    """The report options of the config file coverage.py would use at a function's source root.

    `options` holds coverage.py option names and values ready for `Coverage.set_option`; `set_in_file`
    what the file itself says (for summary.json). `ignored` says why a config file that is there applies
    no options at all.
    """

    file: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    set_in_file: dict[str, Any] = field(default_factory=dict)
    ignored: str | None = None
    warnings: list[str] = field(default_factory=list)

    def apply(self, cov: Any) -> None:
        """Set the options on a `coverage.Coverage` before it loads its data."""
        for name, value in self.options.items():
            cov.set_option(name, value)

    def omits(self, local_path: str) -> bool:
        """Whether [report] omit leaves out a file at this local path, matched as coverage.py's reports match it."""
        patterns = self.options.get("report:omit")
        if not patterns:
            return False
        from coverage.files import GlobMatcher, abs_file, prep_patterns

        return GlobMatcher(prep_patterns(patterns), "report_omit").match(abs_file(local_path))

    def describe(self) -> dict[str, Any]:
        """What summary.json says: the file used, the options it sets, or why none apply."""
        return {"file": self.file, "options": self.set_in_file, "ignored": self.ignored, "warnings": self.warnings}


def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _listed(value: Any) -> Any:
    """A value as summary.json shows it: bounded in length, whatever the file holds."""
    if isinstance(value, list):
        return [_short(str(item)) for item in value[:MAX_LISTED]]
    return value


def _read_file(config: Any, path: str, name: str, warnings: list[str]) -> bool:
    """Read one config file into `config` with coverage.py's reader; whether coverage.py would use it.

    coverage.py expands $VARIABLES in values from its process environment: here they expand as in an empty
    one, so nothing of the reporter's own environment (its credentials) ever reaches a report.
    """
    from coverage.misc import substitute_variables

    if os.path.getsize(path) > MAX_CONFIG_BYTES:
        raise ValueError(f"it is larger than {MAX_CONFIG_BYTES // 1024} KiB")
    with open(path, "rb") as original:
        text = original.read(MAX_CONFIG_BYTES + 1).decode("utf-8-sig")
    literal = substitute_variables(text, {}).replace("$", "$$")
    with tempfile.TemporaryDirectory(prefix="coverage-config-") as scratch:
        copy = os.path.join(scratch, name)
        with open(copy, "w", encoding="utf-8") as handle:
            handle.write(literal)

        def warn(message: str) -> None:
            if len(warnings) < MAX_WARNINGS:
                warnings.append(_short(message.replace(copy, name)))

        try:
            return bool(config.from_file(copy, warn, our_file=name in _OWN_FILES))
        except Exception as exc:  # noqa: BLE001 - whatever coverage.py raises becomes the one reason shown
            raise ValueError(str(exc).replace(copy, name)) from None


def read_report_config(directory: str, unavailable: Mapping[str, str] | None = None) -> ReportConfig:
    """The report options coverage.py would use in `directory` (the function's source root); never raises.

    Files are looked for in coverage.py's order, and the first it would use gives the options: exclude_lines,
    exclude_also, partial_branches, partial_also, omit of [report] (relative patterns anchored at
    `directory`, as coverage.py anchors them at its working directory) and precision. A file that cannot
    be read, or one `unavailable` names (listed in the source snapshot but not fetched, with why), means no
    options at all, with the reason: never those of a file coverage.py would not have used.
    """
    from coverage.config import CoverageConfig

    unavailable = unavailable or {}
    config = CoverageConfig()
    defaults = CoverageConfig()
    warnings: list[str] = []
    for name in CONFIG_FILES:
        if name in unavailable:
            return ReportConfig(file=name, ignored=_short(f"{name} is not applied: {unavailable[name]}"))
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        try:
            used = _read_file(config, path, name, warnings)
        except Exception as exc:  # noqa: BLE001 - whatever a file holds, the reports go on without it
            return ReportConfig(file=name, ignored=_short(f"coverage.py cannot read {name}: {exc}"), warnings=warnings)
        if used:
            break
    else:
        return ReportConfig()
    set_in_file = {
        option: _listed(getattr(config, attribute))
        for attribute, option in _REPORT_OPTIONS.items()
        if getattr(config, attribute) != getattr(defaults, attribute)
    }
    options: dict[str, Any] = {
        # coverage.py adds the *_also lists when it reads its configuration; set_option does not.
        "report:exclude_lines": config.exclude_list + config.exclude_also,
        "report:partial_branches": config.partial_list + config.partial_also,
    }
    if config.report_omit:
        options["report:omit"] = [
            pattern if pattern.startswith(("*", "?")) or os.path.isabs(pattern) else os.path.join(directory, pattern)
            for pattern in config.report_omit
        ]
    if 0 <= config.precision <= MAX_PRECISION:
        options["report:precision"] = config.precision
    else:
        warnings.append(f"precision {config.precision} is not applied: it must be 0 to {MAX_PRECISION}")
        set_in_file.pop("precision", None)
    return ReportConfig(file=name, options=options, set_in_file=set_in_file, warnings=warnings[:MAX_WARNINGS])
