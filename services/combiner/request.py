"""The combine workflow's input: what anyone may type in the console, parsed and checked once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from coverage_wrapper import keys

MODES = ("window", "rebuild", "daily")


class InvalidCombineInput(ValueError):
    """The workflow input cannot be understood; the execution fails with this message."""


@dataclass(frozen=True)
class CombineRequest:
    """One combine: a window of a group (from intake), a rebuild of a function's day, or a daily sweep."""

    mode: str
    date: str
    function: str | None = None
    version: str | None = None

    @property
    def rebuild(self) -> bool:
        return self.mode == "rebuild"

    @classmethod
    def parse(cls, payload: Any, today: datetime | None = None) -> "CombineRequest":
        if not isinstance(payload, Mapping):
            raise InvalidCombineInput(f"the input must be a JSON object, not {type(payload).__name__}")
        mode = payload.get("mode", "window" if "version" in payload else None)
        if mode not in MODES:
            raise InvalidCombineInput(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        unknown = sorted(set(payload) - {"mode", "function", "date", "version", "window_end"})
        if unknown:
            raise InvalidCombineInput(f"unknown fields: {', '.join(unknown)}")
        if mode == "daily":
            if payload.get("function") or payload.get("version"):
                raise InvalidCombineInput("daily mode sweeps every function: give only a date")
            yesterday = ((today or datetime.now(timezone.utc)) - timedelta(days=1)).strftime("%Y-%m-%d")
            return cls("daily", _date(payload.get("date") or yesterday))
        function = _segment(payload, "function", required=True)
        version = _segment(payload, "version", required=mode == "window")
        return cls(mode, _date(payload.get("date")), function, version)


def _date(value: Any) -> str:
    if not isinstance(value, str) or not keys.is_date(value):
        raise InvalidCombineInput(f"date must be a calendar date YYYY-MM-DD; got {value!r}")
    return value


def _segment(payload: Mapping[str, Any], name: str, required: bool) -> str | None:
    value = payload.get(name)
    if value is None or value == "":
        if required:
            raise InvalidCombineInput(f"{name} is required")
        return None
    if not isinstance(value, str) or not keys.is_segment(value):
        raise InvalidCombineInput(f"{name} must be 1-128 characters of A-Z a-z 0-9 . _ -; got {value!r}")
    return value
