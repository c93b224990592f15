"""Contexts through the pipeline: raw files the layer wrote with COVERAGE_CONTEXTS keep, through intake,
batches, commit and reports, which request ran each line; hostile labels stay text; contexts are bounded."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from coverage_wrapper import datafile, keys
from coverage_wrapper.config import parse_config
from coverage_wrapper.contexts import route
from coverage_wrapper.merge import OVERFLOW_CONTEXT, Measurements, merge_data_files
from coverage_wrapper.outbox import Outbox
from coverage_wrapper.shipper import drain
from coverage_wrapper.validation import MAX_CONTEXT_LABEL, MAX_CONTEXTS, validate_data_file
from layer_harness import layer_env, run_function
from lambda_coverage.services.combiner import CombineRequest, Group as CombineGroup, commit, merge_batch, plan
from lambda_coverage.services.reporter import Group, render_group
from lambda_coverage.services.settings import PipelineSettings
from lambda_coverage.services.uploader.intake import intake_object

PREFIX = "coverage/"
FUNCTION = "tasks-fn"
CHROMIUM = "/usr/bin/chromium"

APP = '''\
from coverage_wrapper import coverage_handler


def get_task(event):
    task_id = event["pathParameters"]["id"]
    if task_id == "0":
        return {"error": "no task 0"}
    return {"id": task_id}


def create_task(event):
    return {"created": True}


def drain(records):
    done = 0
    for record in records:
        done += 1
    return done


@coverage_handler
def lambda_handler(event, context):
    if "Records" in event:
        return drain(event["Records"])
    if event.get("httpMethod") == "GET":
        return get_task(event)
    return create_task(event)
'''
GET = {"httpMethod": "GET", "resource": "/tasks/{id}", "path": "/tasks/7", "pathParameters": {"id": "7"},
       "requestContext": {"apiId": "a1"}}
GET_ZERO = dict(GET, path="/tasks/0", pathParameters={"id": "0"})
POST = {"httpMethod": "POST", "resource": "/tasks", "path": "/tasks", "body": "{}", "requestContext": {"apiId": "a1"}}
SQS = {"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}
# Two execution environments with contexts on and one with them off, each flushing every two invocations.
ENVIRONMENTS = [
    ({"COVERAGE_CONTEXTS": "route"}, [GET, POST, GET, SQS]),
    ({"COVERAGE_CONTEXTS": "route"}, [SQS, SQS, POST]),
    ({"COVERAGE_CONTEXTS": "off"}, [GET_ZERO, POST]),
]

ORACLE = '''
import json, sys
import coverage
sys.path.insert(0, sys.argv[1])
import tasks
handler = tasks.lambda_handler.__wrapped__
per_event = []
for event in json.loads(sys.argv[2]):
    cov = coverage.Coverage(data_file=None, include=[sys.argv[1] + "/*"], config_file=False)
    cov.start()
    handler(event, None)
    cov.stop()
    per_event.append(sorted(cov.get_data().lines(sys.argv[1] + "/tasks.py")))
print(json.dumps(per_event))
'''


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ship_environments(tmp_path: Path, bucket: str, moto_endpoint: str, environments) -> tuple[Path, list[str]]:
    """Each environment runs the app in its own process with the layer; its outbox is then shipped to S3
    by the layer's own shipper (raw files and the source snapshot), as the extension would."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "tasks.py").write_text(APP)
    uploaded = []
    for number, (settings, events) in enumerate(environments):
        outbox = tmp_path / f"outbox-{number}"
        env = layer_env(app, tmp_path, AWS_LAMBDA_FUNCTION_NAME=FUNCTION, COVERAGE_OUTBOX_DIR=str(outbox),
                        COVERAGE_FLUSH_INVOCATIONS="2", COVERAGE_S3_BUCKET=bucket, COVERAGE_CODE_VERSION="v1",
                        # Nothing leaves the function process: the drain below ships the outbox.
                        AWS_ENDPOINT_URL=f"http://127.0.0.1:{_closed_port()}", COVERAGE_UPLOAD_TIMEOUT="2", **settings)
        assert len(run_function("tasks.lambda_handler", events, env)) == len(events)
        os.environ["AWS_ENDPOINT_URL"] = moto_endpoint
        try:
            config = parse_config({"COVERAGE_S3_BUCKET": bucket, "COVERAGE_OUTBOX_DIR": str(outbox)})
            summary = drain(Outbox(config.outbox_dir), config, everything=True)
        finally:
            del os.environ["AWS_ENDPOINT_URL"]
        assert summary["remaining"] == 0 and summary["uploaded"], summary
        uploaded += summary["uploaded"]
    return app, uploaded


