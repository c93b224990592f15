"""The S3 key scheme and configuration parsing: the two contracts everything else relies on."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from coverage_wrapper import keys
from coverage_wrapper.config import best_core, parse_config


def test_raw_key_round_trips_through_the_parser():
    key = keys.raw_key("coverage/", "orders-fn", datetime(2026, 11, 23, 7, 5, 9, tzinfo=timezone.utc), "abc123def456", "0a1b2c3d", 42)
    assert key == "coverage/raw/orders-fn/2026-11-23/abc123def456/070509Z-0a1b2c3d-000042.coverage"
    parsed = keys.parse_raw_key(key)
    assert (parsed.function, parsed.date, parsed.version, parsed.time, parsed.env, parsed.seq) == (
        "orders-fn", "2026-11-23", "abc123def456", "070509", "0a1b2c3d", 42)
    assert parsed.key == key


@pytest.mark.parametrize("key", [
    "coverage/raw/f/2026-11-23/v/070509Z-0a1b2c3d-000042.json",
    "coverage/raw/f/2026-13-23/v/070509Z-0a1b2c3d-000042.coverage",
    "coverage/raw/f/2026-11-23/v/256060Z-0a1b2c3d-000042.coverage",
    "coverage/raw/../2026-11-23/v/070509Z-0a1b2c3d-000042.coverage",
    "coverage/raw/f/2026-11-23/070509Z-0a1b2c3d-000042.coverage",
    "coverage/raw/f/2026-11-23/v/x/070509Z-0a1b2c3d-000042.coverage",
    "coverage/raw/f<script>/2026-11-23/v/070509Z-0a1b2c3d-000042.coverage",
    "other/raw/f/2026-11-23/v/070509Z-0a1b2c3d-000042.coverage",
])
def test_keys_outside_the_scheme_are_refused(key):
    assert keys.parse_raw_key(key) is None


def test_segments_are_sanitized_and_quarantine_mirrors_the_raw_key():
    assert keys.sanitize_segment("my fn/<x>") == "my-fn-x"
    assert keys.sanitize_segment("..") == "unknown"
    assert keys.quarantine_key("coverage/", "coverage/raw/f/d/v/n.coverage") == "coverage/quarantine/f/d/v/n.coverage"


def test_defaults_when_nothing_is_set():
    config = parse_config({})
    assert (config.bucket, config.prefix, config.upload_timeout, config.branch, config.enabled) == (None, "coverage/", 30.0, True, True)
    assert config.sample_rate == 1.0 and config.source_root == "/var/task" and config.problems == ()


def test_values_are_parsed_and_prefix_normalized():
    config = parse_config({
        "COVERAGE_S3_BUCKET": "my-bucket", "COVERAGE_S3_PREFIX": "/team/cov", "COVERAGE_INCLUDE_PATTERNS": "src/*, lib/*",
        "COVERAGE_BRANCH_COVERAGE": "false", "COVERAGE_SAMPLE_RATE": "0.1", "COVERAGE_CODE_VERSION": "v1.2 (rc)",
    })
    assert config.bucket == "my-bucket" and config.prefix == "team/cov/"
    assert config.include_patterns == ("src/*", "lib/*") and config.branch is False
    assert config.sample_rate == 0.1 and config.code_version == "v1.2-rc"


def test_invalid_values_fall_back_to_defaults_with_a_reason_each():
    config = parse_config({"COVERAGE_S3_BUCKET": "Bad_Bucket!", "COVERAGE_FLUSH_SECONDS": "nan", "COVERAGE_CORE": "turbo"})
    assert config.bucket is None and config.flush_seconds == 60.0
    assert len(config.problems) == 3 and all("using the default" in p for p in config.problems)


@pytest.mark.parametrize("requested, branch, python, expected", [
    (None, False, (3, 12), "sysmon"),
    (None, True, (3, 12), "markers"),
    (None, True, (3, 13), "markers"),
    (None, True, (3, 14), "sysmon"),
    (None, False, (3, 11), "ctrace"),
    (None, True, (3, 11), "ctrace"),
    ("sysmon", True, (3, 13), "markers"),
    ("markers", False, (3, 12), "sysmon"),
    ("markers", True, (3, 14), "sysmon"),
    ("markers", True, (3, 11), "ctrace"),
    ("ctrace", True, (3, 12), "ctrace"),
    ("pytrace", False, (3, 13), "pytrace"),
])
def test_core_is_the_fastest_that_measures_what_is_asked(requested, branch, python, expected):
    assert best_core(requested, branch, python) == expected
