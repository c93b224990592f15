"""One-JSON-object-per-line logging for the layer, in the seed's format."""

from __future__ import annotations

import json
import sys
import time

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}

_threshold = LEVELS["INFO"]


def set_level(name: str) -> None:
    global _threshold
    _threshold = LEVELS.get(name.upper(), LEVELS["INFO"])


def log(level: str, message: str, **fields: object) -> None:
    """Write one JSON line to stdout (CloudWatch Logs on Lambda) at or above COVERAGE_LOG_LEVEL; never raises."""
    if LEVELS.get(level, 20) >= _threshold:
        always(level, message, **fields)


def always(level: str, message: str, **fields: object) -> None:
    """Write one JSON line whatever COVERAGE_LOG_LEVEL says: for what that setting must never hide, such as
    an invalid setting (the level itself may be the one that is wrong)."""
    record: dict[str, object] = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "level": level,
        "message": message,
        "logger": "coverage_wrapper",
    }
    record.update(fields)
    try:
        sys.stdout.write(json.dumps(record, default=str) + "\n")
        sys.stdout.flush()
    except Exception:  # a closed or broken stdout must not reach user code
        pass


def debug(message: str, **fields: object) -> None:
    log("DEBUG", message, **fields)


def info(message: str, **fields: object) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields: object) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields: object) -> None:
    log("ERROR", message, **fields)
