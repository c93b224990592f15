"""The combine workflow's input: what intake, follow-ups and anyone at the console may send, parsed and checked once.

A window combine is named after its group and window so that a burst of uploads starts one execution;
intake, and a combine that leaves files behind, both name windows here.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from coverage_wrapper import keys

MODES = ("window", "rebuild", "daily", "since-deploy")
FIELDS = ("mode", "function", "date", "version", "window_end", "attempt")
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# A window's combine lists the group's files only when its own clock is this far past the window's
# end: a file validated just before the end, by a Lambda whose clock runs this much behind, is still listed.
SETTLE_SECONDS = 1
# Follow-ups after failed combines stop after this many in a row (the daily sweep and the alarm take over).
MAX_ATTEMPTS = 3
_EXECUTION_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class InvalidCombineInput(ValueError):
    """The workflow input cannot be understood; the execution fails with this message."""


@dataclass(frozen=True)
class CombineWindow:
    """The combine that takes a group's files of one time window: named from (function, date, version, window)."""

    function: str
    date: str
    version: str
    index: int
    seconds: int

    @property
    def ends_at(self) -> str:
        end = datetime.fromtimestamp((self.index + 1) * self.seconds, tz=timezone.utc)
        return end.strftime(TIMESTAMP_FORMAT)

    @property
    def execution_name(self) -> str:
        """Deterministic per (function, date, version, window): a burst of uploads names one execution.

        Readable parts are cut to fit the 80-character limit, so a digest of the full values keeps
        two long function names that share a beginning apart.
        """
        identity = "\0".join((self.function, self.date, self.version, str(self.index)))
        digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
        readable = f"{self.function[:24]}-{self.date}-{self.version[:12]}-w{self.index}"
        return f"{_EXECUTION_NAME_UNSAFE.sub('_', readable)}-{digest}"[:80]

    def combine_input(self, attempt: int = 0) -> dict[str, Any]:
        # Every upload of the window must produce this exact input: Step Functions treats a repeated
        # name with identical input as the same execution.
        request: dict[str, Any] = {
            "mode": "window",
            "function": self.function,
            "date": self.date,
            "version": self.version,
            "window_end": self.ends_at,
        }
        if attempt:
            request["attempt"] = attempt
        return request


def window_at(function: str, date: str, version: str, now: float, window_seconds: int) -> CombineWindow:
    """The window open at `now`: its combine lists the group's files after `now`, so it takes every file that exists now."""
    return CombineWindow(function, date, version, int(now // window_seconds), window_seconds)


def window_for(raw: keys.RawKey, now: float, window_seconds: int) -> CombineWindow:
    """The window of the validation time, not of the upload: the object exists before `now`, and that
    window's combine lists the group's files only after the window ends (see SETTLE_SECONDS), so it
    sees this file even when its execution was started by an earlier upload."""
    return window_at(raw.function, raw.date, raw.version, now, window_seconds)


@dataclass(frozen=True)
class CombineRequest:
    """One combine: a window of a group (from intake or a follow-up), a rebuild of a function's day, a daily sweep,
    or a rebuild of a code version's since-deploy data from its day groups (`date` is then the day it was asked)."""

    mode: str
    date: str
    function: str | None = None
    version: str | None = None
    window_end: str | None = None
    attempt: int = 0

    @property
    def rebuild(self) -> bool:
        return self.mode == "rebuild"

    def seconds_until_settled(self, now: float, window_seconds: int) -> int:
        """How long a window combine must still wait before listing (0: list now). Raises for a window no intake names."""
        if self.window_end is None:
            return 0
        end = datetime.strptime(self.window_end, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc).timestamp()
        if end > now + window_seconds + SETTLE_SECONDS + 60:
            raise InvalidCombineInput(
                f"window_end {self.window_end} is more than one {window_seconds}-second window ahead of now: no upload names it"
            )
        return max(0, math.ceil(end + SETTLE_SECONDS - now))

    @classmethod
    def parse(cls, payload: Any, today: datetime | None = None) -> CombineRequest:
        if not isinstance(payload, Mapping):
            raise InvalidCombineInput(f"the input must be a JSON object like {{\"mode\": \"rebuild\", ...}}, not {_kind(payload)}")
        mode = payload.get("mode", "window" if "version" in payload else None)
        if mode not in MODES:
            raise InvalidCombineInput(f"mode must be one of {', '.join(MODES)}; got {_show(mode)}")
        unknown = sorted(str(name)[:40] for name in set(payload) - set(FIELDS))
        if unknown:
            raise InvalidCombineInput(f"unknown fields: {', '.join(unknown[:10])}; the fields are {', '.join(FIELDS)}")
        if mode == "daily":
            if payload.get("function") or payload.get("version"):
                raise InvalidCombineInput("daily mode sweeps every function: give only a date")
            yesterday = ((today or datetime.now(timezone.utc)) - timedelta(days=1)).strftime("%Y-%m-%d")
            return cls("daily", _date(payload.get("date") or yesterday))
        function = _segment(payload, "function", required=True)
        version = _segment(payload, "version", required=mode in ("window", "since-deploy"))
        if mode == "since-deploy":
            if payload.get("date") is not None or payload.get("window_end") is not None:
                raise InvalidCombineInput("since-deploy mode covers every day of the version: give only function and version")
            return cls(mode, (today or datetime.now(timezone.utc)).strftime("%Y-%m-%d"), function, version)
        window_end = _window_end(payload.get("window_end")) if mode == "window" else None
        return cls(mode, _date(payload.get("date")), function, version, window_end, _attempt(payload.get("attempt", 0)))


def _kind(value: Any) -> str:
    return {list: "an array", type(None): "null", bool: "a boolean", str: "a string"}.get(type(value), "a number")


def _show(value: Any) -> str:
    """A value as the error message quotes it: short, whatever was sent (a 200,000-character string, a nested object)."""
    if isinstance(value, str):
        return repr(value[:60]) + (f" (…{len(value)} characters)" if len(value) > 60 else "")
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "an array"
    return repr(value)[:60]


def _date(value: Any) -> str:
    if not isinstance(value, str) or not keys.is_date(value):
        raise InvalidCombineInput(f"date must be a calendar date YYYY-MM-DD; got {_show(value)}")
    return value


def _window_end(value: Any) -> str | None:
    if value is None:
        return None
    try:
        parsed = datetime.strptime(value, TIMESTAMP_FORMAT) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.year < 2000:
        raise InvalidCombineInput(f"window_end must be a UTC time like 2026-11-23T10:15:00Z; got {_show(value)}")
    return value


def _attempt(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ATTEMPTS:
        raise InvalidCombineInput(f"attempt must be an integer from 0 to {MAX_ATTEMPTS}; got {_show(value)}")
    return value


def _segment(payload: Mapping[str, Any], name: str, required: bool) -> str | None:
    value = payload.get(name)
    if value is None or value == "":
        if required:
            raise InvalidCombineInput(f"{name} is required")
        return None
    if not isinstance(value, str) or not keys.is_segment(value):
        raise InvalidCombineInput(f"{name} must be 1-128 characters of A-Z a-z 0-9 . _ -; got {_show(value)}")
    return value
