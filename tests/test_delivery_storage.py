"""The services' S3 helper under injected faults: typed errors, races decided on purpose, conflicts and throttling retried."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from coverage_wrapper import keys

from lambda_coverage.local.faults import FaultPolicy, Interleave, S3Fault, commit_conflicts, key_matches, throttling
from pipeline_corpus import DATE, coverage_combine, measured_content, raw_corpus
from lambda_coverage.services import storage
from lambda_coverage.services.combiner import CombineRequest, CommitConflict, Group, commit, merge_batch, plan
from lambda_coverage.services.reporter.dashboard import update_history
from lambda_coverage.services.settings import PipelineSettings, s3_client

PREFIX = "coverage/"
GROUP = Group("orders", DATE, "v1")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return [r for r in raw_corpus(tmp_path_factory.mktemp("storage"), PREFIX, {"orders": 24}) if r.version == "v1"]


def _settings(bucket: str) -> PipelineSettings:
    return PipelineSettings(bucket=bucket, prefix=PREFIX, window_seconds=60, batch_size=4)


def _upload(s3, bucket, files) -> None:
    for raw in files:
        s3.upload_file(str(raw.path), bucket, raw.key)


def _planned(s3, settings) -> dict:
    request = {"mode": "window", "function": GROUP.function, "date": DATE, "version": GROUP.version}
    return plan(s3, settings, CombineRequest.parse(request))["groups"][0]


def _merge(s3, settings, planned: dict, half: int | None = None) -> str:
    """Merge the plan's batches (every other one with `half`); the token to commit."""
    indices = planned["batches"] if half is None else planned["batches"][half::2]
    for index in indices:
        merge_batch(s3, settings, GROUP, planned["token"], index, False)
    return planned["token"]


def _combined(s3, bucket, tmp_path: Path) -> tuple[dict, dict]:
    local = tmp_path / "combined.sqlite"
    s3.download_file(bucket, keys.combined_data_key(PREFIX, *GROUP.as_dict().values()), str(local))
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=keys.combined_manifest_key(PREFIX, *GROUP.as_dict().values()))["Body"].read())
    return measured_content(local), manifest


def test_missing_objects_and_lost_conditional_writes_have_one_name_each(s3, bucket):
    assert storage.read_object(s3, bucket, "nothing/here") is None
    assert storage.head_object(s3, bucket, "nothing/here") is None
    with pytest.raises(storage.NotFound):
        storage.get_object(s3, bucket, "nothing/here")
    first = storage.put_if_unchanged(s3, bucket, "doc.json", b"1", None)
    with pytest.raises(storage.Conflict):  # S3's own 412: the object exists
        storage.put_if_unchanged(s3, bucket, "doc.json", b"2", None)
    storage.put_if_unchanged(s3, bucket, "doc.json", b"3", first)
    with pytest.raises(storage.Conflict):  # S3's own 412: the ETag moved on
        storage.put_if_unchanged(s3, bucket, "doc.json", b"4", first)
    in_flight = FaultPolicy([S3Fault(409, "ConditionalRequestConflict", key_matches("doc.json"), times=1)])
    with in_flight.attached(s3), pytest.raises(storage.Conflict):
        storage.put_object(s3, bucket, "doc.json", b"5")
    assert storage.read_object(s3, bucket, "doc.json").body == b"3"


def test_a_rival_commit_between_read_and_write_is_kept_by_the_one_that_loses(corpus, s3, bucket, tmp_path):
    _upload(s3, bucket, corpus)
    settings = _settings(bucket)
    mine = _merge(s3, settings, _planned(s3, settings), half=0)
    theirs = _merge(s3, settings, _planned(s3, settings), half=1)
    data_key = GROUP.data_key(PREFIX)
    # Just before this commit's conditional write of the data, the rival commits in full: S3 itself then
    # refuses the write (the data is not absent any more), and this commit must read the rival's data and merge again.
    rival = FaultPolicy([Interleave(key_matches(f"^{data_key}$", method="PUT", conditional=True),
                                    lambda: commit(s3, settings, GROUP, theirs))])

    with rival.attached(s3):
        result = commit(s3, settings, GROUP, mine)

    assert rival.injected == {"s3:interleaved": 1}
    combined, manifest = _combined(s3, bucket, tmp_path)
    assert manifest["raw_keys"] == sorted(r.key for r in corpus)
    assert manifest["generation"] == 2, "the losing commit wrote over the winner's generation, not beside it"
    assert result["changed"] is True and result["files"] == len(corpus)
    assert combined == coverage_combine([r.path for r in corpus], tmp_path / "expected")


