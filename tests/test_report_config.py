"""The function's own coverage.py config (pyproject.toml, .coveragerc, setup.cfg, tox.ini) shapes its reports as
`coverage report` would in its folder; [run] options, plugins and the reporter's environment never reach them."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from coverage_wrapper import keys
from coverage_wrapper.config import parse_config
from coverage_wrapper.datafile import relativize
from coverage_wrapper.outbox import Outbox
from coverage_wrapper.shipper import Destination, drain, upload_snapshot
from coverage_wrapper.sources import (
    CONFIG_FILES,
    MAX_CONFIG_BYTES,
    code_version,
    scan_config,
    scan_sources,
)
from lambda_coverage.services.combiner import CombineRequest, commit, merge_batch, plan
from lambda_coverage.services.combiner import Group as CombineGroup
from lambda_coverage.services.reporter import (
    Group,
    SourceSnapshot,
    build_reports,
    render_group,
)
from lambda_coverage.services.reporter.report_config import read_report_config
from lambda_coverage.services.reporter.sources import (
    BLOB_MISMATCH,
    BLOB_MISSING,
    CONFIG_TOO_LARGE,
)
from lambda_coverage.services.settings import PipelineSettings
from lambda_coverage.services.uploader.intake import intake_object
from layer_harness import FIXTURES, layer_env, run_function

PREFIX = "coverage/"
FUNCTION = "orders-fn"

ORDERS = '''\
from coverage_wrapper import coverage_handler

from typing import TYPE_CHECKING

from legacy.old import old_price
from pricing import price

if TYPE_CHECKING:
    from decimal import Decimal

DEBUG = False


class Order:
    def __init__(self, total):
        self.total = total

    def __repr__(self):
        return f"Order({self.total})"


def describe(order):
    if DEBUG:
        print("describing", order)
    if order.total > 100:
        return "big"
    return "small"


@coverage_handler
def lambda_handler(event, context):
    if event.get("legacy"):
        return {"total": old_price(event["items"])}
    order = Order(price(event["items"]))
    return {"total": order.total, "size": describe(order)}
'''
PRICING = '''\
def price(items):
    total = 0
    for item in items:
        if item.get("free"):
            continue
        total += item["qty"] * item["unit"]
    return total


def refund(total):
    raise NotImplementedError
'''
OLD = '''\
def old_price(items):
    if not items:
        return 0
    return sum(item["qty"] for item in items)
'''
PYPROJECT = '''\
[project]
name = "orders"

[tool.coverage.run]
branch = true

[tool.coverage.report]
exclude_also = ["if TYPE_CHECKING:", "def __repr__", "raise NotImplementedError"]
partial_branches = ["if DEBUG:"]
omit = ["legacy/*"]
precision = 1
'''
SMALL = {"items": [{"qty": 2, "unit": 3}]}
BIG = {"items": [{"qty": 50, "unit": 3}, {"free": True}]}
LEGACY = {"legacy": True, "items": [{"qty": 1, "unit": 1}]}
ENVIRONMENTS = [[SMALL, LEGACY], [BIG, SMALL]]


def write_app(root: Path, config: dict[str, str]) -> Path:
    (root / "legacy").mkdir(parents=True)
    (root / "orders.py").write_text(ORDERS)
    (root / "pricing.py").write_text(PRICING)
    (root / "legacy" / "__init__.py").write_text('"""Prices from before."""\n')
    (root / "legacy" / "old.py").write_text(OLD)
    for name, text in config.items():
        (root / name).write_text(textwrap.dedent(text))
    return root


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ship(app: Path, tmp_path: Path, bucket: str, moto_endpoint: str) -> list[str]:
    """Each execution environment runs the function with the layer in its own process; its outbox is then
    shipped by the layer's own shipper (raw files, then the source snapshot), as the extension would."""
    uploaded = []
    for number, events in enumerate(ENVIRONMENTS):
        outbox = tmp_path / f"outbox-{number}"
        env = layer_env(app, tmp_path, AWS_LAMBDA_FUNCTION_NAME=FUNCTION, COVERAGE_OUTBOX_DIR=str(outbox),
                        COVERAGE_S3_BUCKET=bucket, AWS_ENDPOINT_URL=f"http://127.0.0.1:{_closed_port()}",
                        COVERAGE_UPLOAD_TIMEOUT="2")
        results = run_function("orders.lambda_handler", events, env)
        assert all("result" in r for r in results) and len(results) == len(events), results
        os.environ["AWS_ENDPOINT_URL"] = moto_endpoint
        try:
            config = parse_config({"COVERAGE_S3_BUCKET": bucket, "COVERAGE_OUTBOX_DIR": str(outbox)})
            summary = drain(Outbox(config.outbox_dir), config, everything=True)
        finally:
            del os.environ["AWS_ENDPOINT_URL"]
        assert summary["remaining"] == 0 and summary["uploaded"], summary
        uploaded += summary["uploaded"]
    return uploaded


