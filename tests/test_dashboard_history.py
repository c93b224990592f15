"""The dashboard's indexes under concurrency: reports and refreshes running at once lose nothing, conflicting
writes of history.json are retried after a jittered backoff, and an older index never replaces a newer one."""

from __future__ import annotations

import json
import threading

from fixtures.version_diff.publish import DAYS, publish_day, publish_sources
from lambda_coverage.local.faults import FaultPolicy, commit_conflicts
from lambda_coverage.services.reporter import Group, refresh_dashboard, render_group
from lambda_coverage.services.reporter.dashboard import merge_history

PREFIX = "coverage/"
FUNCTIONS = [f"fn-{n}" for n in range(4)]


def _run_all(targets) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(targets))

    def run(target):
        try:
            start.wait()
            target()
        except BaseException as exc:  # reported below: an assertion in a thread would pass silently
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_reports_and_refreshes_lose_no_function_or_day(s3, bucket, tmp_path):
    for function in FUNCTIONS:
        for version in ("v1", "v2"):
            publish_sources(s3, bucket, PREFIX, version, function=function)
        for date, version, executed in DAYS:
            publish_day(s3, bucket, PREFIX, tmp_path, date, version, executed, function=function)
    refresh_dashboard(s3, bucket, PREFIX)  # history.json exists: the refreshes below only merge indexes
    faults = FaultPolicy([commit_conflicts()])  # every other conditional write of history.json loses

    with faults.attached(s3):
        # Every day group of every function reported at once, then three refreshes at once.
        reports = [lambda f=f, d=d, v=v: render_group(s3, bucket, PREFIX, Group(f, d, v)) for f in FUNCTIONS for d, v, _ in DAYS]
        assert _run_all(reports) == []
        assert _run_all([lambda: refresh_dashboard(s3, bucket, PREFIX)] * 3) == []

    assert faults.injected["s3:PreconditionFailed"] >= 1
    history = json.loads(s3.get_object(Bucket=bucket, Key=PREFIX + "reports/history.json")["Body"].read())
    assert sorted(history["functions"]) == FUNCTIONS
    for function in FUNCTIONS:
        entry = history["functions"][function]
        assert [v["version"] for v in entry["versions"]] == ["v1", "v2"]
        assert [(d["from"], d["to"]) for d in entry["diffs"]] == [("v1", "v2")]
        assert sorted(p["date"] for p in history["points"] if p["function"] == function) == [d for d, _, _ in DAYS]
        page = s3.get_object(Bucket=bucket, Key=f"{PREFIX}reports/functions/{function}.html")["Body"].read().decode()
        assert page.count('<tr class="group"') == len(DAYS)
        # The diff saw every day, whichever report finished last (7 and 6 lines: see test_version_diff).
        diff = json.loads(s3.get_object(Bucket=bucket, Key=f"{PREFIX}reports/diff/{function}/v1/v2.json")["Body"].read())
        assert (diff["started"]["line_count"], diff["stopped"]["line_count"]) == (7, 6)
        assert diff["dates"] == {"v1": ["2026-11-20", "2026-11-21"], "v2": ["2026-11-22"]}
        diff_page = s3.get_object(Bucket=bucket, Key=f"{PREFIX}reports/diff/{function}/v1/v2.html")["Body"].read().decode()
        assert "7 line(s) in 2 file(s)" in diff_page and "6 line(s) in 3 file(s)" in diff_page
        assert [(d["started_lines"], d["stopped_lines"]) for d in entry["diffs"]] == [(7, 6)]
    dashboard = s3.get_object(Bucket=bucket, Key=PREFIX + "reports/index.html")["Body"].read().decode()
    assert all(f'data-function="{function}"' in dashboard for function in FUNCTIONS)


def test_an_older_index_read_by_a_slow_refresh_never_replaces_a_newer_one():
    newer = {"generation": 7, "etag": '"b"', "versions": [{"version": "v2"}]}
    older = {"generation": 5, "etag": '"a"', "versions": [{"version": "v1"}]}
    history = merge_history(None, [], "2026-11-25T10:00:00Z", {"fn": newer})

    merged = merge_history(history, [], "2026-11-25T10:00:01Z", {"fn": older})

    assert merged["functions"]["fn"] == newer
