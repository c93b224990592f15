"""The reporter against moto S3 with real coverage.py data: numbers equal coverage.py's, source shown, nothing injected."""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import shutil
import sqlite3
import warnings
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from coverage import CoverageData

from coverage_wrapper import keys
from coverage_wrapper.validation import InvalidDataFile
from fixtures.reporter.support import measure_sample_app, publish_combined, publish_sources
from lambda_coverage.services.reporter import Group, refresh_dashboard, render_group, write_daily_rollup
from lambda_coverage.services.settings import normalize_path_prefix
from lambda_coverage.services.reporter.pages import badge_color
from lambda_coverage.services.reporter.render import NOT_ANALYZED, MissingCombinedData

PREFIX = "coverage/"
DATE = "2026-11-23"
HOSTILE = "app/<img src=x onerror=alert(1)>.py"


@pytest.fixture(scope="session")
def measured(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sample-app")
    return {"branch": measure_sample_app(workdir, branch=True), "line": measure_sample_app(workdir, branch=False)}


def get_text(s3, bucket: str, key: str) -> str:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")


def publish(s3, bucket, sample, function="orders", date=DATE, version="v1", **sources) -> str:
    publish_sources(s3, bucket, PREFIX, function, version, sample.root, **sources)
    return publish_combined(s3, bucket, PREFIX, function, date, version, sample.relative_data)


def visible_text(page: str) -> str:
    """What a reader sees: coverage.py's index wraps path separators in spans."""
    return re.sub(r"<[^>]+>", "", page)


def parse_lcov(text: str) -> dict[str, dict[str, int]]:
    records, current = {}, None
    for line in text.splitlines():
        if line.startswith("SF:"):
            current = records.setdefault(line[3:], {})
        elif current is not None and line.split(":")[0] in ("LF", "LH", "BRF", "BRH"):
            name, value = line.split(":")
            current[name] = int(value)
    return records


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])


@pytest.mark.parametrize("mode", ["branch", "line"])
def test_json_report_has_the_numbers_coverage_json_gives_directly(s3, bucket, measured, mode):
    sample = measured[mode]
    base = publish(s3, bucket, sample)
    summary = render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))
    report = json.loads(get_text(s3, bucket, base + "coverage.json"))
    assert report["files"] == sample.expected_json["files"]
    assert report["totals"] == sample.expected_json["totals"]
    assert report["meta"]["branch_coverage"] is sample.branch
    totals = sample.expected_json["totals"]
    assert (summary["statements"], summary["covered"], summary["missing"]) == (
        totals["num_statements"], totals["covered_lines"], totals["missing_lines"])
    assert summary["percent"] == round(totals["percent_covered"], 2)
    assert summary["files"] == len(sample.expected_json["files"]) == 6
    assert summary["raw_files"] == 3
    assert ("branches" in summary) is sample.branch
    if sample.branch:
        assert summary["branches"]["total"] == totals["num_branches"]
        assert summary["branches"]["covered"] == totals["covered_branches"]
    stored = json.loads(get_text(s3, bucket, base + "summary.json"))
    assert stored["percent"] == summary["percent"] and stored["generated_at"].endswith("Z")


@pytest.mark.parametrize("mode", ["branch", "line"])
def test_files_no_invocation_executed_are_reported_at_zero_from_the_source_snapshot(s3, bucket, measured, tmp_path, mode):
    # The layer measures with include patterns, so a module nothing imported is absent from its data;
    # the source snapshot still lists it, and the report must show it as coverage.py's `source` would.
    sample = measured[mode]
    data = tmp_path / "without-unused.sqlite"
    shutil.copyfile(sample.relative_data, data)
    with sqlite3.connect(data) as connection:
        (file_id,) = connection.execute("select id from file where path = 'app/unused.py'").fetchone()
        for table in ("line_bits", "arc", "tracer"):
            connection.execute(f"delete from {table} where file_id = ?", (file_id,))
        connection.execute("delete from file where id = ?", (file_id,))
    publish_sources(s3, bucket, PREFIX, "orders", "v1", sample.root)
    base = publish_combined(s3, bucket, PREFIX, "orders", DATE, "v1", data)
    summary = render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))
    report = json.loads(get_text(s3, bucket, base + "coverage.json"))
    assert report["files"]["app/unused.py"]["executed_lines"] == []
    assert report["files"]["app/unused.py"]["summary"]["num_statements"] > 0
    assert report["totals"] == sample.expected_json["totals"]
    assert summary["files_without_source"] == 0 and summary["files"] == 6


