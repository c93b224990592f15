"""A raw key uploaded again after it was merged: other content is merged too, the same content once."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from coverage_wrapper import keys

from lambda_coverage.local import LocalAws
from pipeline_corpus import DATE, coverage_combine, measured_content, measured_run


@pytest.fixture(scope="module")
def aws(fake_aws_credentials):
    with LocalAws(window_seconds=2) as emulation:
        yield emulation


def _manifest(aws, function: str) -> dict:
    body = aws.client("s3").get_object(Bucket=aws.bucket, Key=keys.combined_manifest_key(aws.prefix, function, DATE, "v1"))["Body"]
    return json.loads(body.read())


def _combined(aws, function: str, tmp_path) -> dict:
    local = tmp_path / f"{function}-{datetime.now(timezone.utc).timestamp()}.sqlite"
    aws.client("s3").download_file(aws.bucket, keys.combined_data_key(aws.prefix, function, DATE, "v1"), str(local))
    return measured_content(local)


def _key(aws, function: str, seq: int) -> str:
    flushed = datetime.strptime(f"{DATE} 08:00:{seq:02d}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    return keys.raw_key(aws.prefix, function, flushed, "v1", "5eed5eed", seq)


def test_other_content_under_a_merged_key_is_merged_beside_the_first(aws, tmp_path):
    s3 = aws.client("s3")
    first, second, other = (measured_run(tmp_path / f"{n}.coverage", "v1", seed=s) for n, s in (("first", 41), ("second", 42), ("other", 43)))
    reused, kept = _key(aws, "refunds", 1), _key(aws, "refunds", 2)
    s3.upload_file(str(first), aws.bucket, reused)
    s3.upload_file(str(other), aws.bucket, kept)
    aws.wait_until_idle(timeout=90)
    before = _manifest(aws, "refunds")

    s3.upload_file(str(second), aws.bucket, reused)
    aws.wait_until_idle(timeout=90)

    after = _manifest(aws, "refunds")
    new_etag = s3.head_object(Bucket=aws.bucket, Key=reused)["ETag"]
    assert after["raw_keys"] == sorted([reused, kept]) and after["files"] == 2
    assert after["generation"] > before["generation"]
    assert sorted(after["raw_etags"][reused]) == sorted(before["raw_etags"][reused] + [new_etag])
    assert _combined(aws, "refunds", tmp_path) == coverage_combine([first, second, other], tmp_path / "expected")


def test_the_same_content_uploaded_again_changes_nothing(aws, tmp_path):
    s3 = aws.client("s3")
    data = measured_run(tmp_path / "data.coverage", "v1", seed=51)
    key = _key(aws, "credits", 1)
    s3.upload_file(str(data), aws.bucket, key)
    aws.wait_until_idle(timeout=90)
    before = _manifest(aws, "credits")
    data_etag = s3.head_object(Bucket=aws.bucket, Key=keys.combined_data_key(aws.prefix, "credits", DATE, "v1"))["ETag"]

    s3.upload_file(str(data), aws.bucket, key)  # an outbox retry: same bytes, same ETag
    aws.wait_until_idle(timeout=90)

    assert _manifest(aws, "credits")["generation"] == before["generation"]
    assert s3.head_object(Bucket=aws.bucket, Key=keys.combined_data_key(aws.prefix, "credits", DATE, "v1"))["ETag"] == data_etag
    assert before["raw_etags"] == {key: [s3.head_object(Bucket=aws.bucket, Key=key)["ETag"]]}