def combine_and_report(s3, bucket: str, raw_keys: list[str]) -> tuple[dict, str]:
    """Intake each upload, then the combine's plan, batch merges and commit, then the group's reports."""
    settings = PipelineSettings(bucket=bucket, prefix=PREFIX, window_seconds=60, batch_size=2)
    assert all(intake_object(s3, settings, bucket, key).as_dict()["status"] == "valid" for key in raw_keys)
    raw = keys.parse_raw_key(raw_keys[0], PREFIX)
    request = {"function": raw.function, "date": raw.date, "version": raw.version, "mode": "window"}
    for planned in plan(s3, settings, CombineRequest.parse(request))["groups"]:
        group = CombineGroup.from_dict(planned)
        for index in planned["batches"]:
            merge_batch(s3, settings, group, planned["token"], index, planned["rebuild"])
        commit(s3, settings, group, planned["token"], planned["rebuild"])
    summary = render_group(s3, bucket, PREFIX, Group(raw.function, raw.date, raw.version))
    return summary, keys.combined_prefix(PREFIX, raw.function, raw.date, raw.version)


def coverage_directly(app: Path, tmp_path: Path) -> tuple[dict, str]:
    """The oracle: coverage.py alone measures the same events, then `coverage json` and `coverage report` run
    in the function's folder, reading its config file themselves."""
    data = tmp_path / "direct.coverage"
    env = layer_env(app, tmp_path, COVERAGE_ENABLED="false")
    events = [event for environment in ENVIRONMENTS for event in environment]
    subprocess.run([sys.executable, str(FIXTURES / "measure_directly.py"), str(app), "orders.lambda_handler",
                    json.dumps(events), str(data)], env=env, cwd=app, check=True, capture_output=True)
    out = tmp_path / "direct.json"
    subprocess.run([sys.executable, "-m", "coverage", "json", f"--data-file={data}", "-o", str(out)],
                   env=env, cwd=app, check=True, capture_output=True)
    text = subprocess.run([sys.executable, "-m", "coverage", "report", f"--data-file={data}"],
                          env=env, cwd=app, check=True, capture_output=True, text=True).stdout
    return json.loads(out.read_text()), text


