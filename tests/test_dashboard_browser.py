"""The dashboard in a real browser (Debian's chromium via Playwright), served over HTTP and opened from disk:
no console errors, no broken links, readable at 1280 and 390 px; screenshots of the main pages.

Screenshots go to the test's temporary folder, or to $SCREENSHOTS_DIR when set (docs/screenshots/ is made so).
"""

from __future__ import annotations

import functools
import os
import threading
from datetime import datetime, timezone
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest

from coverage_wrapper import keys
from fixtures.reporter.support import measure_sample_app, publish_combined, publish_sources
from fixtures.version_diff.publish import DAYS, FUNCTION as SHOP, publish_day, publish_sources as publish_shop_sources
from lambda_coverage.services.reporter import Group, refresh_dashboard, render_group, write_daily_rollup
from lambda_coverage.services.settings import PipelineSettings
from lambda_coverage.services.uploader.intake import intake_object

PREFIX = "coverage/"
DATE = "2026-11-23"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTHS = (1280, 390)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the signature http.server calls
        pass


def _download(s3, bucket: str, site: Path) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        for item in page.get("Contents", []):
            if item["Key"].startswith((PREFIX + "raw/", PREFIX + "sources/")):
                continue  # what `lambda-coverage reports` leaves out too
            target = site / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(target))


@pytest.fixture
def downloaded_tree(s3, bucket, tmp_path):
    """Three functions rendered (one with two code versions and a diff), one upload quarantined, the dashboard
    refreshed; then the {p} tree downloaded as `lambda-coverage reports` does."""
    workdir = tmp_path / "measure"
    workdir.mkdir()
    branch, line = measure_sample_app(workdir, branch=True), measure_sample_app(workdir, branch=False)
    summaries = {}
    # Blobs are content-addressed and shared: billing renders before orders uploads the blob billing lacks.
    for function, date, version, sample, skip in (("billing", DATE, "b1", line, ("app/pricing.py",)),
                                                  ("orders", "2026-11-22", "v1", line, ()), ("orders", DATE, "v1", branch, ())):
        publish_sources(s3, bucket, PREFIX, function, version, sample.root, skip_blobs=skip)
        publish_combined(s3, bucket, PREFIX, function, date, version, sample.relative_data)
        summaries[function] = render_group(s3, bucket, PREFIX, Group(function, date, version))
    for version in ("v1", "v2"):
        publish_shop_sources(s3, bucket, PREFIX, version)
    for date, version, executed in DAYS:
        publish_day(s3, bucket, PREFIX, workdir, date, version, executed)
        summaries[SHOP] = render_group(s3, bucket, PREFIX, Group(SHOP, date, version))
    now = datetime.now(timezone.utc)
    settings = PipelineSettings(bucket=bucket, prefix=PREFIX, window_seconds=60, batch_size=10)
    bad = keys.raw_key(PREFIX, "orders", now, "v1", "0badc0de", 1)
    s3.put_object(Bucket=bucket, Key=bad, Body=b"<html>not coverage data</html>")
    assert intake_object(s3, settings, bucket, bad).status == "quarantined"
    write_daily_rollup(s3, bucket, PREFIX, DATE)
    refresh_dashboard(s3, bucket, PREFIX, daily=DATE)
    site = tmp_path / "site"
    _download(s3, bucket, site)
    return site, summaries


