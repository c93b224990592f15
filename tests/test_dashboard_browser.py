"""The dashboard in a real browser (Debian's chromium via Playwright), served over HTTP and opened from disk."""

from __future__ import annotations

import functools
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fixtures.reporter.support import measure_sample_app, publish_combined, publish_sources
from lambda_coverage.services.reporter import Group, refresh_dashboard, render_group, write_daily_rollup

PREFIX = "coverage/"
DATE = "2026-11-23"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the signature http.server calls
        pass


@pytest.fixture
def downloaded_tree(s3, bucket, tmp_path):
    """Two functions rendered and the dashboard refreshed, then the whole {p} tree downloaded to a local folder."""
    workdir = tmp_path / "measure"
    workdir.mkdir()
    branch, line = measure_sample_app(workdir, branch=True), measure_sample_app(workdir, branch=False)
    summaries = {}
    # Blobs are content-addressed and shared: billing renders before orders uploads the blob billing lacks.
    for function, version, sample, skip in (("billing", "b1", line, ("app/pricing.py",)), ("orders", "v1", branch, ())):
        publish_sources(s3, bucket, PREFIX, function, version, sample.root, skip_blobs=skip)
        publish_combined(s3, bucket, PREFIX, function, DATE, version, sample.relative_data)
        summaries[function] = render_group(s3, bucket, PREFIX, Group(function, DATE, version))
    write_daily_rollup(s3, bucket, PREFIX, DATE)
    refresh_dashboard(s3, bucket, PREFIX)
    site = tmp_path / "site"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        for item in page.get("Contents", []):
            target = site / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(target))
    return site, summaries


@pytest.fixture
def served(downloaded_tree):
    site, summaries = downloaded_tree
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", site, summaries
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "chromium must be installed (apt-get install -y chromium)"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def watch(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}") if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    page.on("response", lambda response: problems.append(f"HTTP {response.status}: {response.url}") if response.status >= 400 else None)
    return problems


def check_dashboard(page, summaries: dict) -> None:
    assert page.title() == "Lambda coverage dashboard"
    rows = page.locator("#groups tr.group")
    assert rows.count() == 2
    for function, summary in summaries.items():
        row = page.locator(f'#groups tr.group[data-function="{function}"]')
        assert row.locator("td.percent").inner_text().startswith(f"{summary['percent']:.1f}%")
        assert row.locator("td").first.inner_text() == function
    billing_sources = page.locator('#groups tr.group[data-function="billing"] td.unavailable').inner_text()
    assert "1 file(s) without source" in billing_sources
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    badges = page.eval_on_selector_all("img.badge", "images => images.map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert sorted(src for src, _ in badges) == ["badges/billing.svg", "badges/orders.svg"]
    assert all(width > 0 for _, width in badges), badges
    assert page.locator("#functions svg.trend").count() == 2


def test_dashboard_over_http_lists_functions_and_opens_reports(served, browser):
    base_url, _, summaries = served
    page = browser.new_page()
    page.set_default_timeout(10_000)
    problems = watch(page)
    page.goto(f"{base_url}/{PREFIX}reports/index.html")
    check_dashboard(page, summaries)
    page.locator('#groups tr.group[data-function="orders"] a.report').click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/coverage/combined/orders/2026-11-23/v1/html/index.html")
    assert "Coverage of orders v1 on 2026-11-23" in page.title()
    assert page.get_by_role("link", name="app/orders.py").is_visible()
    page.get_by_role("link", name="app/orders.py").click()
    page.wait_for_load_state("load")
    assert page.get_by_text("subtotal -= discount_for").first.is_visible()
    page.goto(f"{base_url}/{PREFIX}reports/index.html")
    page.get_by_role("link", name=DATE).click()
    page.wait_for_load_state("load")
    assert page.title() == f"Coverage on {DATE}"
    assert page.locator("#groups tr.group").count() == 2
    assert problems == []


def test_dashboard_opened_from_disk_follows_relative_links(served, browser):
    _, site, summaries = served
    page = browser.new_page()
    page.set_default_timeout(10_000)
    problems = watch(page)
    page.goto((site / PREFIX / "reports" / "index.html").as_uri())
    check_dashboard(page, summaries)
    page.locator('#groups tr.group[data-function="billing"] td.unavailable a').click()
    page.wait_for_load_state("load")
    assert page.title().startswith("Files without source")
    assert "app/pricing.py" in page.locator("table").inner_text()
    page.go_back()
    page.locator('#groups tr.group[data-function="billing"] a.report').click()
    page.wait_for_load_state("load")
    assert Path(page.url.removeprefix("file://")).as_posix().endswith("combined/billing/2026-11-23/b1/html/index.html")
    assert page.get_by_role("link", name="app/orders.py").is_visible()
    assert problems == []
