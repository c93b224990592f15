"""Scale of one combine execution, counted in the emulation: batches run as Distributed Map child executions, so a
group's history and payload do not grow with its files; a daily sweep grows by a fixed number of events per group.
BENCHMARKS.md ("8. Scale") turns these counts into the limits of one execution."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from coverage_wrapper import keys

from lambda_coverage.local import LocalAws
from pipeline_corpus import measured_run

TODAY = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return measured_run(tmp_path_factory.mktemp("scale") / "run.coverage", "v1", seed=900)


def _history(sfn, arn: str) -> list[dict]:
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def _largest_state(events: list[dict]) -> int:
    """The largest state input or output of the execution, in bytes (Step Functions' limit: 256 KiB)."""
    sizes = [len(details[field].encode()) for event in events for details in event.values() if isinstance(details, dict)
             for field in ("input", "output") if isinstance(details.get(field), str)]
    return max(sizes)


def _upload(aws, run, function: str, date: datetime, count: int) -> None:
    for seq in range(count):
        key = keys.raw_key(aws.prefix, function, date.replace(hour=12, minute=0, second=seq), "v1", "5ca1e000", seq)
        aws.client("s3").upload_file(str(run), aws.bucket, key)


def test_a_rebuilds_history_does_not_grow_with_its_batches_and_a_sweeps_grows_by_a_fixed_count_per_group(run, monkeypatch):
    with LocalAws(window_seconds=1) as aws:
        sfn = aws.client("stepfunctions")
        monkeypatch.setenv("COMBINE_BATCH_SIZE", "1")  # one batch per raw file: the worst case
        day = TODAY - timedelta(days=1)
        for files in (1, 6):
            _upload(aws, run, f"rebuild-{files}", day, files)
        sweep_days = {groups: TODAY - timedelta(days=2 + groups) for groups in (1, 3)}
        for groups, date in sweep_days.items():
            for group in range(groups):
                _upload(aws, run, f"sweep-{group}", date, 2)
        aws.wait_until_idle(timeout=120)

        rebuilds = {}
        for files in (1, 6):
            arn = aws.start_rebuild(f"rebuild-{files}", day.strftime("%Y-%m-%d"), "v1")
            execution = aws.wait_for_execution(arn, timeout=120)
            assert execution["status"] == "SUCCEEDED", execution.get("cause")
            assert json.loads(execution["output"])["files"] == files
            rebuilds[files] = _history(sfn, arn)
        sweeps = {}
        for groups, date in sweep_days.items():
            # One file per group still pending, as a day's last flushes leave it for the sweep.
            for group in range(groups):
                key = keys.raw_key(aws.prefix, f"sweep-{group}", date.replace(hour=23, minute=59, second=59), "v1", "5ca1e000", 999)
                aws.client("s3").upload_file(str(run), aws.bucket, key)
            arn = aws.start_daily(date.strftime("%Y-%m-%d"))
            execution = aws.wait_for_execution(arn, timeout=120)
            assert execution["status"] == "SUCCEEDED", execution.get("cause")
            assert len(json.loads(execution["output"])["groups"]) == groups
            sweeps[groups] = _history(sfn, arn)
            aws.wait_until_idle(timeout=120)

    assert len(rebuilds[6]) == len(rebuilds[1]), "six batches cost the parent execution what one does"
    assert _largest_state(rebuilds[6]) - _largest_state(rebuilds[1]) <= 5 * 4, "a batch adds its number to the payload, no more"
    per_group = (len(sweeps[3]) - len(sweeps[1])) / 2
    fixed = len(sweeps[1]) - per_group
    # BENCHMARKS.md's limits assume these counts (29 events per group, 28 per execution when measured).
    assert per_group <= 30 and fixed <= 30, f"{per_group} events per group, {fixed} per execution"
