"""Since-deploy data per code version: the union of its day groups (coverage.py's own combine as the oracle), grown by each
commit in any order of days, unchanged when raw files expire, rebuilt by the console input; its reports and never-executed page."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from coverage_wrapper import datafile, keys
from fixtures.version_diff.publish import FUNCTION as SHOP, publish_sources as publish_shop_sources
from lambda_coverage.services.combiner import CombineRequest, plan
from lambda_coverage.services.combiner.since_deploy import data_key, manifest_key
from lambda_coverage.services.reporter import refresh_dashboard
from lambda_coverage.services.reporter.since_deploy import render_version
from lambda_coverage.services.settings import PipelineSettings
from pipeline_corpus import DATE, coverage_combine, measured_content, measured_run
from test_combiner import _run_combine

PREFIX = "coverage/"
TODAY = datetime.strptime(DATE, "%Y-%m-%d").replace(tzinfo=timezone.utc)
DATES = [(TODAY - timedelta(days=n)).strftime("%Y-%m-%d") for n in (2, 1, 0)]
# Per date: (execution environment, invocations its files counted so far); "beef0002" runs across two days.
ENVIRONMENTS = {DATES[0]: [("beef0001", 40), ("beef0002", 10)], DATES[1]: [("beef0002", 25), ("beef0003", 5)],
                DATES[2]: [("beef0004", 7)]}


def _settings(bucket: str) -> PipelineSettings:
    return PipelineSettings(bucket=bucket, prefix=PREFIX, window_seconds=60, batch_size=2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real measured runs of the pipeline app, two per environment and day, and two of another code version."""
    directory = tmp_path_factory.mktemp("since-deploy")
    made, seed = [], 0
    for date, environments in ENVIRONMENTS.items():
        for env, invocations in environments:
            for flush in range(2):
                seed += 1
                made.append((date, "v1", env, flush, invocations - flush, measured_run(directory / f"v1-{seed}.coverage", "v1", seed)))
    for flush in range(2):
        made.append((DATES[1], "v2", "beef0009", flush, 3, measured_run(directory / f"v2-{flush}.coverage", "v2", 900 + flush)))
    return made


def _upload(s3, bucket: str, runs, date: str) -> list[str]:
    uploaded = []
    for day, version, env, flush, invocations, path in runs:
        if day != date:
            continue
        flushed = datetime.strptime(f"{day} 12:00:{flush:02d}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        key = keys.raw_key(PREFIX, "orders", flushed, version, env, flush + 1)
        s3.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {"function": "orders", "code-version": version,
                                                                         "invocations": str(invocations)}})
        uploaded.append(key)
    return uploaded




def _since_deploy(s3, bucket: str, tmp_path, version: str = "v1") -> tuple[dict, dict]:
    local = tmp_path / f"since-{version}-{datetime.now().timestamp()}.sqlite"
    s3.download_file(bucket, data_key(PREFIX, "orders", version), str(local))
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key(PREFIX, "orders", version))["Body"].read())
    return measured_content(local), manifest


def test_since_deploy_is_the_union_of_the_day_groups_in_any_order_and_survives_raw_expiry(runs, s3, bucket, tmp_path):
    settings = _settings(bucket)
    for date in (DATES[2], DATES[0], DATES[1]):  # days combined out of order
        _upload(s3, bucket, runs, date)
        commits = _run_combine(s3, settings, {"mode": "rebuild", "function": "orders", "date": date})
        assert all(c["since_deploy_changed"] and c["report"] for c in commits)
    v1_runs = [path for _, version, _, _, _, path in runs if version == "v1"]

    data, manifest = _since_deploy(s3, bucket, tmp_path)

    assert data == coverage_combine(v1_runs, tmp_path / "oracle")
    assert "shop/discounts.py" not in data["files"]  # only v2 has it: versions never mix
    assert _since_deploy(s3, bucket, tmp_path, "v2")[0] == coverage_combine([p for _, v, _, _, _, p in runs if v == "v2"], tmp_path / "v2")
    assert (manifest["first_seen"], manifest["last_seen"], manifest["days"], manifest["dates"]) == (DATES[0], DATES[2], 3, DATES)
    assert manifest["raw_files"] == len(v1_runs) == 10
    # Invocations: each environment's largest count once, though beef0002 ran on two days: 40 + 25 + 5 + 7.
    assert (manifest["invocations"], manifest["environments"]) == (77, 4)

    # A day combined again (a rebuild: same files) changes nothing.
    again = _run_combine(s3, settings, {"mode": "rebuild", "function": "orders", "date": DATES[1], "version": "v1"})
    assert again[0]["changed"] is True
    assert _since_deploy(s3, bucket, tmp_path)[0] == data

    # The lifecycle rule expires raw files: the version's data stays, and a rebuild from the day groups equals it.
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=keys.raw_root(PREFIX)):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    assert _since_deploy(s3, bucket, tmp_path)[0] == data
    rebuilt = plan(s3, settings, CombineRequest.parse({"function": "orders", "version": "v1", "mode": "since-deploy"}))
    assert rebuilt["groups"] == [] and rebuilt["since_deploy"] == {"function": "orders", "version": "v1", "date": DATES[2], "days": 3}
    after, after_manifest = _since_deploy(s3, bucket, tmp_path)
    assert after == data
    assert {k: after_manifest[k] for k in ("dates", "raw_files", "invocations", "environments")} == {
        k: manifest[k] for k in ("dates", "raw_files", "invocations", "environments")}