def test_html_report_shows_real_source_escaped(s3, bucket, measured):
    base = publish(s3, bucket, measured["branch"])
    render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))
    index = get_text(s3, bucket, base + "html/index.html")
    assert "app/orders.py" in visible_text(index) and "app/util/markup.py" in visible_text(index)
    parser = Links()
    parser.feed(index)
    pages = {href: get_text(s3, bucket, base + "html/" + href) for href in parser.hrefs if href.startswith("z_")}
    orders = next(text for href, text in pages.items() if href.endswith("_orders_py.html"))
    assert "subtotal" in orders and "discount_for" in orders and "OrderError" in orders
    markup = next(text for href, text in pages.items() if href.endswith("_markup_py.html"))
    assert "&lt;script&gt;alert(" in markup
    assert "<script>alert(" not in markup
    head = s3.head_object(Bucket=bucket, Key=base + "html/index.html")
    assert head["ContentType"].startswith("text/html")


def test_lcov_and_cobertura_parse_with_coverage_py_numbers(s3, bucket, measured):
    sample = measured["branch"]
    base = publish(s3, bucket, sample)
    render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))
    expected = sample.expected_json
    lcov = parse_lcov(get_text(s3, bucket, base + "lcov.info"))
    assert set(lcov) == set(expected["files"])
    for path, record in lcov.items():
        numbers = expected["files"][path]["summary"]
        assert record.get("LF", 0) == numbers["num_statements"]
        assert record.get("LH", 0) == numbers["covered_lines"]
        assert record.get("BRF", 0) == numbers["num_branches"]
    root = ET.fromstring(get_text(s3, bucket, base + "coverage.xml"))
    totals = expected["totals"]
    assert int(root.get("lines-valid")) == totals["num_statements"]
    assert int(root.get("lines-covered")) == totals["covered_lines"]
    assert int(root.get("branches-valid")) == totals["num_branches"]
    assert int(root.get("branches-covered")) == totals["covered_branches"]
    assert [s.text for s in root.iter("source")] == ["."]
    classes = {c.get("filename"): c for c in root.iter("class")}
    assert set(classes) == set(expected["files"])
    hits = {int(line.get("number")) for line in classes["app/orders.py"].iter("line") if int(line.get("hits"))}
    assert hits == set(expected["files"]["app/orders.py"]["executed_lines"])


def test_path_prefix_is_prepended_in_every_report(s3, bucket, measured, moto_endpoint, monkeypatch):
    from lambda_coverage.services.reporter.handler import report_handler

    base = publish(s3, bucket, measured["line"])
    monkeypatch.setenv("COVERAGE_S3_BUCKET", bucket)
    monkeypatch.setenv("COVERAGE_REPORT_PATH_PREFIX", "./src")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    result = report_handler({"function": "orders", "date": DATE, "version": "v1"}, None)
    assert result["summary"]["path_prefix"] == "src/"
    expected = {"src/" + path for path in measured["line"].expected_json["files"]}
    assert set(json.loads(get_text(s3, bucket, base + "coverage.json"))["files"]) == expected
    assert set(parse_lcov(get_text(s3, bucket, base + "lcov.info"))) == expected
    xml_files = {c.get("filename") for c in ET.fromstring(get_text(s3, bucket, base + "coverage.xml")).iter("class")}
    assert xml_files == expected
    assert "src/app/orders.py" in visible_text(get_text(s3, bucket, base + "html/index.html"))


def test_path_prefix_accepts_only_plain_relative_folders():
    assert normalize_path_prefix("") == ""
    assert normalize_path_prefix("src") == normalize_path_prefix("./src/") == "src/"
    assert normalize_path_prefix("services/orders/") == "services/orders/"
    for bad in ("../src", "/abs", "a/<b>", "x/../y"):
        with pytest.raises(ValueError):
            normalize_path_prefix(bad)


