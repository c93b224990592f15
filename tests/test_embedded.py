"""The embedded default end to end: real processes, the real state machines, the CLI and the AWS CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from layer_harness import EVENTS, copy_app, layer_env, run_function

REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lambda_coverage.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env)


def _aws(endpoint: str, *args: str) -> dict | str:
    done = subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", endpoint, "--output", "json", *args],
                          capture_output=True, text=True, timeout=60, check=True)
    try:
        return json.loads(done.stdout)
    except ValueError:
        return done.stdout


def _stop(server: subprocess.Popen) -> int:
    """SIGTERM, as a user's Ctrl-C or a service manager; killed if it does not stop, so no test leaves it running."""
    server.send_signal(signal.SIGTERM)
    try:
        return server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        raise


def test_serve_prints_its_endpoints_and_the_aws_cli_lists_the_bucket_and_runs_a_rebuild(tmp_path):
    logs = tmp_path / "serve.stderr"
    with open(logs, "w") as stderr:
        server = subprocess.Popen([sys.executable, "-m", "lambda_coverage.cli", "serve"], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        ready = json.loads(server.stdout.readline())
        assert set(ready) == {"endpoint", "bucket", "prefix", "intake_state_machine_arn", "combine_state_machine_arn"}
        endpoint, bucket = ready["endpoint"], ready["bucket"]
        app = copy_app(tmp_path)
        run_function("handler.lambda_handler", EVENTS, layer_env(app, tmp_path, COVERAGE_S3_BUCKET=bucket, AWS_ENDPOINT_URL=endpoint))

        listing = _aws(endpoint, "s3", "ls", f"s3://{bucket}/coverage/raw/", "--recursive")
        assert "coverage/raw/orders-fn/" in listing and ".coverage" in listing
        today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        started = _aws(endpoint, "stepfunctions", "start-execution", "--state-machine-arn", ready["combine_state_machine_arn"],
                       "--input", json.dumps({"function": "orders-fn", "date": today, "mode": "rebuild"}))
        deadline = time.monotonic() + 120
        while (described := _aws(endpoint, "stepfunctions", "describe-execution", "--execution-arn", started["executionArn"]))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "the rebuild did not finish"
            time.sleep(0.5)
        assert described["status"] == "SUCCEEDED", described

        rerun = _cli("rerun", "--function", "orders-fn", "--date", today, "--endpoint", endpoint, "--wait")
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert '"status": "SUCCEEDED"' in rerun.stdout

        reports = _cli("reports", "--out", str(tmp_path / "reports"), "--endpoint", endpoint)
        assert reports.returncode == 0, reports.stderr
        summaries = list((tmp_path / "reports" / "combined" / "orders-fn").rglob("summary.json"))
        assert len(summaries) == 1 and json.loads(summaries[0].read_text())["percent"] > 0
        assert "orders-fn" in (tmp_path / "reports" / "reports" / "index.html").read_text()
    finally:
        assert _stop(server) == 0
    assert server.stdout.read() == "", "stdout holds the one JSON line only"
    written = logs.read_text()
    assert "intake started for coverage/raw/orders-fn/" in written and '"message":"intake decision"' in written, "logs on stderr"


def test_serve_stops_on_sigterm_whichever_thread_the_kernel_hands_it_to():
    """A process-directed signal goes to any thread that does not block it: sent to one of the emulation's threads,
    SIGTERM must still stop `serve` (its main thread slept through it when it waited on an untimed lock)."""
    import ctypes
    import platform

    server = subprocess.Popen([sys.executable, "-m", "lambda_coverage.cli", "serve"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        json.loads(server.stdout.readline())
        threads = [int(tid) for tid in os.listdir(f"/proc/{server.pid}/task") if int(tid) != server.pid]
        assert threads, "the emulation runs threads beside the main one"
        tgkill = {"x86_64": 234, "aarch64": 131}[platform.machine()]
        assert ctypes.CDLL(None, use_errno=True).syscall(tgkill, server.pid, threads[0], signal.SIGTERM) == 0
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_serve_sends_its_logs_to_the_log_file(tmp_path):
    log_file = tmp_path / "serve.log"
    server = subprocess.Popen([sys.executable, "-m", "lambda_coverage.cli", "serve", "--log-file", str(log_file)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(server.stdout.readline())
        app = copy_app(tmp_path)
        run_function("handler.lambda_handler", EVENTS[:1], layer_env(app, tmp_path, COVERAGE_S3_BUCKET=ready["bucket"],
                                                                      AWS_ENDPOINT_URL=ready["endpoint"]))
        # Delivered when intake validated the upload: then its logs were written.
        deadline = time.monotonic() + 60
        while "intake decision" not in log_file.read_text():
            assert time.monotonic() < deadline, "intake never logged"
            time.sleep(0.2)
    finally:
        assert _stop(server) == 0
    assert server.stdout.read() == "" and "intake" not in server.stderr.read()
    assert "intake started for coverage/raw/orders-fn/" in log_file.read_text()


def test_demo_runs_every_example_through_the_pipeline_into_reports(tmp_path):
    out = tmp_path / "coverage-reports"
    done = _cli("demo", "--out", str(out), timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    functions = ["advanced-usage", "context-manager-function", "coverage-combiner", "health-check-function", "simple-function"]
    for function in functions:
        assert function in done.stdout
        summary = json.loads(next((out / "combined" / function).rglob("summary.json")).read_text())
        assert summary["raw_files"] >= 3, f"{function}: one raw file per execution environment at least"
        assert summary["percent"] > 0
    assert f"Dashboard: {out / 'reports' / 'index.html'}" in done.stdout
    dashboard = (out / "reports" / "index.html").read_text()
    assert all(f in dashboard for f in functions)
    assert list((out / "daily").glob("*/index.html")), "the daily sweep wrote the day's roll-up"
    pipeline_log = (tmp_path / "coverage-reports.pipeline.log").read_text()
    assert "lambda_coverage.local.bridge intake started for coverage/raw/advanced-usage/" in pipeline_log, "the emulation's own logs"
    advanced = json.loads(next((out / "combined" / "advanced-usage").rglob("coverage.json")).read_text())
    handler_lines = advanced["files"]["handler.py"]["executed_lines"]
    assert {9, 11, 14, 15} <= set(handler_lines), "zero-code mode measured the module's init code"


def test_load_test_checks_that_nothing_was_lost():
    done = _cli("load-test", "--tier", "quick", "--iterations", "1", "--workers", "2", timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["zero_loss"] is True and report["unmerged_raw_files"] == 0 and report["mismatched_groups"] == []
    assert report["groups"] == 5 and report["raw_files"] >= 10 and report["function_errors"] == 0


def test_combine_verb_merges_local_raw_files_and_renders_reports_without_aws(tmp_path):
    import shutil

    from coverage_wrapper.shipper import relativize

    app = copy_app(tmp_path)
    raw_files = []
    for n, event in enumerate(EVENTS[:2]):
        run_dir = tmp_path / f"run{n}"
        run_function("handler.lambda_handler", [event], layer_env(app, run_dir))
        data = next((run_dir / "outbox" / "pending").glob("*.coverage"))
        raw = tmp_path / f"raw{n}.coverage"
        shutil.copyfile(data, raw)
        relativize(str(raw), str(app))  # as uploaded: paths relative to the source root
        raw_files.append(str(raw))
    junk = tmp_path / "junk.coverage"
    junk.write_bytes(b"not a database")
    done = _cli("combine", *raw_files, str(junk), "--out", str(tmp_path / "out"), "--source-root", str(app))
    assert done.returncode == 0, done.stderr
    assert f"skipped {junk}: not_sqlite" in done.stderr
    summary = json.loads(done.stdout)
    assert summary["files_combined"] == 2 and summary["files_skipped"] == 1
    report = json.loads((tmp_path / "out" / "coverage.json").read_text())
    orders = report["files"]["shop/orders.py"]
    assert 15 in orders["executed_lines"] and 14 in orders["executed_lines"], "lines from both runs: with and without tax"
    assert report["files"]["plain.py"]["executed_lines"] == [], "a module nothing imported is reported at 0%"
    pages = "".join(p.read_text() for p in (tmp_path / "out" / "html").glob("*orders_py.html"))
    assert "quantity must be positive" in pages, "the HTML report shows the real source"
