"""The layer's configuration: every environment variable is parsed here, once."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable

from . import log
from .keys import DEFAULT_PREFIX, normalize_prefix

CORES = ("markers", "sysmon", "ctrace", "pytrace")
_VERSION_LABEL = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Config:
    """What the layer was asked to do. Built by `load_config`; invalid values fall back to defaults."""

    bucket: str | None = None
    prefix: str = DEFAULT_PREFIX
    upload_timeout: float = 30.0
    include_patterns: tuple[str, ...] = ()
    exclude_patterns: tuple[str, ...] = ()
    branch: bool = True
    log_level: str = "INFO"
    enabled: bool = True
    sample_rate: float = 1.0
    flush_invocations: int = 500
    flush_seconds: float = 60.0
    code_version: str | None = None
    source_root: str = "/var/task"
    core: str = "ctrace"
    outbox_dir: str = "/tmp/lambda-coverage"
    outbox_max_files: int = 64
    contexts: str = "off"
    contexts_sample_rate: float = 1.0
    function_name: str = "local"
    function_version: str = "$LATEST"
    problems: tuple[str, ...] = field(default=(), compare=False)


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError("expected a number from 0 to 1")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("expected a whole number of at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError("expected a number above 0")
    return value


def _patterns(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _level(text: str) -> str:
    name = text.strip().upper()
    if name not in log.LEVELS:
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return name


def _code_version(text: str) -> str:
    label = _VERSION_LABEL.sub("-", text.strip()).strip("-.")[:64]
    if not label:
        raise ValueError("no usable characters")
    return label


def _core(text: str) -> str:
    name = text.strip().lower()
    if name not in CORES:
        raise ValueError(f"expected one of {', '.join(CORES)}")
    return name


def _contexts(text: str) -> str:
    from .contexts import MODES

    mode = text.strip().lower()
    if mode not in MODES:
        raise ValueError(f"expected one of {', '.join(MODES)}")
    return mode


def _absolute_dir(text: str) -> str:
    path = text.strip()
    if not os.path.isabs(path):
        raise ValueError("expected an absolute path")
    return os.path.normpath(path)


def _bucket(text: str) -> str:
    name = text.strip()
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name):
        raise ValueError("not a valid S3 bucket name")
    return name


_PARSERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "COVERAGE_S3_BUCKET": ("bucket", _bucket),
    "COVERAGE_S3_PREFIX": ("prefix", normalize_prefix),
    "COVERAGE_UPLOAD_TIMEOUT": ("upload_timeout", _positive_float),
    "COVERAGE_INCLUDE_PATTERNS": ("include_patterns", _patterns),
    "COVERAGE_EXCLUDE_PATTERNS": ("exclude_patterns", _patterns),
    "COVERAGE_BRANCH_COVERAGE": ("branch", _boolean),
    "COVERAGE_LOG_LEVEL": ("log_level", _level),
    "COVERAGE_ENABLED": ("enabled", _boolean),
    "COVERAGE_SAMPLE_RATE": ("sample_rate", _fraction),
    "COVERAGE_FLUSH_INVOCATIONS": ("flush_invocations", _positive_int),
    "COVERAGE_FLUSH_SECONDS": ("flush_seconds", _positive_float),
    "COVERAGE_CODE_VERSION": ("code_version", _code_version),
    "COVERAGE_SOURCE_ROOT": ("source_root", _absolute_dir),
    "COVERAGE_CORE": ("core", _core),
    "COVERAGE_CONTEXTS": ("contexts", _contexts),
    "COVERAGE_CONTEXTS_SAMPLE_RATE": ("contexts_sample_rate", _fraction),
    "COVERAGE_OUTBOX_DIR": ("outbox_dir", _absolute_dir),
    "COVERAGE_OUTBOX_MAX_FILES": ("outbox_max_files", _positive_int),
}


def best_core(requested: str | None, branch: bool, python: tuple[int, int] = sys.version_info[:2]) -> str:
    """The fastest core that measures what is asked.

    sysmon measures lines from 3.12 and branches from 3.14; on 3.12 and 3.13 branches are measured by
    `markers`; before 3.12 only coverage.py's tracers run.
    """
    sysmon_ok = python >= (3, 14) or (python >= (3, 12) and not branch)
    markers_ok = branch and (3, 12) <= python < (3, 14)
    fastest = "sysmon" if sysmon_ok else "markers" if markers_ok else "ctrace"
    if requested == "sysmon":
        return "sysmon" if sysmon_ok else fastest
    if requested == "markers":
        return "markers" if markers_ok else fastest
    return requested or fastest


def parse_config(environ: Mapping[str, str]) -> Config:
    """Build the configuration from an environment mapping; never raises."""
    values: dict[str, object] = {}
    problems: list[str] = []
    for name, (attribute, parse) in _PARSERS.items():
        raw = environ.get(name)
        if raw is None or raw.strip() == "":
            continue
        try:
            values[attribute] = parse(raw)
        except (ValueError, TypeError) as exc:
            problems.append(f"{name}={raw!r} is invalid ({exc}); using the default")
    requested_core = values.get("core")
    branch = bool(values.get("branch", True))
    core = best_core(requested_core, branch)  # type: ignore[arg-type]  # a parsed COVERAGE_CORE is a str
    if requested_core in ("sysmon", "markers") and core != requested_core:
        problems.append(
            f"COVERAGE_CORE={requested_core} cannot measure what is asked on this Python "
            f"(branch coverage {'on' if branch else 'off'}); using {core}"
        )
    if values.get("contexts", "off") != "off" and core == "sysmon":
        # coverage.py's sysmon core records no dynamic contexts
        core = "markers" if best_core("markers", branch) == "markers" else "ctrace"
        problems.append(f"COVERAGE_CONTEXTS needs a core that records contexts; using {core}")
    values["core"] = core
    values["function_name"] = environ.get("AWS_LAMBDA_FUNCTION_NAME") or "local"
    values["function_version"] = environ.get("AWS_LAMBDA_FUNCTION_VERSION") or "$LATEST"
    return Config(problems=tuple(problems), **values)  # type: ignore[arg-type]  # each parser returns its field's type


_config: Config | None = None


def load_config() -> Config:
    """The process's configuration, read from os.environ on first use; problems are logged once."""
    global _config
    if _config is None:
        _config = parse_config(os.environ)
        log.set_level(_config.log_level)
        for problem in _config.problems:
            log.always("WARNING", "Invalid coverage configuration", problem=problem)
    return _config