def test_missing_blobs_still_write_reports_and_list_files_as_unavailable(s3, bucket, measured):
    sample = measured["branch"]
    base = publish(s3, bucket, sample, skip_blobs=("app/pricing.py",))
    summary = render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))
    report = json.loads(get_text(s3, bucket, base + "coverage.json"))
    assert "app/pricing.py" not in report["files"] and "app/orders.py" in report["files"]
    assert summary["files_without_source"] == 1 and summary["files_with_source"] == 5
    (entry,) = summary["unavailable"]
    assert entry["path"] == "app/pricing.py"
    assert entry["reason"] == "the source blob is missing"
    recorded = CoverageData(basename=str(sample.relative_data))
    recorded.read()
    assert entry["executed_lines"] == sorted(recorded.lines("app/pricing.py"))
    assert set(sample.expected_json["files"]["app/pricing.py"]["executed_lines"]) <= set(entry["executed_lines"])
    assert "executed lines" in summary["note"]
    page = get_text(s3, bucket, base + "html/unavailable.html")
    assert "app/pricing.py" in page and "the source blob is missing" in page
    refresh_dashboard(s3, bucket, PREFIX)
    dashboard = get_text(s3, bucket, PREFIX + "reports/index.html")
    assert "1 file(s) without source" in dashboard
    assert "../combined/orders/2026-11-23/v1/html/unavailable.html" in dashboard


def test_source_coverage_py_cannot_parse_is_listed_as_unavailable(s3, bucket, measured):
    sample = measured["line"]
    base = publish(s3, bucket, sample)
    broken = b"def total(:\n    return <b>\n"
    digest = hashlib.sha256(broken).hexdigest()
    s3.put_object(Bucket=bucket, Key=keys.source_blob_key(PREFIX, digest), Body=broken)
    manifest_key = keys.sources_manifest_key(PREFIX, "orders", "v1")
    manifest = json.loads(get_text(s3, bucket, manifest_key))
    manifest["files"]["app/orders.py"] = {"sha256": digest, "size": len(broken)}
    s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest))
    summary = render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))
    assert summary["files_with_source"] == 5
    assert [(e["path"], e["reason"]) for e in summary["unavailable"]] == [("app/orders.py", NOT_ANALYZED)]
    assert "app/orders.py" not in json.loads(get_text(s3, bucket, base + "coverage.json"))["files"]


def test_without_a_source_snapshot_every_report_is_still_written(s3, bucket, measured):
    base = publish(s3, bucket, measured["line"], manifest=False)
    summary = render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))
    assert summary["percent"] is None and summary["source_snapshot"] is False
    assert summary["files_without_source"] == 6
    assert {e["reason"] for e in summary["unavailable"]} == {"no source snapshot was uploaded for this code version"}
    assert json.loads(get_text(s3, bucket, base + "coverage.json"))["files"] == {}
    assert ET.fromstring(get_text(s3, bucket, base + "coverage.xml")).get("lines-valid") == "0"
    assert get_text(s3, bucket, base + "lcov.info") == ""
    index = get_text(s3, bucket, base + "html/index.html")
    assert "Files without source" in index and "app/orders.py" in index
    refresh_dashboard(s3, bucket, PREFIX)
    assert "n/a" in get_text(s3, bucket, PREFIX + "reports/badges/orders.svg")


