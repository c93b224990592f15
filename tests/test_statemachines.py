"""Real state machine executions through the embedded emulation: intake → combine → reports, rebuild, daily, bad input."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from coverage_wrapper import keys

from lambda_coverage import pipeline
from lambda_coverage.local import LocalAws
from pipeline_corpus import DATE, measured_run

OTHER_DATE = (datetime.strptime(DATE, "%Y-%m-%d") - timedelta(days=1)).strftime("%Y-%m-%d")


@pytest.fixture(scope="module")
def aws(fake_aws_credentials):
    with LocalAws(window_seconds=2) as emulation:
        yield emulation


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sfn")
    return {v: [measured_run(directory / f"{v}-{i}.coverage", v, seed=100 + i) for i in range(4)] for v in ("v1", "v2")}


def _upload_group(aws, measured, function: str, date: str) -> list[str]:
    s3 = aws.client("s3")
    uploaded = []
    for version, paths in measured.items():
        for seq, path in enumerate(paths):
            flushed = datetime.strptime(f"{date} 12:00:{seq:02d}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
            key = keys.raw_key(aws.prefix, function, flushed, version, "00c0ffee", seq)
            s3.upload_file(str(path), aws.bucket, key, ExtraArgs={"Metadata": {"function": function, "code-version": version}})
            uploaded.append(key)
    return uploaded


def _manifest_keys(aws, function: str, date: str, version: str) -> list[str]:
    body = aws.client("s3").get_object(Bucket=aws.bucket, Key=keys.combined_manifest_key(aws.prefix, function, date, version))["Body"]
    return json.loads(body.read())["raw_keys"]


def _exists(aws, key: str) -> bool:
    return aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=key).get("KeyCount", 0) > 0


def test_uploads_run_intake_then_one_combine_per_window_then_reports(aws, measured):
    uploaded = _upload_group(aws, measured, "orders", DATE)
    bad_key = f"{aws.prefix}raw/orders/{DATE}/v1/120059Z-00c0ffee-000099.coverage"
    aws.client("s3").put_object(Bucket=aws.bucket, Key=bad_key, Body=b"SQLite format 3\x00 but not really")

    aws.wait_until_idle(timeout=60)

    intake = aws.executions(aws.intake_state_machine_arn)
    combines = [e for e in aws.executions(aws.combine_state_machine_arn) if e["name"].startswith("orders-")]
    assert len(intake) >= len(uploaded) + 1 and {e["status"] for e in intake} == {"SUCCEEDED"}
    assert 2 <= len(combines) < len(uploaded) and {e["status"] for e in combines} == {"SUCCEEDED"}
    for version in ("v1", "v2"):
        assert _manifest_keys(aws, "orders", DATE, version) == sorted(k for k in uploaded if f"/{version}/" in k)
        assert _exists(aws, keys.combined_prefix(aws.prefix, "orders", DATE, version) + "summary.json")
    reason = aws.client("s3").get_object(Bucket=aws.bucket, Key=keys.quarantine_reason_key(aws.prefix, bad_key))["Body"]
    assert json.loads(reason.read())["reason"] == "corrupt"
    assert _exists(aws, keys.reports_prefix(aws.prefix) + "index.html")


def test_rebuild_input_rebuilds_every_version_of_the_day(aws, measured):
    uploaded = _upload_group(aws, measured, "inventory", DATE)
    aws.wait_until_idle(timeout=60)

    execution = aws.wait_for_execution(aws.start_rebuild("inventory", DATE), timeout=60)

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    assert output["mode"] == "rebuild"
    assert sorted(g["version"] for g in output["groups"]) == ["v1", "v2"]
    assert sorted(_manifest_keys(aws, "inventory", DATE, "v1") + _manifest_keys(aws, "inventory", DATE, "v2")) == sorted(uploaded)


def test_daily_input_sweeps_every_group_of_the_date(aws, measured):
    uploaded = _upload_group(aws, measured, "billing", OTHER_DATE)

    # Started at once, the sweep races the window combines of the same uploads; neither loses files.
    execution = aws.wait_for_execution(aws.start_daily(OTHER_DATE), timeout=60)
    aws.wait_until_idle(timeout=60)

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert json.loads(execution["output"])["mode"] == "daily"
    assert sorted(_manifest_keys(aws, "billing", OTHER_DATE, "v1") + _manifest_keys(aws, "billing", OTHER_DATE, "v2")) == sorted(uploaded)
    assert _exists(aws, keys.daily_prefix(aws.prefix, OTHER_DATE))


@pytest.mark.parametrize(
    "console_input, message",
    [
        ({"mode": "weekly", "date": DATE}, "mode must be one of"),
        ({"mode": "rebuild", "function": "orders"}, "date must be a calendar date"),
        ({"mode": "window", "function": "orders", "date": DATE, "version": "../x"}, "version must be"),
        ([{"mode": "rebuild", "function": "orders", "date": DATE}], "the input must be a JSON object"),
        (None, "the input must be a JSON object like {\"mode\": \"rebuild\", ...}, not null"),
        (42, "not a number"),
        ({"mode": "rebuild", "function": "f" * 200_000, "date": DATE}, "function must be 1-128 characters"),
        ({"mode": "rebuild", "function": json.loads('{"a": ' * 200 + "1" + "}" * 200), "date": DATE}, "function must be"),
        ({"mode": "window", "function": "orders", "version": "v1", "date": DATE, "window_end": "2999-12-31T00:00:00Z"},
         "window_end 2999-12-31T00:00:00Z is more than one 2-second window ahead"),
        ({"mode": "window", "function": "orders", "version": "v1", "date": DATE, "window_end": "soon"}, "window_end must be a UTC time"),
    ],
    ids=["mode", "date", "version", "array", "null", "number", "long-name", "nested", "year-2999", "bad-window-end"],
)
def test_malformed_console_input_fails_the_execution_with_the_reason(aws, console_input, message):
    execution = aws.wait_for_execution(aws.start_combine(console_input), timeout=30)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "CombineFailed"
    cause = json.loads(execution["cause"])
    assert cause["errorType"] == "InvalidCombineInput" and message in cause["errorMessage"]
    assert len(execution["cause"]) < 10_000, "the cause quotes what was sent, briefly"


def test_unnamed_executions_get_a_uuid_and_unusable_input_is_refused_at_the_start(aws):
    sfn = aws.client("stepfunctions")
    request = json.dumps({"mode": "rebuild", "function": "nobody", "date": DATE})

    first, second = (sfn.start_execution(stateMachineArn=aws.combine_state_machine_arn, input=request)["executionArn"] for _ in range(2))

    assert first != second
    for arn in (first, second):
        uuid.UUID(arn.rsplit(":", 1)[1])
        assert aws.wait_for_execution(arn, timeout=30)["status"] == "SUCCEEDED"
    for unusable, reason in (("[" * 5000 + "]" * 5000, "nested deeper than"), ('{"mode": ', "Invalid State Machine Execution Input")):
        with pytest.raises(sfn.exceptions.InvalidExecutionInput, match=reason):
            sfn.start_execution(stateMachineArn=aws.combine_state_machine_arn, input=unusable)


def _tasks(states: dict):
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        if "ItemProcessor" in state:
            yield from _tasks(state["ItemProcessor"]["States"])
        if state["Type"] == "Map":
            yield name, state


@pytest.mark.parametrize("machine", pipeline.STATE_MACHINES, ids=lambda m: m.logical_name)
def test_definitions_are_filled_from_the_catalog_and_every_task_retries_and_catches(machine):
    arns = {f.logical_name: f"arn:aws:lambda:us-east-1:123456789012:function:{f.function_name}" for f in pipeline.FUNCTIONS}
    rendered = json.loads(pipeline.render_definition(machine, pipeline.definition_substitutions(arns, "arn:combine")))

    assert "${" not in json.dumps(rendered)
    for name, state in _tasks(rendered["States"]):
        assert state.get("Catch"), name
        if state["Type"] == "Task":
            assert state.get("Retry") and all(r["BackoffRate"] >= 2 for r in state["Retry"]), name