def _serve(site: Path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def served(downloaded_tree):
    site, summaries = downloaded_tree
    server = _serve(site)
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


@pytest.fixture
def screenshots(tmp_path) -> Path:
    target = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def watch(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}") if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    page.on("response", lambda response: problems.append(f"HTTP {response.status}: {response.url}") if response.status >= 400 else None)
    return problems


def check_dashboard(page, summaries: dict) -> None:
    assert page.title() == "Lambda coverage dashboard"
    assert page.locator("#functions tr.function").count() == 3
    for function, summary in summaries.items():
        row = page.locator(f'#functions tr.function[data-function="{function}"]')
        assert row.locator("td.percent").inner_text().startswith(f"{summary['percent']:.1f}%")
    assert page.locator("#groups tr.group").count() == 3  # the latest day of each function
    billing_sources = page.locator('#groups tr.group[data-function="billing"] td.unavailable').inner_text()
    assert "1 file(s) without source" in billing_sources
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    badges = page.eval_on_selector_all("img.badge", "images => images.map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert sorted(src for src, _ in badges) == ["badges/billing.svg", "badges/orders.svg", f"badges/{SHOP}.svg"]
    assert all(width > 0 for _, width in badges), badges
    assert page.locator("#functions svg.trend").count() == 3
    shop_trend = page.locator(f'#functions tr.function[data-function="{SHOP}"] svg.trend')
    assert shop_trend.locator("line.version-change").count() == 1 and shop_trend.locator("circle").count() == 3
    assert page.locator('#functions tr.function[data-function="orders"] svg.trend circle').count() == 2
    assert "1 upload(s) quarantined in the last 7 days" in page.locator("#quarantine").inner_text()


def test_dashboard_over_http_leads_to_functions_versions_diffs_and_reports(served, browser):
    base_url, _, summaries = served
    page = browser.new_page()
    page.set_default_timeout(10_000)
    problems = watch(page)
    page.goto(f"{base_url}/{PREFIX}reports/index.html")
    check_dashboard(page, summaries)
    page.locator(f'#functions tr.function[data-function="{SHOP}"] a.function-page').click()
    page.wait_for_load_state("load")
    assert page.title() == f"Coverage of {SHOP}"
    assert page.locator("#versions tr.version").count() == 2 and page.locator("#groups tr.group").count() == 3
    assert page.locator("svg.trend line.version-change").count() == 1
    page.locator('#versions tr.version[data-version="v2"] a.diff').click()
    page.wait_for_load_state("load")
    assert page.title() == f"Version diff of {SHOP}: v1 → v2"
    assert page.get_by_text("total = total * 0.9").first.is_visible()
    page.get_by_role("link", name=SHOP).click()
    page.wait_for_load_state("load")
    page.locator('#groups tr.group[data-version="v1"] a.report').first.click()
    page.wait_for_load_state("load")
    assert page.title().startswith(f"Coverage of {SHOP} v1 on 2026-11-21")
    page.locator("nav.lc-nav a", has_text="Dashboard").click()
    page.wait_for_load_state("load")
    assert page.title() == "Lambda coverage dashboard"
    page.locator("#quarantine a").click()
    page.wait_for_load_state("load")
    assert page.locator("#quarantined tbody tr").count() == 1
    assert "not_sqlite" in page.locator("#quarantined").inner_text()
    reason = page.locator("#quarantined a.reason").get_attribute("href")
    assert page.request.get(urljoin(page.url, reason)).json()["reason"] == "not_sqlite"
    assert problems == []


def test_no_page_links_anywhere_it_cannot_reach(served, browser):
    """Every link and image of the dashboard's pages, and of one coverage.py report, answers 200."""
    base_url, _, _ = served
    page = browser.new_page()
    page.set_default_timeout(10_000)
    problems = watch(page)
    start = f"{base_url}/{PREFIX}reports/index.html"
    queue, seen, checked = [start], {start}, set()
    ours = f"{base_url}/{PREFIX}"
    while queue:
        url = queue.pop(0)
        page.goto(url)
        targets = page.eval_on_selector_all("a[href], img[src], link[href], script[src]",
                                            "els => els.map(e => e.getAttribute('href') || e.getAttribute('src'))")
        for target in targets:
            if target.startswith(("#", "data:", "https://coverage.readthedocs.io/")):
                continue
            absolute = urldefrag(urljoin(url, target))[0]
            assert absolute.startswith(ours), (url, target)
            if absolute not in checked:
                checked.add(absolute)
                assert page.request.get(absolute).status == 200, (url, target)
            crawl = absolute.endswith(".html") and "/html/" not in absolute or absolute.endswith("/html/index.html")
            if crawl and absolute not in seen and len(seen) < 40:
                seen.add(absolute)
                queue.append(absolute)
    assert len(seen) >= 10, sorted(seen)  # dashboard, function pages, diff, quarantine, daily, group reports
    assert problems == []


MAIN_PAGES = {
    "dashboard": "reports/index.html",
    "function": f"reports/functions/{SHOP}.html",
    "diff": f"reports/diff/{SHOP}/v1/v2.html",
    "quarantine": "reports/quarantine.html",
    "daily": f"daily/{DATE}/index.html",
}


@pytest.mark.parametrize("width", WIDTHS)
def test_main_pages_are_readable_at_desktop_and_phone_widths(served, browser, screenshots, width):
    base_url, _, _ = served
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems = watch(page)
    for name, path in MAIN_PAGES.items():
        page.goto(f"{base_url}/{PREFIX}{path}")
        layout = page.evaluate("""() => ({
            overflow: document.documentElement.scrollWidth - window.innerWidth,
            smallest: Math.min(...Array.from(document.querySelectorAll('p, td, th, a, h1, h2')).filter(e => e.offsetParent)
                                .map(e => parseFloat(getComputedStyle(e).fontSize))),
            clipped: Array.from(document.querySelectorAll('h1, p')).filter(e => e.scrollWidth > e.clientWidth + 1).length,
        })""")
        assert layout["overflow"] <= 0, (name, width, layout)  # wide tables scroll inside their box, the page does not
        assert layout["smallest"] >= 12, (name, width, layout)
        assert layout["clipped"] == 0, (name, width, layout)
        page.screenshot(path=str(screenshots / f"{name}-{width}.png"), full_page=True)
    page.goto(f"{base_url}/{PREFIX}combined/{SHOP}/2026-11-22/v2/html/index.html")
    assert page.locator("nav.lc-nav").is_visible()
    if width == WIDTHS[0]:
        page.screenshot(path=str(screenshots / f"report-{width}.png"))
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
    page.locator("nav.lc-nav a", has_text="other days and versions").click()
    page.wait_for_load_state("load")
    assert page.title() == "Coverage of billing"
    assert problems == []


def test_an_empty_dashboard_says_how_to_get_data(s3, bucket, tmp_path, browser, screenshots):
    refresh_dashboard(s3, bucket, PREFIX)
    site = tmp_path / "site"
    _download(s3, bucket, site)
    server = _serve(site)
    try:
        for width in WIDTHS:
            page = browser.new_page(viewport={"width": width, "height": 700})
            problems = watch(page)
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/{PREFIX}reports/index.html")
            text = page.locator("#empty").inner_text()
            assert "No coverage data yet" in text and "COVERAGE_S3_BUCKET" in text and "make demo" in text
            assert page.locator("#functions").count() == 0
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
            page.screenshot(path=str(screenshots / f"empty-{width}.png"), full_page=True)
            assert problems == []
    finally:
        server.shutdown()
        server.server_close()