def _expected_routes(app: Path, tmp_path: Path) -> dict[int, set[str]]:
    """coverage.py alone, one fresh measurement per event: line → routes of the events that ran it."""
    expected: dict[int, set[str]] = {}
    for settings, events in ENVIRONMENTS:
        if settings["COVERAGE_CONTEXTS"] == "off":
            continue
        done = subprocess.run([sys.executable, "-c", ORACLE, str(app), json.dumps(events)],
                              env=layer_env(app, tmp_path), capture_output=True, text=True, check=True)
        for event, lines in zip(events, json.loads(done.stdout)):
            for line in lines:
                expected.setdefault(line, set()).add(route(event))
    return expected


def _combine_and_report(s3, bucket: str, raw_keys: list[str], rebuild: bool = False) -> tuple[dict, CombineGroup]:
    """Intake each upload, then the combine's plan, batch merges and commit, then the group's reports."""
    settings = PipelineSettings(bucket=bucket, prefix=PREFIX, window_seconds=60, batch_size=2)
    outcomes = [intake_object(s3, settings, bucket, key).as_dict() for key in raw_keys]
    raw = keys.parse_raw_key(raw_keys[0], PREFIX)
    request = {"function": raw.function, "date": raw.date, "version": raw.version, "mode": "rebuild" if rebuild else "window"}
    for planned in plan(s3, settings, CombineRequest.parse(request))["groups"]:
        group = CombineGroup.from_dict(planned)
        for index in planned["batches"]:
            merge_batch(s3, settings, group, planned["token"], index, planned["rebuild"])
        commit(s3, settings, group, planned["token"], planned["rebuild"])
    summary = render_group(s3, bucket, PREFIX, Group(raw.function, raw.date, raw.version))
    return {"intake": outcomes, "summary": summary}, CombineGroup(raw.function, raw.date, raw.version)


def _contexts_by_line(s3, bucket: str, base: str, tmp_path: Path) -> dict[int, set[str]]:
    """What the combined data itself says, read by coverage.py."""
    from coverage import CoverageData

    local = tmp_path / f"combined-{time.monotonic_ns()}.sqlite"
    s3.download_file(bucket, base + "coverage.sqlite", str(local))
    data = CoverageData(basename=str(local))
    data.read()
    return {line: set(labels) for line, labels in data.contexts_by_lineno("tasks.py").items()}


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "chromium must be installed (apt-get install -y chromium)"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        yield instance
        instance.close()


def _download_html(s3, bucket: str, base: str, target: Path) -> Path:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base + "html/"):
        for item in page.get("Contents", []):
            local = target / item["Key"][len(base):]
            local.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(local))
    return target / "html"


def _shown_contexts(browser, page_path: Path, screenshot: Path | None = None) -> tuple[dict[int, set[str]], list[str]]:
    """Per line, the contexts coverage.py's page shows once its context label is clicked; and any page problems."""
    page = browser.new_page(viewport={"width": 1280, "height": 1300})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto(page_path.as_uri())
    shown: dict[int, set[str]] = {}
    for label in page.locator("label.ctx").all():
        number = int(label.get_attribute("for").removeprefix("ctxs"))
        if label.inner_text() == "(empty)":  # only the empty context ran it: no list to open
            shown[number] = {""}
            continue
        label.click()
        listed = page.locator(f"#t{number}").locator("xpath=ancestor::p").locator(".ctxs").inner_text()
        shown[number] = {"" if text == "(empty)" else text for text in listed.split("\n") if text}
    if screenshot is not None:
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(screenshot))
    problems += [f"injected element: {n}" for n in page.eval_on_selector_all("#source img, #source script, #source iframe", "e => e.map(x => x.outerHTML)")]
    page.close()
    return shown, problems