def get_json(s3, bucket: str, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_config_files_are_looked_for_in_coverage_pys_own_order(monkeypatch):
    from coverage.config import config_files_to_try

    monkeypatch.delenv("COVERAGE_RCFILE", raising=False)
    assert CONFIG_FILES == tuple(name for name, _, _ in config_files_to_try(True))


def test_combined_report_with_the_functions_pyproject_equals_coverage_run_in_its_folder(s3, bucket, moto_endpoint, tmp_path):
    app = write_app(tmp_path / "app", {"pyproject.toml": PYPROJECT})
    raw_keys = ship(app, tmp_path, bucket, moto_endpoint)

    summary, base = combine_and_report(s3, bucket, raw_keys)
    expected, text_report = coverage_directly(app, tmp_path)

    # The snapshot carries the config apart from the measured files, which alone make the code version.
    version = keys.parse_raw_key(raw_keys[0], PREFIX).version
    manifest = get_json(s3, bucket, keys.sources_manifest_key(PREFIX, FUNCTION, version))
    assert version == code_version(scan_sources(str(app)))
    assert set(manifest["files"]) == {"orders.py", "pricing.py", "legacy/__init__.py", "legacy/old.py"}
    assert manifest["config"] == {"pyproject.toml": {"sha256": scan_config(str(app))[0].sha256, "size": len(PYPROJECT)}}

    report = get_json(s3, bucket, base + "coverage.json")
    assert report["files"] == expected["files"]
    assert report["totals"] == expected["totals"]
    # What the config changes, so the equality above is not that of two unconfigured reports.
    assert set(report["files"]) == {"orders.py", "pricing.py"}
    assert report["totals"]["percent_covered_display"].count(".") == 1
    assert len(report["files"]["orders.py"]["excluded_lines"]) >= 4 and report["files"]["pricing.py"]["excluded_lines"]
    assert report["totals"]["num_partial_branches"] == 0
    total_line = next(line for line in text_report.splitlines() if line.startswith("TOTAL"))
    assert total_line.split()[-1] == summary["percent_display"] + "%"
    lcov = s3.get_object(Bucket=bucket, Key=base + "lcov.info")["Body"].read().decode()
    xml = s3.get_object(Bucket=bucket, Key=base + "coverage.xml")["Body"].read().decode()
    assert "legacy" not in lcov and "legacy" not in xml and "SF:orders.py" in lcov
    stored = get_json(s3, bucket, base + "summary.json")
    assert stored["report_config"] == {
        "file": "pyproject.toml",
        "options": {"exclude_also": ["if TYPE_CHECKING:", "def __repr__", "raise NotImplementedError"],
                    "partial_branches": ["if DEBUG:"], "omit": ["legacy/*"], "precision": 1},
        "ignored": None,
        "warnings": [],
    }
    assert stored["unavailable"] == []


def measure_locally(app: Path, tmp_path: Path) -> Path:
    """coverage.py data of the app's events with paths relative to its root, as the combiner leaves them."""
    data = tmp_path / "local.coverage"
    events = [event for environment in ENVIRONMENTS for event in environment]
    subprocess.run([sys.executable, str(FIXTURES / "measure_directly.py"), str(app), "orders.lambda_handler",
                    json.dumps(events), str(data)], env=layer_env(app, tmp_path, COVERAGE_ENABLED="false"),
                   cwd=app, check=True, capture_output=True)
    relativize(str(data), str(app))
    return data


def report_locally(app: Path, data: Path, out: Path) -> tuple[dict, dict]:
    """The reporter on local sources (as `lambda-coverage combine --source-root` runs it): summary and coverage.json."""
    snapshot = SourceSnapshot(root=str(app), manifest_found=True)
    snapshot.available = {f.relative_path: f.absolute_path for f in scan_sources(str(app))}
    summary = build_reports(str(data), snapshot, str(out), Group("orders-fn", "2026-11-23", "v1"))
    return summary, json.loads((out / "coverage.json").read_text())


EVIL_PLUGIN = '''\
import pathlib
pathlib.Path(__file__).with_name("plugin-was-loaded").write_text("loaded")


def coverage_init(reg, options):
    pathlib.Path(__file__).with_name("plugin-was-initialized").write_text("initialized")
'''


def test_run_options_plugins_and_the_reporters_environment_never_reach_a_report(tmp_path, monkeypatch):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "evil_plugin.py").write_text(EVIL_PLUGIN)
    monkeypatch.syspath_prepend(str(plugins))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-of-the-reporter")
    plain = write_app(tmp_path / "plain", {})
    hostile = write_app(tmp_path / "hostile", {".coveragerc": f"""\
        [run]
        plugins = evil_plugin
        branch = false
        data_file = {tmp_path}/elsewhere/.coverage
        source = nowhere
        concurrency = bogus
        debug = trace,config
        debug_file = {tmp_path}/debug.log
        [evil_plugin]
        option = 1
        [report]
        exclude_also =
            def __repr__
            ${{AWS_SECRET_ACCESS_KEY}}
        precision = 100000
        """})
    data = measure_locally(plain, tmp_path)

    summary, report = report_locally(hostile, data, tmp_path / "hostile-out")
    _, unconfigured = report_locally(plain, data, tmp_path / "plain-out")

    assert not (plugins / "plugin-was-loaded").exists() and not (plugins / "plugin-was-initialized").exists()
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "debug.log").exists()
    # Branches still come from the data, not from `branch = false`; precision past the bound is not applied.
    assert report["meta"]["branch_coverage"] is True and report["totals"]["num_branches"] > 0
    assert "." not in report["totals"]["percent_covered_display"]
    # The only difference: the __repr__ lines the config excludes. $AWS_SECRET_ACCESS_KEY expanded to nothing.
    assert report["totals"]["excluded_lines"] == unconfigured["totals"]["excluded_lines"] + 2
    assert summary["report_config"]["options"] == {"exclude_also": ["def __repr__"]}
    assert summary["report_config"]["warnings"] == ["precision 100000 is not applied: it must be 0 to 10"]
    assert "s3cr3t" not in (tmp_path / "hostile-out" / "summary.json").read_text()


