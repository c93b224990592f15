"""The combiner against moto S3: equal to `coverage combine`, versions apart, races and repeats lose nothing."""

from __future__ import annotations

import json
import shutil
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from coverage_wrapper import keys

from pipeline_corpus import DATE, coverage_combine, measured_content, raw_corpus
from lambda_coverage.services.combiner import CombineRequest, Group, InvalidCombineInput, commit, merge_batch, plan
from lambda_coverage.services.settings import PipelineSettings

PREFIX = "coverage/"


def _settings(bucket: str, batch_size: int = 25) -> PipelineSettings:
    return PipelineSettings(bucket=bucket, prefix=PREFIX, window_seconds=60, batch_size=batch_size)


def _upload(s3, bucket, files) -> None:
    for raw in files:
        s3.upload_file(str(raw.path), bucket, raw.key, ExtraArgs={"Metadata": {"function": raw.function, "code-version": raw.version}})


def _run_combine(s3, settings, request: dict) -> list[dict]:
    """What the combine state machine does, step by step: plan, merge each batch, commit each group."""
    planned = plan(s3, settings, CombineRequest.parse(request))
    commits = []
    for group in planned["groups"]:
        for index in group["batches"]:
            merge_batch(s3, settings, Group.from_dict(group), group["token"], index, group["rebuild"])
        commits.append(commit(s3, settings, Group.from_dict(group), group["token"], group["rebuild"]))
    return commits


def _plan_group(s3, settings, function: str, version: str, mode: str = "window") -> dict:
    request = {"function": function, "date": DATE, "version": version, "mode": mode}
    return plan(s3, settings, CombineRequest.parse(request))["groups"][0]


def _combined(s3, bucket, tmp_path: Path, function: str, version: str) -> tuple[dict, dict]:
    local = tmp_path / f"{function}-{version}-{datetime.now(timezone.utc).timestamp()}.sqlite"
    s3.download_file(bucket, keys.combined_data_key(PREFIX, function, DATE, version), str(local))
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=keys.combined_manifest_key(PREFIX, function, DATE, version))["Body"].read())
    return measured_content(local), manifest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """230 measured runs: three functions, two code versions each."""
    return raw_corpus(tmp_path_factory.mktemp("corpus"), PREFIX, {"orders": 100, "users": 80, "billing": 50})


def test_combined_data_equals_coverage_combine_per_group_and_never_mixes_versions(corpus, s3, bucket, tmp_path):
    _upload(s3, bucket, corpus)
    settings = _settings(bucket)

    commits = _run_combine(s3, settings, {"mode": "daily", "date": DATE})

    assert len(commits) == 6 and all(c["changed"] for c in commits)
    for function in ("orders", "users", "billing"):
        for version in ("v1", "v2"):
            group_files = [r for r in corpus if r.function == function and r.version == version]
            expected = coverage_combine([r.path for r in group_files], tmp_path / f"expected-{function}-{version}")
            combined, manifest = _combined(s3, bucket, tmp_path, function, version)
            assert combined == expected
            assert manifest["raw_keys"] == sorted(r.key for r in group_files)
            assert ("shop/discounts.py" in combined["files"]) == (version == "v2")
    leftovers = s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}combined/orders/{DATE}/v1/partials/").get("KeyCount")
    assert leftovers == 0