def test_the_routes_shown_for_a_line_are_the_events_that_ran_it(s3, bucket, moto_endpoint, tmp_path, browser):
    # The page with every context list open is kept as a screenshot ($SCREENSHOTS_DIR, for the README).
    screenshot = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path) / "contexts-1280.png"
    app, raw_keys = _ship_environments(tmp_path, bucket, moto_endpoint, ENVIRONMENTS)
    assert len(raw_keys) >= 5  # several raw files per environment: the merge must carry contexts across them
    expected = _expected_routes(app, tmp_path)

    outcome, group = _combine_and_report(s3, bucket, raw_keys)

    assert [o["status"] for o in outcome["intake"]] == ["valid"] * len(raw_keys)
    summary = outcome["summary"]
    assert summary["contexts"] == {"count": 3, "labels": ["GET /tasks/{id}", "POST /tasks", "aws:sqs"]}
    base = keys.combined_prefix(PREFIX, group.function, group.date, group.version)
    report = json.loads(s3.get_object(Bucket=bucket, Key=base + "coverage.json")["Body"].read())
    assert report["meta"]["show_contexts"] is True
    in_json = {int(line): set(labels) for line, labels in report["files"]["tasks.py"]["contexts"].items()}
    in_html, problems = _shown_contexts(browser, _download_html(s3, bucket, base, tmp_path / "site") / "tasks_py.html", screenshot)
    assert problems == []
    # The environment with contexts off ran GET /tasks/0 and POST under the empty context: those lines show "".
    off_lines = set().union(*json.loads(subprocess.run(
        [sys.executable, "-c", ORACLE, str(app), json.dumps(ENVIRONMENTS[2][1])],
        env=layer_env(app, tmp_path), capture_output=True, text=True, check=True).stdout))
    for line, routes in expected.items():
        source = APP.splitlines()[line - 1]
        assert in_json[line] - {""} == routes, f"JSON, line {line}: {source!r}"
        assert in_html[line] - {""} == routes, f"HTML, line {line}: {source!r}"
    for line in off_lines:
        assert "" in in_json[line] and "" in in_html[line]
    only_off = off_lines - set(expected)  # the `task_id == "0"` branch: run only where contexts were off
    assert only_off and all(in_json[line] == {""} for line in only_off)


def test_merging_the_same_raw_files_again_keeps_the_contexts_unchanged(s3, bucket, moto_endpoint, tmp_path):
    _, raw_keys = _ship_environments(tmp_path, bucket, moto_endpoint, ENVIRONMENTS[:2])
    _, group = _combine_and_report(s3, bucket, raw_keys)
    base = keys.combined_prefix(PREFIX, group.function, group.date, group.version)
    before = _contexts_by_line(s3, bucket, base, tmp_path)

    _combine_and_report(s3, bucket, raw_keys, rebuild=True)

    assert _contexts_by_line(s3, bucket, base, tmp_path) == before
    assert set().union(*before.values()) >= {"GET /tasks/{id}", "POST /tasks", "aws:sqs"}


HOSTILE = "GET /</script><script>alert(1)</script><img src=x onerror=alert(2)>\"'&amp;"


def test_a_hostile_label_written_into_a_data_file_is_shown_as_text_never_as_markup(s3, bucket, moto_endpoint, tmp_path, browser):
    _, raw_keys = _ship_environments(tmp_path, bucket, moto_endpoint, ENVIRONMENTS[:1])
    # Past the layer's sanitizer: the label is rewritten inside an uploaded raw file.
    tampered = tmp_path / "tampered.coverage"
    s3.download_file(bucket, raw_keys[0], str(tampered))
    with sqlite3.connect(tampered) as connection:
        connection.execute("update context set context = ? where context = 'GET /tasks/{id}'", (HOSTILE,))
    connection.close()
    head = s3.head_object(Bucket=bucket, Key=raw_keys[0])
    s3.put_object(Bucket=bucket, Key=raw_keys[0], Body=tampered.read_bytes(), Metadata=head["Metadata"])

    outcome, group = _combine_and_report(s3, bucket, raw_keys)

    assert [o["status"] for o in outcome["intake"]] == ["valid"] * len(raw_keys)
    base = keys.combined_prefix(PREFIX, group.function, group.date, group.version)
    site = _download_html(s3, bucket, base, tmp_path / "site")
    for page in site.rglob("*.html"):
        text = page.read_text()
        assert "<script>alert" not in text and "<img src=x" not in text and "</script><script>" not in text, page.name
    shown, problems = _shown_contexts(browser, site / "tasks_py.html")
    assert problems == []
    assert any(HOSTILE in labels for labels in shown.values())
    report = json.loads(s3.get_object(Bucket=bucket, Key=base + "coverage.json")["Body"].read())
    assert any(HOSTILE in labels for labels in report["files"]["tasks.py"]["contexts"].values())
    assert HOSTILE in outcome["summary"]["contexts"]["labels"]