def test_hostile_file_names_and_summaries_are_escaped(s3, bucket, measured, tmp_path):
    sample = measured["line"]
    data = tmp_path / "hostile.sqlite"
    data.write_bytes(sample.relative_data.read_bytes())
    with sqlite3.connect(data) as connection:
        file_id = connection.execute("insert into file (path) values (?)", (HOSTILE,)).lastrowid
        connection.execute("insert into line_bits (file_id, context_id, numbits) values (?, 1, ?)", (file_id, b"\x06"))
    publish_sources(s3, bucket, PREFIX, "orders", "v1", sample.root)
    base = publish_combined(s3, bucket, PREFIX, "orders", DATE, "v1", data)
    summary = render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))
    assert summary["files_with_source"] == 6
    (entry,) = summary["unavailable"]
    assert entry == {"path": HOSTILE, "reason": "the file path is not a plain relative path", "executed_lines": [1, 2]}
    page = get_text(s3, bucket, base + "html/unavailable.html")
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
    # A tampered summary of another group reaches the dashboard only as escaped text.
    other = keys.combined_prefix(PREFIX, "billing", DATE, "v2")
    s3.put_object(Bucket=bucket, Key=other + "summary.json", Body=json.dumps({
        "percent": "<script>alert(1)</script>", "generated_at": "<script>alert(2)</script>",
        "statements": "<b>", "raw_files": "<i>", "files_without_source": 1,
        "unavailable": [{"path": "<script>alert(3)</script>"}], "branches": {"total": "<u>"},
    }))
    refresh_dashboard(s3, bucket, PREFIX)
    write_daily_rollup(s3, bucket, PREFIX, DATE)
    for key in (PREFIX + "reports/index.html", PREFIX + f"daily/{DATE}/index.html"):
        text = get_text(s3, bucket, key)
        assert "billing" in text and "<script>alert" not in text and "<b>" not in text and "<img src=x" not in text
    assert "alert" not in get_text(s3, bucket, PREFIX + "reports/history.json")


def test_dashboard_links_badges_and_one_history_point_per_group(s3, bucket, measured):
    publish(s3, bucket, measured["branch"], function="orders", version="v1")
    publish(s3, bucket, measured["line"], function="orders", version="v2", date="2026-11-24")
    publish(s3, bucket, measured["line"], function="billing", version="b1", skip_blobs=("app/orders.py",))
    summaries = {
        group: render_group(s3, bucket, PREFIX, Group(*group))
        for group in (("orders", DATE, "v1"), ("orders", "2026-11-24", "v2"), ("billing", DATE, "b1"))
    }
    write_daily_rollup(s3, bucket, PREFIX, DATE)
    first = refresh_dashboard(s3, bucket, PREFIX)
    second = refresh_dashboard(s3, bucket, PREFIX)
    assert first["groups"] == 3 and first["history_points"] == second["history_points"] == 3
    assert second["functions_changed"] == 0
    rerendered = render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))
    again = refresh_dashboard(s3, bucket, PREFIX)
    assert again["history_points"] == 3 and again["functions_changed"] == 1
    history = json.loads(get_text(s3, bucket, PREFIX + "reports/history.json"))
    orders = [p for p in history["points"] if p["function"] == "orders"]
    assert [(p["version"], p["generated_at"]) for p in orders] == [("v1", rerendered["generated_at"]), ("v2", summaries[("orders", "2026-11-24", "v2")]["generated_at"])]

    index_key = PREFIX + "reports/index.html"
    index = get_text(s3, bucket, index_key)
    for group in (("orders", "2026-11-24", "v2"), ("billing", DATE, "b1")):
        assert f"{summaries[group]['percent']:.1f}%" in index
    existing = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])}
    pages_checked = [index_key, PREFIX + "reports/functions/orders.html", PREFIX + "reports/functions/billing.html",
                     PREFIX + "reports/diff/orders/v1/v2.html", PREFIX + "combined/orders/2026-11-24/v2/html/index.html"]
    links: dict[str, list[str]] = {}
    for key in pages_checked:
        parser = Links()
        parser.feed(get_text(s3, bucket, key))
        links[key] = parser.hrefs
        for link in parser.hrefs + parser.images:
            if link.startswith(("#", "data:", "https://coverage.readthedocs.io/")):  # coverage.py's own footer
                continue
            assert not link.startswith(("/", "http")), link
            assert posixpath.normpath(posixpath.join(posixpath.dirname(key), link.split("#")[0])) in existing, (key, link)
    assert len([h for h in links[index_key] if h.endswith("html/index.html")]) == 2  # the latest day of each function
    assert "../daily/2026-11-23/index.html" in links[index_key] and "../daily/2026-11-24/index.html" not in links[index_key]
    assert "diff/orders/v1/v2.html" in links[index_key] and "functions/orders.html" in links[index_key]
    assert "../diff/orders/v1/v2.html" in links[PREFIX + "reports/functions/orders.html"]
    orders_page = links[PREFIX + "reports/functions/orders.html"]
    assert {"../../combined/orders/2026-11-23/v1/html/index.html", "../../combined/orders/2026-11-24/v2/html/index.html"} <= set(orders_page)
    report_links = links[PREFIX + "combined/orders/2026-11-24/v2/html/index.html"]
    assert {"../../../../../reports/index.html", "../../../../../reports/functions/orders.html"} <= set(report_links)
    badge = ET.fromstring(get_text(s3, bucket, PREFIX + "reports/badges/orders.svg"))
    latest = summaries[("orders", "2026-11-24", "v2")]["percent"]
    assert f"{latest:.0f}%" in "".join(badge.itertext())
    assert badge_color(latest) in get_text(s3, bucket, PREFIX + "reports/badges/orders.svg")
    assert s3.head_object(Bucket=bucket, Key=PREFIX + "reports/badges/orders.svg")["ContentType"] == "image/svg+xml"


