"""A valid raw file is merged within its window plus a bounded delay: the window settles by the combine's own clock,
and a combine that leaves files behind names the combine that takes them."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
from coverage_wrapper import keys

from lambda_coverage.local import LocalAws
from pipeline_corpus import DATE, measured_run
from lambda_coverage.services.combiner import CombineRequest, Group, commit, follow_up, merge_batch, plan
from lambda_coverage.services.combiner.request import MAX_ATTEMPTS, SETTLE_SECONDS, CombineWindow
from lambda_coverage.services.settings import PipelineSettings

PREFIX = "coverage/"
WINDOW = 60
GROUP = Group("orders", DATE, "v1")


@pytest.fixture(scope="module")
def raw_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("window")
    return [measured_run(directory / f"run-{i}.coverage", "v1", seed=300 + i) for i in range(3)]


def _upload(s3, bucket, path, seq: int, prefix: str = PREFIX) -> str:
    flushed = datetime.strptime(f"{DATE} 12:00:{seq:02d}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    key = keys.raw_key(prefix, GROUP.function, flushed, GROUP.version, "00c0ffee", seq)
    s3.upload_file(str(path), bucket, key)
    return key


def _settings(bucket: str) -> PipelineSettings:
    return PipelineSettings(bucket=bucket, prefix=PREFIX, window_seconds=WINDOW)


def test_a_window_combine_lists_nothing_until_its_window_has_settled_by_its_own_clock(raw_files, s3, bucket):
    _upload(s3, bucket, raw_files[0], 0)
    window = CombineWindow(GROUP.function, DATE, GROUP.version, index=29_916_000, seconds=WINDOW)
    end = (window.index + 1) * WINDOW
    request = CombineRequest.parse(window.combine_input())

    early = plan(s3, _settings(bucket), request, now=end - 0.5)  # a Wait state that ended early, as moto's does
    at_the_end = plan(s3, _settings(bucket), request, now=end + 0.2)
    settled = plan(s3, _settings(bucket), request, now=end + SETTLE_SECONDS)

    assert (early["ready"], early["wait_seconds"], early["groups"]) == (False, 2, [])
    assert (at_the_end["ready"], at_the_end["wait_seconds"]) == (False, 1)
    assert settled["ready"] and settled["files"] == 1 and settled["groups"][0]["batches"] == [0]


def test_a_window_no_upload_can_name_is_refused_with_a_clear_cause():
    far = CombineRequest.parse({"mode": "window", "function": "f", "version": "v", "date": DATE, "window_end": "2999-12-31T00:00:00Z"})
    with pytest.raises(ValueError, match="window_end 2999-12-31T00:00:00Z is more than one 60-second window ahead"):
        far.seconds_until_settled(time.time(), WINDOW)


def test_files_still_pending_after_a_combine_name_the_window_open_now(raw_files, s3, bucket):
    settings = _settings(bucket)
    _upload(s3, bucket, raw_files[0], 0)
    planned = plan(s3, settings, CombineRequest.parse({"mode": "window", "function": "orders", "date": DATE, "version": "v1"}))["groups"][0]
    merge_batch(s3, settings, GROUP, planned["token"], 0, False)
    late = _upload(s3, bucket, raw_files[1], 1)  # uploaded after the listing: this combine cannot take it
    commit(s3, settings, GROUP, planned["token"])
    now = 1_795_000_030.0

    result = follow_up(s3, settings, GROUP, now=now)

    expected = CombineWindow("orders", DATE, "v1", int(now // WINDOW), WINDOW)
    assert result["pending"] == 1 and result["sample"] == [late]
    assert result["follow_up"] == {"execution_name": expected.execution_name, "combine_input": expected.combine_input()}
    assert result["follow_up"]["combine_input"]["window_end"] > datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_follow_ups_of_failed_or_idle_combines_count_their_attempts_and_stop(raw_files, s3, bucket):
    settings = _settings(bucket)
    _upload(s3, bucket, raw_files[0], 0)

    chain = [follow_up(s3, settings, GROUP, failed=True, attempt=attempt, now=1_795_000_000.0) for attempt in range(MAX_ATTEMPTS)]

    assert [c["follow_up"]["combine_input"]["attempt"] for c in chain[:-1]] == list(range(1, MAX_ATTEMPTS))
    assert chain[-1].get("given_up") is True and "follow_up" not in chain[-1]
    idle = follow_up(s3, settings, GROUP, progressed=False, attempt=MAX_ATTEMPTS - 1, now=1_795_000_000.0)
    assert idle.get("given_up") is True, "combines that merge nothing new while files stay pending stop too"
    assert "follow_up" not in follow_up(s3, settings, Group("orders", DATE, "nothing-here"))


def _intake_event(bucket: str, key: str) -> str:
    return json.dumps({"version": "0", "source": "aws.s3", "detail-type": "Object Created",
                       "detail": {"bucket": {"name": bucket}, "object": {"key": key}}})


def test_a_file_validated_in_its_windows_last_second_is_merged_by_that_window(raw_files):
    """The probe of the issue: the window's combine used to list when its Wait state ended, which moto cuts to
    whole seconds, so a file validated in the window's last second was named to a combine that had listed already."""
    window_seconds = 4
    with LocalAws(window_seconds=window_seconds) as aws:
        s3 = aws.client("s3")
        sfn = aws.client("stepfunctions")
        # Warm: every handler imported once, so the timing below is the pipeline's, not a cold start's.
        aws.wait_for_execution(aws.start_rebuild("warm-up", DATE), timeout=60)
        aws.wait_for_execution(sfn.start_execution(stateMachineArn=aws.intake_state_machine_arn,
                                                   input=_intake_event(aws.bucket, "elsewhere"))["executionArn"], timeout=60)
        end = (int(time.time() // window_seconds) + 2) * window_seconds
        time.sleep(max(0.0, end - window_seconds + 0.15 - time.time()))  # just after the window opened
        first = _upload(s3, aws.bucket, raw_files[0], 0, aws.prefix)
        window = CombineWindow(GROUP.function, DATE, GROUP.version, end // window_seconds - 1, window_seconds)
        sfn.start_execution(stateMachineArn=aws.combine_state_machine_arn, name=window.execution_name,
                            input=json.dumps(window.combine_input()))
        time.sleep(max(0.0, end - 0.6 - time.time()))
        last = _upload(s3, aws.bucket, raw_files[1], 1, aws.prefix)
        intake = sfn.start_execution(stateMachineArn=aws.intake_state_machine_arn, input=_intake_event(aws.bucket, last))
        decision = aws.wait_for_execution(intake["executionArn"], timeout=60)

        aws.wait_until_idle(timeout=60)

        assert decision["status"] == "SUCCEEDED"
        manifest = json.loads(s3.get_object(Bucket=aws.bucket, Key=GROUP.manifest_key(aws.prefix))["Body"].read())
        assert manifest["raw_keys"] == sorted([first, last])
        [combine] = [e for e in aws.executions(aws.combine_state_machine_arn) if e["name"] == window.execution_name]
        described = aws.client("stepfunctions").describe_execution(executionArn=combine["executionArn"])
        assert described["status"] == "SUCCEEDED"
        assert json.loads(described["output"])["files"] == 2, "the window's own combine took the file of its last second"