def _file_with_contexts(path: Path, labels: list, lines_per_label: int = 3) -> Path:
    datafile.write_data_file(
        str(path), lines={"pkg/a.py": [1]},
        contexts={label: {"pkg/a.py": range(2, 2 + lines_per_label)} for label in labels if isinstance(label, str)},
    )
    if any(not isinstance(label, str) for label in labels):
        with sqlite3.connect(path) as connection:
            connection.executemany("insert into context (context) values (?)", [(label,) for label in labels if not isinstance(label, str)])
        connection.close()
    return path


@pytest.mark.parametrize("labels, reason", [
    ([f"GET /r{i}" for i in range(MAX_CONTEXTS)], "too_many_contexts"),  # plus the empty one: one over
    (["GET /" + "x" * MAX_CONTEXT_LABEL], "bad_context"),
    (["GET /ok", b"GET /bytes"], "bad_context"),
    (["GET /ok", None], "bad_context"),
])
def test_uploads_past_the_context_bounds_are_quarantined_with_the_reason(labels, reason, s3, bucket, tmp_path):
    settings = PipelineSettings(bucket=bucket, prefix=PREFIX, window_seconds=60, batch_size=2)
    now = datetime.now(timezone.utc)
    key = keys.raw_key(PREFIX, FUNCTION, now, "v1", "0badc0de", 1)
    s3.upload_file(str(_file_with_contexts(tmp_path / "bad.coverage", labels)), bucket, key)

    result = intake_object(s3, settings, bucket, key).as_dict()

    assert result["status"] == "quarantined" and result["quarantine"]["reason"] == reason
    stored = json.loads(s3.get_object(Bucket=bucket, Key=result["quarantine"]["reason_key"])["Body"].read())
    assert stored["reason"] == reason
    assert s3.list_objects_v2(Bucket=bucket, Prefix=keys.raw_root(PREFIX)).get("KeyCount") == 0


def test_uploads_at_the_context_bounds_are_valid(tmp_path):
    at_count = _file_with_contexts(tmp_path / "count.coverage", [f"GET /r{i}" for i in range(MAX_CONTEXTS - 1)])
    at_length = _file_with_contexts(tmp_path / "length.coverage", ["GET /" + "x" * (MAX_CONTEXT_LABEL - 5)])
    assert validate_data_file(str(at_count)) is None and validate_data_file(str(at_length)) is None


def test_merged_labels_past_the_bound_fold_into_one_and_no_line_is_lost(tmp_path):
    halves = [[f"GET /a{i:04d}" for i in range(MAX_CONTEXTS - 1)], [f"GET /b{i:04d}" for i in range(MAX_CONTEXTS - 1)]]
    files = [str(_file_with_contexts(tmp_path / f"{n}.coverage", labels, lines_per_label=n + 3)) for n, labels in enumerate(halves)]
    merged = tmp_path / "merged.sqlite"

    result = merge_data_files(files, str(merged))

    assert result.rejected == [] and validate_data_file(str(merged)) is None
    contents = datafile.read_contents(str(merged))
    assert len(contents.contexts) == MAX_CONTEXTS and OVERFLOW_CONTEXT in contents.contexts
    assert contents.lines("pkg/a.py") == [1, 2, 3, 4, 5]
    assert contents.context_line_bits[OVERFLOW_CONTEXT]["pkg/a.py"] == 0b111100  # lines 2-5, from the b labels
    again = tmp_path / "again.sqlite"
    merge_data_files([str(merged), *files], str(again))  # merging what it holds again changes nothing
    assert datafile.read_contents(str(again)) == contents


def _merge_seconds(path: Path) -> float:
    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        measurements = Measurements()
        measurements.add_file(str(path))
        measurements.write(str(path.with_suffix(".out")))
        best = min(best, time.process_time() - began)
    return best


def test_merging_contexts_grows_linearly_with_the_labels(tmp_path):
    small = _merge_seconds(_file_with_contexts(tmp_path / "small.coverage", [f"GET /r{i}" for i in range(40)], 200))
    large = _merge_seconds(_file_with_contexts(tmp_path / "large.coverage", [f"GET /r{i}" for i in range(640)], 200))
    # Sixteen times the labels: about sixteen times the work when linear; a quadratic merge would be ~256.
    assert large / small < 40, (small, large)