def test_every_commit_meeting_a_conflict_and_throttling_still_merges_each_file_once(corpus, s3, bucket, tmp_path, moto_endpoint, monkeypatch):
    _upload(s3, bucket, corpus)
    settings = _settings(bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    client = s3_client()  # the services' own client: standard retry mode retries 503 SlowDown
    faults = FaultPolicy([commit_conflicts(), throttling(every=3)])

    with faults.attached(client):
        for half in (0, None):  # half of the files, then what is still pending
            commit(client, settings, GROUP, _merge(client, settings, _planned(client, settings), half=half))

    assert faults.injected["s3:PreconditionFailed"] >= 4, "data and manifest of both commits each lost one write"
    assert faults.injected["s3:SlowDown"] >= 10
    combined, manifest = _combined(s3, bucket, tmp_path)
    assert manifest["raw_keys"] == sorted(r.key for r in corpus)
    assert combined == coverage_combine([r.path for r in corpus], tmp_path / "expected")
    leftovers = s3.list_objects_v2(Bucket=bucket, Prefix=keys.combined_prefix(PREFIX, "orders", DATE, "v1") + "partials/")
    assert leftovers.get("KeyCount") == 0


def test_a_commit_that_keeps_losing_gives_up_with_commit_conflict_and_keeps_its_partials(corpus, s3, bucket):
    _upload(s3, bucket, corpus[:4])
    settings = _settings(bucket)
    token = _merge(s3, settings, _planned(s3, settings))
    partials = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=GROUP.partials_prefix(PREFIX, token))["Contents"]]
    always = FaultPolicy([S3Fault(412, "PreconditionFailed", key_matches("coverage.sqlite$", method="PUT"))])

    with always.attached(s3), pytest.raises(CommitConflict, match="another writer won 10 times in a row"):
        commit(s3, settings, GROUP, token)

    assert always.injected["s3:PreconditionFailed"] == storage.CONDITIONAL_WRITES.attempts
    assert all(storage.head_object(s3, bucket, key) for key in partials), "the state machine's retry needs them"
    assert storage.head_object(s3, bucket, GROUP.data_key(PREFIX)) is None


def test_history_update_reads_again_after_a_lost_write_and_skips_writing_when_nothing_is_new(s3, bucket):
    summaries = [{"function": "orders", "date": DATE, "version": "v1", "percent": 50.0, "covered": 5, "statements": 10,
                  "generated_at": "2026-11-23T10:00:00Z", "rendered": True}]
    history_key = keys.reports_prefix(PREFIX) + "history.json"
    update_history(s3, bucket, PREFIX, summaries, "2026-11-23T10:00:01Z")
    before = s3.head_object(Bucket=bucket, Key=history_key)["ETag"]
    newer = summaries + [dict(summaries[0], version="v2", generated_at="2026-11-23T10:05:00Z")]
    faults = FaultPolicy([commit_conflicts()])

    with faults.attached(s3):
        history = update_history(s3, bucket, PREFIX, newer, "2026-11-23T10:05:01Z")
        again = update_history(s3, bucket, PREFIX, newer, "2026-11-23T10:06:00Z")

    assert faults.injected == {"s3:PreconditionFailed": 1}
    assert len(history["points"]) == 2 and again["points"] == history["points"]
    stored = json.loads(s3.get_object(Bucket=bucket, Key=history_key)["Body"].read())
    assert stored["updated_at"] == "2026-11-23T10:05:01Z", "a refresh with nothing new writes nothing"
    assert s3.head_object(Bucket=bucket, Key=history_key)["ETag"] != before
