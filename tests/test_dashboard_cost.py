"""The dashboard's cost does not grow with history: a report and a refresh make the same S3 requests with 10 or
1,000 day groups behind them, and what the dashboard keeps stays bounded."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

from coverage_wrapper import datafile, keys
from fixtures.version_diff.publish import publish_day, publish_sources
from lambda_coverage.services.reporter import Group, refresh_dashboard, render_group
from lambda_coverage.services.reporter.function_index import MAX_DAYS

PREFIX = "coverage/"
FIRST_DAY = date(2026, 8, 1)


class S3Requests:
    """Every S3 API call a client makes (botocore's before-call event), by operation."""

    def __init__(self, client) -> None:
        self.client, self.counts, self._lock = client, Counter(), threading.Lock()

    def _count(self, model, **_) -> None:
        with self._lock:
            self.counts[model.name] += 1

    def __enter__(self) -> Counter:
        self.client.meta.events.register("before-call.s3", self._count)
        return self.counts

    def __exit__(self, *exc) -> None:
        self.client.meta.events.unregister("before-call.s3", self._count)


def _seed_history(s3, bucket: str, functions: int, days: int, scratch: Path) -> None:
    """`functions` × `days` day groups as earlier combines and reports left them: data, summary, an HTML page."""
    data = scratch / "seed.sqlite"
    datafile.write_data_file(str(data), lines={"app/handler.py": [1, 4]})
    body = data.read_bytes()

    def put_group(item: tuple[int, int]) -> None:
        number, day = item
        when = (FIRST_DAY + timedelta(days=day)).isoformat()
        base = keys.combined_prefix(PREFIX, f"fn{number:03d}", when, "v1")
        summary = {"percent": 50.0 + day % 40, "covered": 10, "statements": 20, "raw_files": 3, "files": 1,
                   "files_without_source": 0, "generated_at": f"{when}T12:00:00Z"}
        s3.put_object(Bucket=bucket, Key=base + "coverage.sqlite", Body=body)
        s3.put_object(Bucket=bucket, Key=base + "summary.json", Body=json.dumps(summary))
        s3.put_object(Bucket=bucket, Key=base + "html/index.html", Body=b"<!DOCTYPE html><title>old</title>")

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put_group, [(n, d) for n in range(functions) for d in range(days)]))


def _report_then_refresh(s3, bucket: str, functions: int, days: int, scratch: Path) -> tuple[Counter, Counter, dict]:
    """History of the given size, one new version reported on two days, then the requests of one more report
    (with new lines, so the diff is rewritten) and of the refresh after it."""
    _seed_history(s3, bucket, functions, days, scratch)
    refresh_dashboard(s3, bucket, PREFIX)  # indexes the groups rendered before the dashboard had indexes
    for version in ("v1", "v2"):
        publish_sources(s3, bucket, PREFIX, version, function="fn000")
    later = [(FIRST_DAY + timedelta(days=days + n)).isoformat() for n in range(3)]
    warm_up = [(later[0], "v1", {"app/handler.py": [1, 4, 5, 6]}), (later[1], "v2", {"app/handler.py": [1, 4, 15, 16]})]
    for when, version, executed in warm_up:
        publish_day(s3, bucket, PREFIX, scratch, when, version, executed, function="fn000")
        render_group(s3, bucket, PREFIX, Group("fn000", when, version))
    refresh_dashboard(s3, bucket, PREFIX)
    publish_day(s3, bucket, PREFIX, scratch, later[2], "v2", {"app/handler.py": [1, 4, 5, 8, 15, 16, 17]}, function="fn000")
    with S3Requests(s3) as report:
        render_group(s3, bucket, PREFIX, Group("fn000", later[2], "v2"))
    with S3Requests(s3) as refresh:
        result = refresh_dashboard(s3, bucket, PREFIX)
    assert result["functions_changed"] == 1
    history = json.loads(s3.get_object(Bucket=bucket, Key=PREFIX + "reports/history.json")["Body"].read())
    return report, refresh, history


def test_a_report_and_a_refresh_cost_the_same_with_10_or_1000_groups_behind_them(s3, tmp_path):
    small_bucket, large_bucket = "cost-small-groups", "cost-large-groups"
    for name in (small_bucket, large_bucket):
        s3.create_bucket(Bucket=name)
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()

    small = _report_then_refresh(s3, small_bucket, functions=2, days=5, scratch=tmp_path / "small")
    large = _report_then_refresh(s3, large_bucket, functions=20, days=50, scratch=tmp_path / "large")

    assert small[0] == large[0], (small[0], large[0])  # the report step, diff included
    assert small[1] == large[1], (small[1], large[1])  # the refresh
    # Lists: the indexes, the quarantine. Reads: history.json (before, and in its conditional write), the changed
    # index, the quarantine cache. Writes: history.json, the function's page and badge, the dashboard.
    assert large[1] == {"ListObjectsV2": 2, "GetObject": 4, "PutObject": 4}
    history = large[2]
    assert len(history["functions"]) == 20
    assert len(history["points"]) <= 20 * MAX_DAYS
    per_function = Counter(p["function"] for p in history["points"])
    assert per_function["fn001"] == MAX_DAYS  # 50 days of history, the newest 30 kept
    index = json.loads(s3.get_object(Bucket=large_bucket, Key=PREFIX + "reports/index/fn001.json")["Body"].read())
    assert len(index["groups"]) == MAX_DAYS and index["versions"]["v1"]["days"] == 50
