"""Version diff: two fixture versions of one function, their day groups rendered by the reporter, against a hand-computed diff."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.version_diff.publish import DAYS, FUNCTION, publish_day, publish_sources
from lambda_coverage.services.reporter import Group, render_group
from lambda_coverage.services.reporter.diff import diff_key
from lambda_coverage.services.reporter.function_index import read_index
from lambda_coverage.services.reporter.sources import BLOB_MISSING

PREFIX = "coverage/"
REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "lambda_coverage.cli"]

# Worked out by reading the two versions' files (see tests/fixtures/version_diff):
# v2 runs `return {"refunded": ...}` (moved from v1 line 19, never run in v1), the new discount branch, and
# `return refund(event)` (v1 line 9, never run); `if total > 100:` ran in v1's util.py, which does not count for
# handler.py. Moved lines that ran in both (`def refund`, `total = sum(...)`) are not listed.
STARTED = {
    "files": ["app/discounts.py"],
    "lines": [
        {"path": "app/discounts.py", "file_ran_before": False, "file_in_other_version": False, "lines": [
            {"line": 1, "text": "def discount(total):"}, {"line": 2, "text": "if total > 100:"}, {"line": 3, "text": "return 0.9"}]},
        {"path": "app/handler.py", "file_ran_before": True, "file_in_other_version": True, "lines": [
            {"line": 5, "text": 'return {"refunded": event["amount"]}'}, {"line": 10, "text": "if total > 100:"},
            {"line": 11, "text": "total = total * 0.9"}, {"line": 20, "text": "return refund(event)"}]},
    ],
    "line_count": 7,
}
# v1 ran `return {"ignored": True}` (v2 changed its text), all of legacy.py (gone in v2), and util.py's bodies.
STOPPED = {
    "files": ["app/legacy.py"],
    "lines": [
        {"path": "app/handler.py", "file_ran_before": True, "file_in_other_version": True, "lines": [
            {"line": 10, "text": 'return {"ignored": True}'}]},
        {"path": "app/legacy.py", "file_ran_before": False, "file_in_other_version": False, "lines": [
            {"line": 1, "text": "def old_path():"}, {"line": 2, "text": 'return "legacy"'}]},
        {"path": "app/util.py", "file_ran_before": True, "file_in_other_version": True, "lines": [
            {"line": 2, "text": "return text.strip()"}, {"line": 6, "text": "if total > 100:"}, {"line": 7, "text": "return True"}]},
    ],
    "line_count": 6,
}
WITHOUT_SOURCE = [{"path": "app/generated.py", "version": "v2", "reason": BLOB_MISSING}]


def _render_day(s3, bucket: str, tmp_path: Path, date: str, version: str, executed: dict) -> dict:
    publish_day(s3, bucket, PREFIX, tmp_path, date, version, executed)
    return render_group(s3, bucket, PREFIX, Group(FUNCTION, date, version))


@pytest.fixture
def rendered(s3, bucket, tmp_path, request):
    for version in ("v1", "v2"):
        publish_sources(s3, bucket, PREFIX, version)
    order = DAYS if getattr(request, "param", "in order") == "in order" else list(reversed(DAYS))
    for date, version, executed in order:
        _render_day(s3, bucket, tmp_path, date, version, executed)
    return s3, bucket


def _stored_diff(s3, bucket: str, old: str, new: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=diff_key(PREFIX, FUNCTION, old, new, "json"))["Body"].read())


@pytest.mark.parametrize("rendered", ["in order", "newest day first"], indirect=True)
def test_the_diff_of_the_latest_two_versions_equals_the_hand_computed_one(rendered):
    s3, bucket = rendered

    diff = _stored_diff(s3, bucket, "v1", "v2")

    assert (diff["from"], diff["to"]) == ("v1", "v2")
    assert diff["started"] == STARTED
    assert diff["stopped"] == STOPPED
    assert diff["without_source"] == WITHOUT_SOURCE
    assert diff["dates"] == {"v1": ["2026-11-20", "2026-11-21"], "v2": ["2026-11-22"]}
    index = read_index(s3, bucket, PREFIX, FUNCTION)
    assert [(d["from"], d["to"], d["started_lines"], d["stopped_lines"]) for d in index["diffs"]] == [("v1", "v2", 7, 6)]
    assert {v: (e["first_seen"], e["last_seen"], e["days"]) for v, e in index["versions"].items()} == {
        "v1": ("2026-11-20", "2026-11-21", 2), "v2": ("2026-11-22", "2026-11-22", 1)}


def test_the_diff_page_lists_the_lines_as_text(rendered):
    s3, bucket = rendered

    page = s3.get_object(Bucket=bucket, Key=diff_key(PREFIX, FUNCTION, "v1", "v2", "html"))["Body"].read().decode()

    assert "<title>Version diff of shop-fn: v1 → v2</title>" in page
    assert "return {&quot;refunded&quot;: event[&quot;amount&quot;]}" in page
    assert "7 line(s) in 2 file(s)" in page and "6 line(s) in 3 file(s)" in page
    assert page.index('id="started"') < page.index("total = total * 0.9") < page.index('id="stopped"')
    assert page.index('id="stopped"') < page.index("return text.strip()")
    assert "app/generated.py" in page and BLOB_MISSING in page


def _cli(*args: str, endpoint: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run([*CLI, "diff", "--function", FUNCTION, "--endpoint", endpoint, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_cli_prints_the_diff_of_the_latest_two_and_of_any_pair_asked(rendered, moto_endpoint):
    s3, bucket = rendered

    latest = _cli("--bucket", bucket, endpoint=moto_endpoint)
    reverse = _cli("--bucket", bucket, "--from", "v2", "--to", "v1", endpoint=moto_endpoint)

    assert latest.returncode == 0, latest.stderr
    printed = json.loads(latest.stdout)
    assert (printed["started"], printed["stopped"], printed["without_source"]) == (STARTED, STOPPED, WITHOUT_SOURCE)
    assert reverse.returncode == 0, reverse.stderr
    swapped = json.loads(reverse.stdout)
    assert swapped["started"]["line_count"] == 6 and swapped["stopped"]["line_count"] == 7
    assert swapped["started"]["files"] == ["app/legacy.py"] and swapped["stopped"]["files"] == ["app/discounts.py"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_cli_errors_are_one_line_without_a_traceback(rendered, moto_endpoint):
    s3, bucket = rendered
    cases = {
        "only one version": (["--bucket", bucket, "--function", "other-fn"], moto_endpoint, "needs two code versions"),
        "no such version": (["--bucket", bucket, "--from", "v0", "--to", "v2"], moto_endpoint, "v0 of shop-fn has no combined data"),
        "not a version": (["--bucket", bucket, "--from", "../x", "--to", "v2"], moto_endpoint, "is not a code version"),
        "nothing older": (["--bucket", bucket, "--to", "v1"], moto_endpoint, "no code version of shop-fn is older than v1"),
        "unreachable": (["--bucket", bucket], f"http://127.0.0.1:{_closed_port()}", "cannot read the coverage bucket"),
    }
    for name, (args, endpoint, message) in cases.items():
        done = _cli(*args, endpoint=endpoint)
        assert done.returncode != 0, name
        assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr, (name, done.stderr)