def test_badge_colors_follow_the_percentage():
    assert [badge_color(p) for p in (95, 85, 75, 65, 55, 10, None)] == [
        "#4c1", "#97ca00", "#a4a61d", "#dfb317", "#fe7d37", "#e05d44", "#9f9f9f"]


def test_daily_rollup_covers_every_group_of_its_date_only(s3, bucket, measured):
    publish(s3, bucket, measured["branch"], function="orders", version="v1")
    publish(s3, bucket, measured["line"], function="billing", version="b1")
    publish(s3, bucket, measured["line"], function="orders", version="v2", date="2026-11-24")
    a = render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))
    b = render_group(s3, bucket, PREFIX, Group("billing", DATE, "b1"))
    render_group(s3, bucket, PREFIX, Group("orders", "2026-11-24", "v2"))
    rollup = write_daily_rollup(s3, bucket, PREFIX, DATE)
    stored = json.loads(get_text(s3, bucket, PREFIX + f"daily/{DATE}/summary.json"))
    assert stored["totals"] == rollup["totals"]
    assert sorted((g["function"], g["version"]) for g in stored["groups"]) == [("billing", "b1"), ("orders", "v1")]
    assert stored["totals"]["statements"] == a["statements"] + b["statements"]
    assert stored["totals"]["covered"] == a["covered"] + b["covered"]
    assert stored["functions"] == 2
    page = get_text(s3, bucket, PREFIX + f"daily/{DATE}/index.html")
    assert "../../combined/orders/2026-11-23/v1/html/index.html" in page and "v2" not in page


def test_handlers_return_small_json_and_emit_the_coverage_metric(s3, bucket, measured, moto_endpoint, monkeypatch, capsys):
    from lambda_coverage.services.reporter import handler
    from lambda_coverage.services.reporter.handler import dashboard_handler, report_handler

    publish(s3, bucket, measured["branch"])
    monkeypatch.setenv("COVERAGE_S3_BUCKET", bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.delenv("COVERAGE_REPORT_PATH_PREFIX", raising=False)
    result = report_handler({"function": "orders", "date": DATE, "version": "v1", "correlation_id": "exec-42"}, None)
    assert set(result) == {"summary"} and len(json.dumps(result)) < 4096
    assert result["summary"]["function"] == "orders" and result["summary"]["percent"] > 50
    output = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = next(line for line in output if "_aws" in line)
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LambdaCoverage"
    assert emf["function"] == "orders"
    assert emf["CoveragePercent"] in (result["summary"]["percent"], [result["summary"]["percent"]])
    assert handler.logger.get_correlation_id() == "exec-42"
    refreshed = dashboard_handler({"date": DATE}, None)
    assert refreshed["dashboard"]["groups"] == 1 and refreshed["daily"]["groups"] == 1
    s3.head_object(Bucket=bucket, Key=PREFIX + f"daily/{DATE}/index.html")
    assert dashboard_handler({}, None)["dashboard"]["functions"] == 1
    for bad in ({"function": "orders", "date": "2026-13-45", "version": "v1"}, {"function": "../x", "date": DATE, "version": "v1"}, {}):
        with pytest.raises(ValueError), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Powertools warns that a failed invocation published no metric
            report_handler(bad, None)
    with pytest.raises(ValueError):
        dashboard_handler({"date": "yesterday"}, None)


def test_missing_or_hostile_combined_data_is_refused_clearly(s3, bucket, measured, tmp_path):
    with pytest.raises(MissingCombinedData):
        render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))
    data = tmp_path / "trigger.sqlite"
    data.write_bytes(measured["line"].relative_data.read_bytes())
    with sqlite3.connect(data) as connection:
        connection.execute("create trigger t after insert on file begin delete from file; end")
    publish_sources(s3, bucket, PREFIX, "orders", "v1", measured["line"].root)
    publish_combined(s3, bucket, PREFIX, "orders", DATE, "v1", data)
    with pytest.raises(InvalidDataFile, match="hostile_schema"):
        render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))


