"""Nothing valid is lost under faults injected in the emulation: every valid raw file ends merged exactly once,
and each group's combined data equals what `coverage combine` makes of its raw files."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from coverage_wrapper import keys

from lambda_coverage.local import LocalAws
from lambda_coverage.local.faults import EventFaults, FaultPolicy, LambdaFault, commit_conflicts, throttling
from pipeline_corpus import DATE, coverage_combine, measured_content, measured_run

GROUPS = [("orders", "v1"), ("orders", "v2"), ("billing", "v1")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("faults")
    return {version: [measured_run(directory / f"{version}-{i}.coverage", version, seed=500 + 10 * i + len(version)) for i in range(6)]
            for version in ("v1", "v2")}


def _put(s3, body: bytes, bucket: str, key: str) -> None:
    """An upload as the layer's shipper makes it: a file that throttling refuses past botocore's retries stays in
    the outbox and goes again (the throttling fault answers every ninth S3 request, whoever makes it, so under
    load one upload can draw it several times in a row)."""
    for attempt in range(8):
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            return
        except s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "SlowDown" or attempt == 7:
                raise
            time.sleep(0.2 * (attempt + 1))


def _upload_bursts(aws, runs, bursts: int, pause: float) -> tuple[dict, list[str]]:
    """Uploads spread over several windows; per burst one file per group, plus one corrupt file."""
    s3 = aws.client("s3")
    uploaded: dict[tuple[str, str], list] = {group: [] for group in GROUPS}
    corrupt = []
    start = datetime.strptime(f"{DATE} 09:00:00", "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    for burst in range(bursts):
        for number, (function, version) in enumerate(GROUPS):
            path = runs[version][(burst + number) % len(runs[version])]
            key = keys.raw_key(aws.prefix, function, start + timedelta(seconds=burst * 10 + number), version, "0badc0de", burst)
            _put(s3, path.read_bytes(), aws.bucket, key)
            uploaded[(function, version)].append((key, path))
        bad = keys.raw_key(aws.prefix, "orders", start + timedelta(seconds=burst * 10 + 9), "v1", "deadbeef", burst)
        _put(s3, b"SQLite format 3\x00 truncated", aws.bucket, bad)
        corrupt.append(bad)
        time.sleep(pause)
    return uploaded, corrupt


def _assert_merged_exactly_once(aws, uploaded, corrupt, tmp_path) -> None:
    s3 = aws.client("s3")
    for (function, version), files in uploaded.items():
        prefix = keys.combined_prefix(aws.prefix, function, DATE, version)
        manifest = json.loads(s3.get_object(Bucket=aws.bucket, Key=prefix + "manifest.json")["Body"].read())
        assert manifest["raw_keys"] == sorted(key for key, _ in files), f"{function}/{version}: merged once each, nothing else"
        combined = tmp_path / f"{function}-{version}.sqlite"
        s3.download_file(aws.bucket, prefix + "coverage.sqlite", str(combined))
        expected = coverage_combine([path for _, path in files], tmp_path / f"oracle-{function}-{version}")
        assert measured_content(combined) == expected, f"{function}/{version} differs from coverage combine"
        assert s3.list_objects_v2(Bucket=aws.bucket, Prefix=prefix + "partials/").get("KeyCount") == 0
    for key in corrupt:
        reason = json.loads(s3.get_object(Bucket=aws.bucket, Key=keys.quarantine_reason_key(aws.prefix, key))["Body"].read())
        assert reason["reason"] == "corrupt"


def test_every_valid_file_is_merged_once_through_late_repeated_reordered_events_throttling_conflicts_and_failing_steps(runs, tmp_path):
    window = 2
    faults = FaultPolicy(
        s3=[commit_conflicts(), throttling(every=9)],
        lambdas={
            "merge-batch": LambdaFault(after=True),  # merged, then its answer lost: the retry merges again
            "commit": LambdaFault(after=True),  # committed, then its answer lost: the retry must still report
            "report": LambdaFault(),
            "follow-up": LambdaFault(),
            "dashboard": LambdaFault(),
            "validate": LambdaFault(times=2, delay_seconds=window + 1.5),  # names a window that closes before it answers
        },
        events=EventFaults(duplicate=True, reverse=True, delay_seconds=window * 2 + 1, delay_every=4),
    )
    with LocalAws(window_seconds=window, faults=faults) as aws:
        uploaded, corrupt = _upload_bursts(aws, runs, bursts=4, pause=1.3)

        aws.wait_until_idle(timeout=240)

        _assert_merged_exactly_once(aws, uploaded, corrupt, tmp_path)
        combines = aws.executions(aws.combine_state_machine_arn)
        assert combines and {e["status"] for e in combines} == {"SUCCEEDED"}, "each fault was met by a retry"
    for kind in ("s3:PreconditionFailed", "s3:SlowDown", "lambda:merge-batch:failed after", "lambda:commit:failed after",
                 "lambda:report:failed", "lambda:follow-up:failed", "lambda:validate:delayed"):
        assert faults.injected.get(kind, 0) >= 1, f"{kind} was never injected: {faults.injected}"


def test_a_group_that_keeps_failing_stops_following_up_and_the_timeout_names_it(runs):
    faults = FaultPolicy(lambdas={"commit": LambdaFault(times=10_000)})
    with LocalAws(window_seconds=1, faults=faults) as aws:
        key = keys.raw_key(aws.prefix, "stuck", datetime.now(timezone.utc), "v1", "0badc0de", 1)
        aws.client("s3").upload_file(str(runs["v1"][0]), aws.bucket, key)

        deadline = time.monotonic() + 120
        while not _finished(combines := aws.executions(aws.combine_state_machine_arn), 3) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2 * 1 + 1)  # a fourth would have been started by now
        with pytest.raises(TimeoutError) as timeout:
            aws.wait_until_idle(timeout=0.5)

        message = str(timeout.value)
        assert f"group stuck/{key.split('/')[-3]}/v1: 1 files ['{key}']" in message
        assert "FAILED" in message and "injected: lambda-coverage-commit failed before running" in message
        combines = aws.executions(aws.combine_state_machine_arn)
        assert len(combines) == 3, "the window's combine and two follow-ups; then the daily sweep's turn"
        assert {e["status"] for e in combines} == {"FAILED"}


def _finished(executions: list[dict], count: int) -> bool:
    return len(executions) >= count and all(e["status"] != "RUNNING" for e in executions)