@pytest.mark.parametrize("config, reason", [
    ({"pyproject.toml": "[tool.coverage.report\nprecision = 1\n"}, "coverage.py cannot read pyproject.toml: Couldn't read config file pyproject.toml"),
    ({".coveragerc": "[report]\nexclude_lines = ( ${AWS_SECRET_ACCESS_KEY}\n"}, "coverage.py cannot read .coveragerc: Invalid [report].exclude_lines value '('"),
    ({"setup.cfg": "[coverage:report]\nprecision = many\n"}, "coverage.py cannot read setup.cfg: Couldn't read config file setup.cfg"),
    ({"tox.ini": "[coverage:report]\nexclude_also = ${UNSET_IN_THE_REPORTER?}\n"}, "coverage.py cannot read tox.ini: Variable UNSET_IN_THE_REPORTER is undefined"),
    ({"setup.cfg": "\xff\xfe not text"}, "coverage.py cannot read setup.cfg: 'utf-8' codec can't decode"),
])
def test_a_config_coverage_py_cannot_read_is_ignored_with_the_reason(tmp_path, monkeypatch, config, reason):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-of-the-reporter")
    plain = write_app(tmp_path / "plain", {})
    broken = write_app(tmp_path / "broken", {})
    for name, text in config.items():
        (broken / name).write_bytes(text.encode("latin-1"))
    data = measure_locally(plain, tmp_path)

    summary, report = report_locally(broken, data, tmp_path / "out")
    _, unconfigured = report_locally(plain, data, tmp_path / "plain-out")

    assert report["files"] == unconfigured["files"] and report["totals"] == unconfigured["totals"]
    assert summary["report_config"]["options"] == {}
    assert summary["report_config"]["ignored"].startswith(reason), summary["report_config"]["ignored"]
    assert str(tmp_path) not in summary["report_config"]["ignored"] and "s3cr3t" not in summary["report_config"]["ignored"]


def _precision_with(tmp_path: Path, files: dict[str, str]) -> tuple[int, int]:
    """The precision coverage.py itself reads in a folder, and the one the reporter reads there."""
    from coverage.config import read_coverage_config

    folder = tmp_path / "layout"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    previous = os.getcwd()
    os.chdir(folder)
    try:
        theirs = read_coverage_config(config_file=True, warn=lambda message: None).precision
    finally:
        os.chdir(previous)
    return theirs, read_report_config(str(folder)).options.get("report:precision", 0)


RC = "[report]\nprecision = 1\n"
RC_TOML = "[report]\nprecision = 2\n"
SETUP = "[coverage:report]\nprecision = 3\n"
TOX = "[coverage:report]\nprecision = 4\n"
PYPROJECT_ONLY = "[tool.coverage.report]\nprecision = 5\n"


@pytest.mark.parametrize("files", [
    {".coveragerc": RC, ".coveragerc.toml": RC_TOML, "setup.cfg": SETUP, "tox.ini": TOX, "pyproject.toml": PYPROJECT_ONLY},
    {".coveragerc.toml": RC_TOML, "setup.cfg": SETUP, "pyproject.toml": PYPROJECT_ONLY},
    {"setup.cfg": SETUP, "tox.ini": TOX, "pyproject.toml": PYPROJECT_ONLY},
    {"setup.cfg": "[metadata]\nname = orders\n", "tox.ini": TOX, "pyproject.toml": PYPROJECT_ONLY},
    {"setup.cfg": "[metadata]\nname = orders\n", "tox.ini": "[tox]\nenvlist = py312\n", "pyproject.toml": PYPROJECT_ONLY},
    {".coveragerc": "# nothing set: coverage.py still stops here\n", "pyproject.toml": PYPROJECT_ONLY},
    {"pyproject.toml": "[project]\nname = 'orders'\n"},
], ids=["all", "rc-toml", "setup-cfg", "tox", "pyproject", "empty-coveragerc", "none"])
def test_the_config_file_used_is_the_one_coverage_py_itself_would_use(tmp_path, monkeypatch, files):
    monkeypatch.delenv("COVERAGE_RCFILE", raising=False)
    theirs, ours = _precision_with(tmp_path, files)
    assert ours == theirs