def test_a_blob_whose_content_does_not_match_its_sha256_is_never_shown(s3, bucket, measured):
    sample = measured["branch"]
    base = publish(s3, bucket, sample)
    manifest = json.loads(get_text(s3, bucket, keys.sources_manifest_key(PREFIX, "orders", "v1")))
    digest = manifest["files"]["app/pricing.py"]["sha256"]
    s3.put_object(Bucket=bucket, Key=keys.source_blob_key(PREFIX, digest), Body=b"def planted():\n    return 'attacker'\n")

    summary = render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))

    assert [(e["path"], e["reason"]) for e in summary["unavailable"]] == [("app/pricing.py", "the source blob does not match its sha256")]
    assert summary["files_with_source"] == 5
    report = json.loads(get_text(s3, bucket, base + "coverage.json"))
    assert report["files"]["app/orders.py"] == sample.expected_json["files"]["app/orders.py"]
    html = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=base + "html/")["Contents"]]
    assert not any("planted" in get_text(s3, bucket, key) for key in html if key.endswith(".html"))


def test_a_manifest_that_names_another_function_is_not_used_for_the_report(s3, bucket, measured):
    sample = measured["line"]
    base = publish(s3, bucket, sample)
    # What a squatter's manifest looks like: its own function's files, at this function's manifest key.
    planted = b"def planted():\n    return 'attacker'\n"
    digest = hashlib.sha256(planted).hexdigest()
    s3.put_object(Bucket=bucket, Key=keys.source_blob_key(PREFIX, digest), Body=planted)
    squatted = {"function": "billing", "code_version": "v1", "files": {"app/orders.py": {"sha256": digest, "size": len(planted)}}}
    s3.put_object(Bucket=bucket, Key=keys.sources_manifest_key(PREFIX, "orders", "v1"), Body=json.dumps(squatted))

    summary = render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))

    assert summary["source_snapshot"] is False and summary["files_with_source"] == 0
    assert {e["reason"] for e in summary["unavailable"]} == {"the source manifest names another function or code version"}
    assert not any(
        "planted" in get_text(s3, bucket, o["Key"])
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=base)["Contents"]
        if o["Key"].endswith((".html", ".json"))
    )


def test_a_manifest_path_that_is_both_a_file_and_a_folder_is_skipped_with_its_reason(s3, bucket, measured):
    sample = measured["branch"]
    base = publish(s3, bucket, sample)
    manifest_key = keys.sources_manifest_key(PREFIX, "orders", "v1")
    manifest = json.loads(get_text(s3, bucket, manifest_key))
    extra = b"x = 1\n"
    s3.put_object(Bucket=bucket, Key=keys.source_blob_key(PREFIX, hashlib.sha256(extra).hexdigest()), Body=extra)
    manifest["files"]["app/orders.py/inner.py"] = {"sha256": hashlib.sha256(extra).hexdigest(), "size": len(extra)}
    manifest["files"]["app/broken.py"] = {"sha256": "not-a-digest"}
    s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest))

    summary = render_group(s3, bucket, PREFIX, Group("orders", DATE, "v1"))

    report = json.loads(get_text(s3, bucket, base + "coverage.json"))
    assert report["files"] == sample.expected_json["files"] and report["totals"] == sample.expected_json["totals"]
    assert summary["skipped_source_entries"] == [
        {"path": "app/broken.py", "reason": "the file is not in the source snapshot"},
        {"path": "app/orders.py/inner.py", "reason": "the source manifest has this path both as a file and as a folder"},
    ]
    assert summary["unavailable"] == []
