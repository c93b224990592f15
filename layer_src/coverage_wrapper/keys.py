"""The S3 key scheme: every key the layer and the pipeline read or write is built or parsed here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

DEFAULT_PREFIX = "coverage/"
# Days a raw file stays under raw/ before the bucket's lifecycle deletes it (infrastructure/cdk/storage.py).
RAW_RETENTION_DAYS = 30

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RAW_NAME = re.compile(r"^(?P<time>\d{6})Z-(?P<env>[0-9a-f]{8})-(?P<seq>\d{6})\.coverage$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def sanitize_segment(value: str, max_length: int = 64) -> str:
    """Make a value safe as one key segment: [A-Za-z0-9._-], never empty, never '.' or '..'."""
    cleaned = _UNSAFE.sub("-", value.strip()).strip("-.")[:max_length]
    return cleaned or "unknown"


def normalize_prefix(prefix: str) -> str:
    prefix = prefix.strip().lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return prefix


@dataclass(frozen=True)
class RawKey:
    """The parts of a raw upload's key: `{p}raw/{function}/{date}/{version}/{HHMMSS}Z-{env}-{seq}.coverage`."""

    prefix: str
    function: str
    date: str
    version: str
    time: str
    env: str
    seq: int

    @property
    def key(self) -> str:
        return (
            f"{self.prefix}raw/{self.function}/{self.date}/{self.version}/"
            f"{self.time}Z-{self.env}-{self.seq:06d}.coverage"
        )

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.function, self.date, self.version)


def raw_key(prefix: str, function: str, flushed_at: datetime, version: str, env: str, seq: int) -> str:
    """The key of one raw file flushed at `flushed_at` (UTC)."""
    return RawKey(
        prefix=normalize_prefix(prefix),
        function=sanitize_segment(function),
        date=flushed_at.strftime("%Y-%m-%d"),
        version=sanitize_segment(version),
        time=flushed_at.strftime("%H%M%S"),
        env=env,
        seq=seq,
    ).key


def parse_raw_key(key: str, prefix: str = DEFAULT_PREFIX) -> RawKey | None:
    """Parse a raw key; None when it does not follow the scheme exactly."""
    prefix = normalize_prefix(prefix)
    if not key.startswith(prefix + "raw/"):
        return None
    parts = key[len(prefix) + 4 :].split("/")
    if len(parts) != 4:
        return None
    function, date, version, name = parts
    match = _RAW_NAME.match(name)
    if not (match and _DATE.match(date) and _SEGMENT.match(function) and _SEGMENT.match(version)):
        return None
    if function in (".", "..") or version in (".", ".."):
        return None
    try:
        datetime.strptime(date + match["time"], "%Y-%m-%d%H%M%S")
    except ValueError:
        return None
    return RawKey(prefix, function, date, version, match["time"], match["env"], int(match["seq"]))


def raw_date_problem(raw: RawKey, today: date, retention_days: int = RAW_RETENTION_DAYS) -> str | None:
    """Why a raw key's date cannot be a real flush seen `today` (UTC); None when it can.

    A flush is dated by the function's clock: a day ahead covers any clock skew and time zone edge.
    Outboxes re-send after outages, so any older date is real while raw data is still kept.
    """
    flushed = datetime.strptime(raw.date, "%Y-%m-%d").date()
    if flushed > today + timedelta(days=1):
        return f"the key is dated {raw.date}, more than a day after today ({today.isoformat()})"
    if flushed < today - timedelta(days=retention_days):
        return f"the key is dated {raw.date}, older than the {retention_days} days raw files are kept"
    return None


def raw_group_prefix(prefix: str, function: str, date: str, version: str | None = None) -> str:
    base = f"{normalize_prefix(prefix)}raw/{function}/{date}/"
    return base + f"{version}/" if version else base


def sources_manifest_key(prefix: str, function: str, version: str) -> str:
    return f"{normalize_prefix(prefix)}sources/{function}/{version}/manifest.json"


def source_blob_key(prefix: str, sha256: str) -> str:
    return f"{normalize_prefix(prefix)}sources/blobs/{sha256}"


def combined_prefix(prefix: str, function: str, date: str, version: str) -> str:
    return f"{normalize_prefix(prefix)}combined/{function}/{date}/{version}/"


def versions_prefix(prefix: str, function: str, version: str) -> str:
    """Since-deploy data of one code version: the union of its day groups, kept after raw files expire."""
    return f"{normalize_prefix(prefix)}versions/{function}/{version}/"


def daily_prefix(prefix: str, date: str) -> str:
    return f"{normalize_prefix(prefix)}daily/{date}/"


def reports_prefix(prefix: str) -> str:
    return f"{normalize_prefix(prefix)}reports/"


def quarantine_key(prefix: str, original_key: str) -> str:
    """Where a rejected object goes: its key with `raw/` (or the prefix) replaced by `quarantine/`."""
    prefix = normalize_prefix(prefix)
    rest = original_key[len(prefix) :] if original_key.startswith(prefix) else original_key
    if rest.startswith("raw/"):
        rest = rest[4:]
    return f"{prefix}quarantine/{rest}"


def is_segment(value: str) -> bool:
    """True when `value` can be a function or version segment of a key exactly as given."""
    return bool(_SEGMENT.match(value)) and value not in (".", "..")


def is_date(value: str) -> bool:
    """True for a real calendar date written YYYY-MM-DD."""
    if not _DATE.match(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def raw_root(prefix: str) -> str:
    """Where every raw upload lives; the EventBridge rule matches keys under it."""
    return f"{normalize_prefix(prefix)}raw/"


def combined_data_key(prefix: str, function: str, date: str, version: str) -> str:
    return combined_prefix(prefix, function, date, version) + "coverage.sqlite"


def combined_manifest_key(prefix: str, function: str, date: str, version: str) -> str:
    return combined_prefix(prefix, function, date, version) + "manifest.json"


def partial_key(prefix: str, function: str, date: str, version: str, name: str) -> str:
    """A batch's intermediate merge, deleted once committed into the combined data."""
    return combined_prefix(prefix, function, date, version) + f"partials/{sanitize_segment(name, 128)}.sqlite"


def quarantine_reason_key(prefix: str, original_key: str) -> str:
    """The `.reason.json` written beside a quarantined object."""
    return quarantine_key(prefix, original_key) + ".reason.json"