def test_exclude_lines_replaces_coverage_pys_defaults_as_in_the_functions_folder(tmp_path):
    app = write_app(tmp_path / "app", {"setup.cfg": "[coverage:report]\nexclude_lines =\n    def __repr__\n"})
    (app / "pricing.py").write_text(PRICING.replace("    raise NotImplementedError", "    raise NotImplementedError  # pragma: no cover"))
    data = measure_locally(app, tmp_path)
    summary, report = report_locally(app, data, tmp_path / "out")
    direct = tmp_path / "direct.json"
    direct_data = tmp_path / "direct.coverage"
    subprocess.run([sys.executable, str(FIXTURES / "measure_directly.py"), str(app), "orders.lambda_handler",
                    json.dumps([SMALL]), str(direct_data)], env=layer_env(app, tmp_path, COVERAGE_ENABLED="false"),
                   cwd=app, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "coverage", "json", f"--data-file={direct_data}", "-o", str(direct)],
                   cwd=app, check=True, capture_output=True)
    theirs = json.loads(direct.read_text())
    # "# pragma: no cover" no longer excludes (the defaults are replaced), __repr__ does: as coverage.py says.
    assert report["files"]["pricing.py"]["excluded_lines"] == theirs["files"]["pricing.py"]["excluded_lines"] == []
    assert report["files"]["orders.py"]["excluded_lines"] == theirs["files"]["orders.py"]["excluded_lines"] != []
    assert summary["report_config"]["options"] == {"exclude_lines": ["def __repr__"]}


def test_an_omit_that_leaves_out_every_file_gives_empty_reports_with_the_reason(tmp_path):
    app = write_app(tmp_path / "app", {"pyproject.toml": '[tool.coverage.report]\nomit = ["*"]\n'})
    data = measure_locally(app, tmp_path)
    summary, report = report_locally(app, data, tmp_path / "out")
    assert report["files"] == {} and summary["files"] == 0 and summary["unavailable"] == []
    assert "leaves out every measured file" in summary["report_config"]["note"]
    assert "leaves out every measured file" in (tmp_path / "out" / "html" / "index.html").read_text()


def test_an_omitted_file_without_source_is_not_listed_as_unavailable(tmp_path):
    app = write_app(tmp_path / "app", {"pyproject.toml": '[tool.coverage.report]\nomit = ["legacy/*"]\n'})
    data = measure_locally(app, tmp_path)
    snapshot = SourceSnapshot(root=str(app), manifest_found=True)
    snapshot.available = {f.relative_path: f.absolute_path for f in scan_sources(str(app)) if f.relative_path != "pricing.py"}
    snapshot.unavailable = {"pricing.py": BLOB_MISSING}
    del snapshot.available["legacy/old.py"]  # executed, without source, and omitted by the config
    summary = build_reports(str(data), snapshot, str(tmp_path / "out"), Group("orders-fn", "2026-11-23", "v1"))
    assert [entry["path"] for entry in summary["unavailable"]] == ["pricing.py"]


def _snapshot(s3, bucket: str, app: Path, tmp_path: Path, version: str = "v1") -> None:
    """The layer's own snapshot upload of `app` (measured files and config files)."""
    upload_snapshot(s3, Destination(bucket, PREFIX), Outbox(str(tmp_path / f"outbox-{version}")), FUNCTION, version,
                    scan_sources(str(app)), config=tuple(scan_config(str(app))))


def _render(s3, bucket: str, app: Path, tmp_path: Path, version: str = "v1") -> dict:
    data = measure_locally(app, tmp_path)
    base = keys.combined_prefix(PREFIX, FUNCTION, "2026-11-23", version)
    s3.put_object(Bucket=bucket, Key=base + "coverage.sqlite", Body=data.read_bytes())
    return render_group(s3, bucket, PREFIX, Group(FUNCTION, "2026-11-23", version))


