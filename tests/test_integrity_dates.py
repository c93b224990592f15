"""A raw key's date must be one a real flush can carry: at most a day ahead, and within the raw retention."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from coverage_wrapper import keys

from pipeline_corpus import measured_run
from lambda_coverage.services.settings import PipelineSettings
from lambda_coverage.services.uploader import intake_object

PREFIX = "coverage/"
TODAY = date(2026, 11, 25)
NOW = datetime(2026, 11, 25, 23, 59, 30, tzinfo=timezone.utc).timestamp()


def _key(day: str, seq: int = 1) -> str:
    return f"{PREFIX}raw/orders/{day}/v1/235900Z-0a1b2c3d-{seq:06d}.coverage"


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    return measured_run(tmp_path_factory.mktemp("dates") / "good.coverage", "v1", seed=11)


@pytest.mark.parametrize(
    "day, accepted",
    [
        ("2999-12-31", False),
        ((TODAY + timedelta(days=2)).isoformat(), False),
        ((TODAY + timedelta(days=1)).isoformat(), True),  # a function's clock a little ahead, or another time zone's midnight
        (TODAY.isoformat(), True),
        ((TODAY - timedelta(days=keys.RAW_RETENTION_DAYS)).isoformat(), True),  # an outbox re-sending after an outage
        ((TODAY - timedelta(days=keys.RAW_RETENTION_DAYS + 1)).isoformat(), False),
        ("1970-01-01", False),
    ],
)
def test_intake_accepts_only_dates_a_real_flush_can_carry(day, accepted, good_file, s3, bucket):
    key = _key(day)
    s3.upload_file(str(good_file), bucket, key)

    result = intake_object(s3, PipelineSettings(bucket=bucket, prefix=PREFIX, window_seconds=60), bucket, key, now=NOW)

    if accepted:
        assert result.status == "valid" and result.window.date == day
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    else:
        assert result.status == "quarantined" and result.quarantine["reason"] == "implausible_date"
        reason = json.loads(s3.get_object(Bucket=bucket, Key=keys.quarantine_reason_key(PREFIX, key))["Body"].read())
        assert day in reason["message"] and reason["reason"] == "implausible_date"
        assert s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount") == 0


def test_the_date_rule_says_which_bound_a_date_breaks():
    ahead = keys.parse_raw_key(_key("2026-11-27"))
    old = keys.parse_raw_key(_key("2026-10-25"))
    assert "more than a day after today (2026-11-25)" in keys.raw_date_problem(ahead, TODAY)
    assert f"older than the {keys.RAW_RETENTION_DAYS} days raw files are kept" in keys.raw_date_problem(old, TODAY)
    assert keys.raw_date_problem(old, TODAY, retention_days=60) is None