@pytest.mark.parametrize("console_input, message", [
    ({"mode": "since-deploy", "function": "orders"}, "version is required"),
    ({"mode": "since-deploy", "function": "orders", "version": "v1", "date": DATE}, "give only function and version"),
    ({"mode": "since-deploy", "function": "orders", "version": "v9"}, "has no combined day group to rebuild from"),
])
def test_since_deploy_console_input_is_checked(console_input, message, s3, bucket):
    from lambda_coverage.services.combiner import InvalidCombineInput

    with pytest.raises(InvalidCombineInput, match=message):
        plan(s3, _settings(bucket), CombineRequest.parse(console_input))


def _publish_version(s3, bucket: str, tmp_path, executed: dict, manifest: dict) -> None:
    """Since-deploy data and manifest of shop-fn v2, as the combiner leaves them."""
    data = tmp_path / "since.sqlite"
    datafile.write_data_file(str(data), lines=executed)
    s3.put_object(Bucket=bucket, Key=data_key(PREFIX, SHOP, "v2"), Body=data.read_bytes())
    s3.put_object(Bucket=bucket, Key=manifest_key(PREFIX, SHOP, "v2"), Body=json.dumps(manifest))


EVIDENCE = {"function": SHOP, "version": "v2", "first_seen": "2026-11-02", "last_seen": "2026-11-22", "days": 9,
            "dates": [], "raw_files": 120, "invocations": 48_000, "environments": 31, "generation": 4}


def test_never_executed_page_ranks_what_no_invocation_ran_with_the_evidence(s3, bucket, tmp_path):
    publish_shop_sources(s3, bucket, PREFIX, "v2")
    # handler.refund and discounts.discount never ran (only their def lines, at import); util.py was never imported.
    _publish_version(s3, bucket, tmp_path, {"app/handler.py": [1, 4, 8, 9, 12, 15, 16, 17, 18], "app/discounts.py": [1]}, EVIDENCE)

    summary = render_version(s3, bucket, PREFIX, SHOP, "v2")

    base = keys.versions_prefix(PREFIX, SHOP, "v2")
    never = json.loads(s3.get_object(Bucket=bucket, Key=base + "never-executed.json")["Body"].read())
    assert never["files"] == [{"path": "app/util.py", "statements": 6}]
    assert never["functions"] == [
        {"path": "app/discounts.py", "function": "discount", "start_line": 1, "statements": 3},
        {"path": "app/handler.py", "function": "refund", "start_line": 4, "statements": 1},
    ]
    assert {k: never[k] for k in ("first_seen", "last_seen", "days", "invocations", "environments", "raw_files")} == {
        "first_seen": "2026-11-02", "last_seen": "2026-11-22", "days": 9, "invocations": 48_000, "environments": 31, "raw_files": 120}
    stored = json.loads(s3.get_object(Bucket=bucket, Key=base + "summary.json")["Body"].read())
    assert stored["since_deploy"] is True and stored["first_seen"] == "2026-11-02" and stored["percent"] == summary["percent"]
    page = s3.get_object(Bucket=bucket, Key=base + "never-executed.html")["Body"].read().decode()
    assert page.index("app/util.py") < page.index('id="functions"') < page.index("discount") < page.index("refund")
    assert "48000 invocation(s) in 31 execution environment(s)" in page
    report = s3.get_object(Bucket=bucket, Key=base + "html/index.html")["Body"].read().decode()
    assert "Coverage of shop-fn v2 since 2026-11-02" in report and "../../../../reports/functions/shop-fn.html" in report

    refresh_dashboard(s3, bucket, PREFIX)
    function_page = s3.get_object(Bucket=bucket, Key=PREFIX + f"reports/functions/{SHOP}.html")["Body"].read().decode()
    assert "../../versions/shop-fn/v2/never-executed.html" in function_page
    assert "../../versions/shop-fn/v2/html/index.html" in function_page