def test_a_config_blob_that_is_missing_or_altered_is_not_applied_nor_is_a_file_behind_it(s3, bucket, tmp_path):
    app = write_app(tmp_path / "app", {".coveragerc": "[report]\nprecision = 1\n",
                                       "pyproject.toml": "[tool.coverage.report]\nprecision = 3\n"})
    _snapshot(s3, bucket, app, tmp_path)
    rc = next(f for f in scan_config(str(app)) if f.relative_path == ".coveragerc")
    assert _render(s3, bucket, app, tmp_path)["report_config"]["options"] == {"precision": 1}

    s3.delete_object(Bucket=bucket, Key=keys.source_blob_key(PREFIX, rc.sha256))
    summary = _render(s3, bucket, app, tmp_path)
    # Not pyproject.toml's precision either: coverage.py would have used the .coveragerc.
    assert summary["report_config"] == {"file": ".coveragerc", "options": {}, "warnings": [],
                                        "ignored": f".coveragerc is not applied: {BLOB_MISSING}"}
    assert "." not in summary["percent_display"]

    s3.put_object(Bucket=bucket, Key=keys.source_blob_key(PREFIX, rc.sha256), Body=b"[report]\nprecision = 4\n")
    assert _render(s3, bucket, app, tmp_path)["report_config"]["ignored"] == f".coveragerc is not applied: {BLOB_MISMATCH}"


def test_a_config_file_past_the_size_cap_is_listed_by_size_and_reported_as_not_applied(s3, bucket, tmp_path):
    padding = "# " + "x" * 78 + "\n"
    big = "[tool.coverage.report]\nprecision = 2\n" + padding * (MAX_CONFIG_BYTES // len(padding) + 1)
    app = write_app(tmp_path / "app", {"pyproject.toml": big})
    _snapshot(s3, bucket, app, tmp_path)
    manifest = get_json(s3, bucket, keys.sources_manifest_key(PREFIX, FUNCTION, "v1"))
    assert manifest["config"] == {"pyproject.toml": {"size": len(big)}}
    summary = _render(s3, bucket, app, tmp_path)
    assert summary["report_config"]["ignored"] == f"pyproject.toml is not applied: {CONFIG_TOO_LARGE}"


def test_only_coverage_pys_config_file_names_are_written_from_a_manifest(s3, bucket, tmp_path):
    app = write_app(tmp_path / "app", {})
    _snapshot(s3, bucket, app, tmp_path)
    key = keys.sources_manifest_key(PREFIX, FUNCTION, "v1")
    manifest = get_json(s3, bucket, key)
    content = b"[report]\nprecision = 2\n"
    digest = hashlib.sha256(content).hexdigest()
    s3.put_object(Bucket=bucket, Key=keys.source_blob_key(PREFIX, digest), Body=content)
    manifest["config"] = {"../.coveragerc": {"sha256": digest, "size": len(content)}, "sub/.coveragerc": {"sha256": digest}}
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest))
    summary = _render(s3, bucket, app, tmp_path)
    assert summary["report_config"] == {"file": None, "options": {}, "ignored": None, "warnings": []}


def test_a_linked_config_file_is_never_uploaded(tmp_path):
    app = write_app(tmp_path / "app", {"setup.cfg": "[coverage:report]\nprecision = 1\n"})
    os.symlink("/proc/self/environ", app / "pyproject.toml")
    os.symlink(app / "setup.cfg", app / "tox.ini")
    assert [f.relative_path for f in scan_config(str(app))] == ["setup.cfg"]


def test_a_relative_omit_is_anchored_at_the_functions_root_behind_the_path_prefix(s3, bucket, tmp_path):
    app = write_app(tmp_path / "app", {"pyproject.toml": '[tool.coverage.report]\nomit = ["legacy/*", "orders.py"]\n'})
    _snapshot(s3, bucket, app, tmp_path)
    data = measure_locally(app, tmp_path)
    base = keys.combined_prefix(PREFIX, FUNCTION, "2026-11-23", "v1")
    s3.put_object(Bucket=bucket, Key=base + "coverage.sqlite", Body=data.read_bytes())
    render_group(s3, bucket, PREFIX, Group(FUNCTION, "2026-11-23", "v1"), path_prefix="legacy/")
    report = get_json(s3, bucket, base + "coverage.json")
    # Under the prefix "legacy/" the function's pricing.py is legacy/pricing.py; the config means the
    # function's own legacy/ folder (legacy/legacy/old.py here) and its own orders.py.
    assert set(report["files"]) == {"legacy/pricing.py"}
