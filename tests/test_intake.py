"""Intake against moto S3: valid uploads name one combine per window, every kind of bad upload lands in quarantine."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from coverage_wrapper import keys

from pipeline_corpus import DATE, corrupt, measured_run
from lambda_coverage.services.settings import PipelineSettings
from lambda_coverage.services.uploader import intake_object

PREFIX = "coverage/"
GOOD_KEY = f"{PREFIX}raw/orders/{DATE}/v1/101500Z-0a1b2c3d-000001.coverage"
METADATA = {"function": "orders", "code-version": "v1", "invocations": "3"}
# Noon of the day after the keys' date: a window boundary (a multiple of 60 s) the tests count from.
NOON = int(datetime.strptime(DATE, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()) + 36 * 3600


@pytest.fixture(scope="module")
def good_file(tmp_path_factory) -> Path:
    return measured_run(tmp_path_factory.mktemp("intake") / "good.coverage", "v1", seed=7)


def _settings(bucket: str, **overrides) -> PipelineSettings:
    return PipelineSettings(bucket=bucket, prefix=PREFIX, window_seconds=60, **overrides)


def _variant(good_file: Path, tmp_path: Path, sql: str) -> bytes:
    copy = tmp_path / "variant.coverage"
    shutil.copyfile(good_file, copy)
    return corrupt(copy, sql).read_bytes()


def _path_variant(good_file: Path, tmp_path: Path, path: str) -> bytes:
    copy = tmp_path / "variant.coverage"
    shutil.copyfile(good_file, copy)
    connection = sqlite3.connect(copy)
    with connection:
        connection.execute("update file set path = ? where id = (select min(id) from file)", (path,))
    connection.close()
    return copy.read_bytes()


BAD_INPUTS = {
    "empty": (lambda good, tmp: b"", "empty"),
    "noise": (lambda good, tmp: b"\x00\xffnot a database at all" * 50, "not_sqlite"),
    "truncated": (lambda good, tmp: good.read_bytes()[:3000], "corrupt"),
    "wrong_schema": (lambda good, tmp: _variant(good, tmp, "update coverage_schema set version = 6;"), "wrong_schema"),
    "missing_table": (lambda good, tmp: _variant(good, tmp, "drop table tracer;"), "wrong_schema"),
    "trigger": (
        lambda good, tmp: _variant(good, tmp, "create trigger boom after insert on file begin delete from arc; end;"),
        "hostile_schema",
    ),
    "view": (lambda good, tmp: _variant(good, tmp, "create view v as select * from file;"), "hostile_schema"),
    "extra_table": (lambda good, tmp: _variant(good, tmp, "create table loot (x);"), "unexpected_schema"),
    "huge_line_numbers": (
        lambda good, tmp: _variant(good, tmp, "insert into arc (file_id, context_id, fromno, tono) select min(id), 1, 1, 99999999 from file;"),
        "absurd_line_numbers",
    ),
    "parent_path": (lambda good, tmp: _path_variant(good, tmp, "../../etc/passwd.py"), "path_traversal"),
    "absolute_path": (lambda good, tmp: _path_variant(good, tmp, "/var/task/shop/cart.py"), "absolute_path"),
    "html_path": (lambda good, tmp: _path_variant(good, tmp, "shop/<script>alert(1)</script>.py"), "unsafe_path"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_upload_is_moved_to_quarantine_with_its_reason(name, good_file, tmp_path, s3, bucket):
    make, expected_code = BAD_INPUTS[name]
    s3.put_object(Bucket=bucket, Key=GOOD_KEY, Body=make(good_file, tmp_path), Metadata=METADATA)

    result = intake_object(s3, _settings(bucket), bucket, GOOD_KEY)

    assert result.status == "quarantined"
    assert result.quarantine["reason"] == expected_code
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert GOOD_KEY not in listed
    assert keys.quarantine_key(PREFIX, GOOD_KEY) in listed
    reason = json.loads(s3.get_object(Bucket=bucket, Key=keys.quarantine_reason_key(PREFIX, GOOD_KEY))["Body"].read())
    assert reason["reason"] == expected_code
    assert reason["original_key"] == GOOD_KEY
    assert reason["metadata"] == METADATA
    assert reason["message"]


def test_oversize_upload_is_quarantined_without_being_read(good_file, s3, bucket):
    s3.put_object(Bucket=bucket, Key=GOOD_KEY, Body=good_file.read_bytes(), Metadata=METADATA)

    result = intake_object(s3, _settings(bucket, max_file_bytes=1024), bucket, GOOD_KEY)

    assert result.quarantine["reason"] == "oversize"
    reason_key = keys.quarantine_reason_key(PREFIX, GOOD_KEY)
    assert json.loads(s3.get_object(Bucket=bucket, Key=reason_key)["Body"].read())["reason"] == "oversize"


@pytest.mark.parametrize(
    "key",
    [
        f"{PREFIX}raw/orders/{DATE}/v1/whatever.coverage",
        f"{PREFIX}raw/orders/{DATE}/101500Z-0a1b2c3d-000001.coverage",
        f"{PREFIX}raw/orders/2026-13-45/v1/101500Z-0a1b2c3d-000001.coverage",
    ],
)
def test_upload_with_a_key_outside_the_scheme_is_quarantined(key, good_file, s3, bucket):
    s3.put_object(Bucket=bucket, Key=key, Body=good_file.read_bytes())

    result = intake_object(s3, _settings(bucket), bucket, key)

    assert result.status == "quarantined" and result.quarantine["reason"] == "off_scheme_key"
    assert s3.get_object(Bucket=bucket, Key=keys.quarantine_reason_key(PREFIX, key))["ContentLength"] > 0


def test_valid_upload_stays_and_names_its_combine_window(good_file, s3, bucket):
    s3.put_object(Bucket=bucket, Key=GOOD_KEY, Body=good_file.read_bytes(), Metadata=METADATA)

    result = intake_object(s3, _settings(bucket), bucket, GOOD_KEY, now=NOON - 20).as_dict()

    assert result["status"] == "valid"
    assert s3.head_object(Bucket=bucket, Key=GOOD_KEY)["ContentLength"] == good_file.stat().st_size
    assert result["combine_input"] == {
        "mode": "window",
        "function": "orders",
        "date": DATE,
        "version": "v1",
        "window_end": datetime.fromtimestamp(NOON, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_a_burst_in_one_window_names_one_execution_and_versions_name_their_own(good_file, s3, bucket):
    body = good_file.read_bytes()
    same_window = []
    for seq, second in enumerate((NOON + 1, NOON + 10, NOON + 19)):
        key = f"{PREFIX}raw/orders/{DATE}/v1/101500Z-0a1b2c3d-{seq:06d}.coverage"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        same_window.append(intake_object(s3, _settings(bucket), bucket, key, now=second).as_dict())
    other_version_key = f"{PREFIX}raw/orders/{DATE}/v2/101500Z-0a1b2c3d-000009.coverage"
    s3.put_object(Bucket=bucket, Key=other_version_key, Body=body)
    other_version = intake_object(s3, _settings(bucket), bucket, other_version_key, now=NOON + 10).as_dict()
    next_window = intake_object(s3, _settings(bucket), bucket, same_window[0]["key"], now=NOON + 61).as_dict()

    assert len({(r["execution_name"], json.dumps(r["combine_input"])) for r in same_window}) == 1
    assert other_version["execution_name"] != same_window[0]["execution_name"]
    assert next_window["execution_name"] != same_window[0]["execution_name"]
    assert all(len(r["execution_name"]) <= 80 for r in same_window + [other_version])


def test_objects_outside_raw_or_the_bucket_are_left_alone(good_file, s3, bucket):
    key = f"{PREFIX}combined/orders/{DATE}/v1/coverage.sqlite"
    s3.put_object(Bucket=bucket, Key=key, Body=good_file.read_bytes())

    assert intake_object(s3, _settings(bucket), bucket, key).status == "ignored"
    assert intake_object(s3, _settings(bucket), "another-bucket", GOOD_KEY).status == "ignored"
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0


def test_an_upload_already_gone_is_reported_missing(s3, bucket):
    assert intake_object(s3, _settings(bucket), bucket, GOOD_KEY).status == "missing"