def test_the_report_step_renders_since_deploy_reports_when_their_data_changed(runs, s3, bucket, moto_endpoint, monkeypatch):
    from lambda_coverage.services.reporter.handler import report_handler

    settings = _settings(bucket)
    _upload(s3, bucket, runs, DATES[0])
    _run_combine(s3, settings, {"mode": "rebuild", "function": "orders", "date": DATES[0]})
    monkeypatch.setenv("COVERAGE_S3_BUCKET", bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    base = keys.versions_prefix(PREFIX, "orders", "v1")

    report_handler({"function": "orders", "date": DATES[0], "version": "v1"}, None)
    assert json.loads(s3.get_object(Bucket=bucket, Key=base + "summary.json")["Body"].read())["days"] == 1
    s3.delete_object(Bucket=bucket, Key=base + "never-executed.html")
    report_handler({"function": "orders", "date": DATES[0], "version": "v1"}, None)  # nothing new: not rendered again
    assert s3.list_objects_v2(Bucket=bucket, Prefix=base + "never-executed.html")["KeyCount"] == 0

    _upload(s3, bucket, runs, DATES[1])
    _run_combine(s3, settings, {"mode": "rebuild", "function": "orders", "date": DATES[1]})
    report_handler({"function": "orders", "date": DATES[1], "version": "v1"}, None)  # the version grew: rendered again
    assert json.loads(s3.get_object(Bucket=bucket, Key=base + "summary.json")["Body"].read())["days"] == 2
    s3.head_object(Bucket=bucket, Key=base + "never-executed.html")
    result = report_handler({"function": "orders", "date": DATES[1], "version": "v1", "since_deploy": True}, None)
    assert result["summary"]["since_deploy"] is True and result["summary"]["days"] == 2


@pytest.fixture(scope="module")
def aws(fake_aws_credentials):
    from lambda_coverage.local import LocalAws

    with LocalAws(window_seconds=2) as emulation:
        yield emulation


def test_the_console_input_rebuilds_a_version_after_its_raw_files_expired(aws, runs, tmp_path):
    s3 = aws.client("s3")
    for date in DATES[:2]:
        for day, version, env, flush, invocations, path in runs:
            if day == date and version == "v1":
                flushed = datetime.strptime(f"{day} 12:00:{flush:02d}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
                key = keys.raw_key(aws.prefix, "catalog", flushed, version, env, flush + 1)
                s3.upload_file(str(path), aws.bucket, key, ExtraArgs={"Metadata": {"invocations": str(invocations)}})
    aws.wait_until_idle(timeout=90)  # intake, window combines, commits folding each day in, reports
    base = keys.versions_prefix(aws.prefix, "catalog", "v1")
    before = tmp_path / "before.sqlite"
    s3.download_file(aws.bucket, base + "coverage.sqlite", str(before))
    summary = json.loads(s3.get_object(Bucket=aws.bucket, Key=base + "summary.json")["Body"].read())
    assert (summary["since_deploy"], summary["days"], summary["first_seen"], summary["last_seen"]) == (True, 2, DATES[0], DATES[1])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket, Prefix=keys.raw_root(aws.prefix) + "catalog/"):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=aws.bucket, Key=item["Key"])  # what the lifecycle rule does after its days
    s3.delete_object(Bucket=aws.bucket, Key=base + "never-executed.html")

    execution = aws.wait_for_execution(aws.start_combine({"function": "catalog", "version": "v1", "mode": "since-deploy"}), timeout=90)

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert json.loads(execution["output"])["mode"] == "since-deploy"
    after = tmp_path / "after.sqlite"
    s3.download_file(aws.bucket, base + "coverage.sqlite", str(after))
    assert measured_content(after) == measured_content(before)
    s3.head_object(Bucket=aws.bucket, Key=base + "never-executed.html")
    index = s3.get_object(Bucket=aws.bucket, Key=aws.prefix + "reports/functions/catalog.html")["Body"].read().decode()
    assert "../../versions/catalog/v1/html/index.html" in index

    failed = aws.wait_for_execution(aws.start_combine({"function": "catalog", "mode": "since-deploy"}), timeout=30)
    assert failed["status"] == "FAILED" and "version is required" in json.loads(failed["cause"])["errorMessage"]