def test_two_racing_combines_of_one_group_lose_nothing(corpus, s3, bucket, tmp_path):
    group_files = [r for r in corpus if r.function == "orders" and r.version == "v1"]
    _upload(s3, bucket, group_files)
    settings = _settings(bucket, batch_size=10)
    group = Group("orders", DATE, "v1")
    # Two combines planned the same files; each merges half the batches, then both commit at once.
    plans = [_plan_group(s3, settings, "orders", "v1"), _plan_group(s3, settings, "orders", "v1")]
    start = threading.Barrier(2)
    errors = []

    def combiner(planned: dict, half: int) -> None:
        try:
            for index in planned["batches"][half::2]:
                merge_batch(s3, settings, group, planned["token"], index, False)
            start.wait()
            commit(s3, settings, group, planned["token"], rebuild=False)
        except Exception as exc:  # reported below: an assertion in a thread would pass silently
            errors.append(exc)

    threads = [threading.Thread(target=combiner, args=(planned, half)) for half, planned in enumerate(plans)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    combined, manifest = _combined(s3, bucket, tmp_path, "orders", "v1")
    assert manifest["raw_keys"] == sorted(r.key for r in group_files)
    assert combined == coverage_combine([r.path for r in group_files], tmp_path / "expected")


def test_merging_the_same_files_again_changes_nothing(corpus, s3, bucket, tmp_path):
    group_files = [r for r in corpus if r.function == "users" and r.version == "v2"]
    _upload(s3, bucket, group_files)
    settings = _settings(bucket)
    _run_combine(s3, settings, {"function": "users", "date": DATE, "version": "v2"})
    before_data, before_manifest = _combined(s3, bucket, tmp_path, "users", "v2")
    data_etag = s3.head_object(Bucket=bucket, Key=keys.combined_data_key(PREFIX, "users", DATE, "v2"))["ETag"]

    group = Group("users", DATE, "v2")
    again = _plan_group(s3, settings, "users", "v2", mode="rebuild")  # every raw file, merged ones too
    merged = sum(merge_batch(s3, settings, group, again["token"], index, True)["merged"] for index in again["batches"])
    result = commit(s3, settings, group, again["token"], rebuild=False)

    assert merged == len(group_files)
    assert result["changed"] is False and result["added"] == 0
    after_data, after_manifest = _combined(s3, bucket, tmp_path, "users", "v2")
    assert after_data == before_data
    assert after_manifest["raw_keys"] == before_manifest["raw_keys"]
    assert s3.head_object(Bucket=bucket, Key=keys.combined_data_key(PREFIX, "users", DATE, "v2"))["ETag"] == data_etag


def test_bad_files_met_in_a_combine_are_quarantined_and_the_rest_combined(corpus, s3, bucket, tmp_path):
    group_files = [r for r in corpus if r.function == "billing" and r.version == "v1"]
    _upload(s3, bucket, group_files)
    base = f"{PREFIX}raw/billing/{DATE}/v1/"
    truncated = group_files[0].path.read_bytes()[:2048]
    bad = {
        f"{base}235900Z-deadbeef-000001.coverage": (b"", "empty"),
        f"{base}235901Z-deadbeef-000002.coverage": (b"<html>noise</html>", "not_sqlite"),
        f"{base}235902Z-deadbeef-000003.coverage": (truncated, "corrupt"),
        f"{base}notes.txt": (b"hello", "off_scheme_key"),
    }
    for key, (body, _) in bad.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)

    commits = _run_combine(s3, _settings(bucket, batch_size=7), {"function": "billing", "date": DATE, "mode": "rebuild"})

    assert [c["version"] for c in commits] == ["v1"]
    combined, manifest = _combined(s3, bucket, tmp_path, "billing", "v1")
    assert manifest["raw_keys"] == sorted(r.key for r in group_files)
    assert combined == coverage_combine([r.path for r in group_files], tmp_path / "expected")
    for key, (_, code) in bad.items():
        reason = json.loads(s3.get_object(Bucket=bucket, Key=keys.quarantine_reason_key(PREFIX, key))["Body"].read())
        assert reason["reason"] == code and reason["original_key"] == key
        assert s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount") == 0


def test_rebuild_replaces_combined_data_from_the_raw_files(corpus, s3, bucket, tmp_path):
    group_files = [r for r in corpus if r.function == "orders" and r.version == "v2"][:12]
    _upload(s3, bucket, group_files)
    settings = _settings(bucket)
    _run_combine(s3, settings, {"function": "orders", "date": DATE, "version": "v2"})
    # A combined file that disagrees with the raw files (here: made from one other file) is repaired.
    stray = tmp_path / "stray.sqlite"
    shutil.copyfile(corpus[1].path, stray)
    s3.upload_file(str(stray), bucket, keys.combined_data_key(PREFIX, "orders", DATE, "v2"))

    commits = _run_combine(s3, settings, {"function": "orders", "date": DATE, "version": "v2", "mode": "rebuild"})

    assert commits[0]["changed"] and commits[0]["files"] == len(group_files)
    combined, _ = _combined(s3, bucket, tmp_path, "orders", "v2")
    assert combined == coverage_combine([r.path for r in group_files], tmp_path / "expected")


@pytest.mark.parametrize(
    "payload, message",
    [
        ("rebuild everything", "must be a JSON object"),
        ({"mode": "weekly", "date": DATE}, "mode must be one of"),
        ({"mode": "rebuild", "date": DATE}, "function is required"),
        ({"mode": "rebuild", "function": "orders", "date": "2026-02-30"}, "calendar date"),
        ({"mode": "rebuild", "function": "../etc", "date": DATE}, "function must be"),
        ({"mode": "window", "function": "orders", "date": DATE}, "version is required"),
        ({"mode": "daily", "function": "orders"}, "give only a date"),
        ({"mode": "daily", "date": DATE, "dryrun": True}, "unknown fields: dryrun"),
    ],
)
def test_malformed_combine_inputs_are_refused_with_a_clear_message(payload, message):
    with pytest.raises(InvalidCombineInput, match=message):
        CombineRequest.parse(payload)


def test_daily_without_a_date_sweeps_yesterday_utc():
    request = CombineRequest.parse({"mode": "daily"}, today=datetime(2026, 11, 23, 0, 5, tzinfo=timezone.utc))
    assert (request.mode, request.date, request.function) == ("daily", "2026-11-22", None)
