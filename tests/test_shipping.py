"""Shipping raw files: the outbox bound, S3 outages, and the extension in a simulated execution environment."""

from __future__ import annotations

import json
import socket

from coverage_wrapper import keys
from coverage_wrapper.config import parse_config
from coverage_wrapper.outbox import Outbox
from coverage_wrapper.shipper import drain
from lambda_coverage.execution_environment import ExecutionEnvironment, stage_layer
from layer_harness import EVENTS, copy_app, layer_env, log_lines, outbox_files, recorded, run_function


def _fill_outbox(tmp_path, count: int, **env: str) -> None:
    """Real flushes from a real function process: `count` invocations, one flush each."""
    app = copy_app(tmp_path)
    events = [EVENTS[1], EVENTS[0], EVENTS[2], EVENTS[3]][:count]  # each reaches new lines: one flush each
    run_function("handler.lambda_handler", events, layer_env(app, tmp_path, **env))


def test_outbox_is_bounded_dropping_the_oldest_with_a_logged_count(tmp_path, capsys):
    outbox = Outbox(str(tmp_path / "outbox"), max_files=3)
    data = tmp_path / "data.coverage"
    data.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    for seq in range(1, 8):
        outbox.put(str(data), {"env": "abcdef12", "seq": seq})
    names = [entry.name for entry in outbox.entries()]
    assert [int(name.rsplit("-", 1)[1]) for name in names] == [5, 6, 7]
    dropped = [r for r in log_lines(capsys.readouterr().out) if r.get("operation") == "outbox_bound"]
    assert sum(r["dropped_files"] for r in dropped) == 4


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_s3_unavailable_then_back_loses_nothing(tmp_path, s3, bucket, moto_endpoint, monkeypatch):
    # Three flushes land in the outbox while S3 is unreachable from the function process.
    _fill_outbox(
        tmp_path, 3,
        COVERAGE_FLUSH_INVOCATIONS="1", COVERAGE_S3_BUCKET=bucket,
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{_closed_port()}", COVERAGE_UPLOAD_TIMEOUT="2",
    )
    waiting = outbox_files(tmp_path)
    assert len(waiting) >= 3
    metas = [json.loads(p.with_suffix(".json").read_text()) for p in waiting]
    assert any(m["attempts"] >= 1 and m["not_before"] > 0 for m in metas), "failures are recorded with a backoff"
    # S3 is back: a later drain (the extension's next INVOKE or SHUTDOWN) ships every file.
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    config = parse_config({"COVERAGE_S3_BUCKET": bucket, "COVERAGE_OUTBOX_DIR": str(tmp_path / "outbox")})
    summary = drain(Outbox(config.outbox_dir), config, everything=True)
    assert len(summary["uploaded"]) == len(waiting) and summary["remaining"] == 0
    raw = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="coverage/raw/")["Contents"]]
    assert sorted(keys.parse_raw_key(k).seq for k in raw) == sorted(m["seq"] for m in metas)


def test_extension_ships_every_flush_by_shutdown_and_the_function_never_imports_boto(tmp_path, s3, bucket, moto_endpoint):
    app = copy_app(tmp_path)
    (app / "probe.py").write_text(
        "import sys\n"
        "from coverage_wrapper import coverage_handler\n"
        "from shop.orders import price\n"
        "@coverage_handler\n"
        "def lambda_handler(event, context):\n"
        "    return {'total': price(event['items'], 'de'),\n"
        "            'botocore_loaded': 'botocore' in sys.modules or 'boto3' in sys.modules}\n"
    )
    opt = stage_layer(tmp_path / "opt")
    environment = ExecutionEnvironment(
        "probe-fn", "probe.lambda_handler", app, opt,
        env={
            "COVERAGE_SOURCE_ROOT": str(app), "COVERAGE_OUTBOX_DIR": str(tmp_path / "outbox"),
            "COVERAGE_S3_BUCKET": bucket, "AWS_ENDPOINT_URL": moto_endpoint, "COVERAGE_FLUSH_INVOCATIONS": "3",
        },
        log_dir=tmp_path / "logs",
    )
    environment.start()
    results = [environment.invoke({"items": [{"qty": n + 1, "unit": 2}]}) for n in range(7)]
    outcome = environment.shutdown()
    assert all(r["outcome"] == "response" for r in results)
    assert not any(r["payload"]["botocore_loaded"] for r in results), "the function process never loads an AWS SDK"
    assert outcome["extension_exits"] == [0]
    raw = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="coverage/raw/probe-fn/")["Contents"]]
    assert len(raw) >= 2, "the policy flush after 3 invocations and the SIGTERM flush"
    final = max(raw, key=lambda k: keys.parse_raw_key(k).seq)
    assert s3.head_object(Bucket=bucket, Key=final)["Metadata"]["invocations"] == "7"
    assert outbox_files(tmp_path) == []
    extension_log = (tmp_path / "logs" / "extension-lambda-coverage-shipper.log").read_text()
    assert "Coverage file uploaded successfully" in extension_log
    runtime_log = (tmp_path / "logs" / "runtime.log").read_text()
    assert "Coverage file uploaded successfully" not in runtime_log, "uploads happen in the extension, not the function"


def test_zero_code_mode_in_an_execution_environment_covers_init_code(tmp_path):
    app = copy_app(tmp_path)
    opt = stage_layer(tmp_path / "opt")
    # A flush per invocation, as the runtime asks for the next one: what is asserted does not hang on the shutdown budget.
    environment = ExecutionEnvironment(
        "plain-fn", "plain.lambda_handler", app, opt, exec_wrapper=True,
        env={"COVERAGE_SOURCE_ROOT": str(app), "COVERAGE_OUTBOX_DIR": str(tmp_path / "outbox"),
             "COVERAGE_FLUSH_INVOCATIONS": "1"},
        log_dir=tmp_path / "logs",
    )
    environment.start()
    assert environment.invoke(EVENTS[0])["payload"]["ready"] is True
    environment.shutdown()
    first = outbox_files(tmp_path)[0]
    assert json.loads(first.with_suffix(".json").read_text())["invocations"] == 1
    assert {1, 2, 4, 6, 7} <= set(recorded(first, app, tmp_path).executed_lines()["plain.py"])


def test_combine_coverage_files_merges_a_prefix_and_skips_bad_objects(tmp_path, s3, bucket, moto_endpoint, monkeypatch):
    from coverage_wrapper import combine_coverage_files

    app = copy_app(tmp_path)
    for n, event in enumerate(EVENTS[:2]):
        env = layer_env(app, tmp_path / f"run{n}", COVERAGE_S3_BUCKET=bucket, AWS_ENDPOINT_URL=moto_endpoint)
        run_function("handler.lambda_handler", [event], env)
    raw = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="coverage/raw/")["Contents"]]
    assert len(raw) == 2
    junk_key = raw[0].rsplit("/", 1)[0] + "/000000Z-00000000-000000.coverage"
    s3.put_object(Bucket=bucket, Key=junk_key, Body=b"not sqlite")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    result = combine_coverage_files(bucket, "coverage/raw/orders-fn/", "coverage/examples/report.json")
    assert result["status"] == "success" and result["files_combined"] == 2
    assert [(s["key"], s["reason"]) for s in result["files_skipped"]] == [(junk_key, "not_sqlite")]
    report = json.loads(s3.get_object(Bucket=bucket, Key="coverage/examples/report.json")["Body"].read())
    lines = report["files"]["shop/orders.py"]["executed_lines"]
    assert 14 in lines and 15 in lines, "both runs merged: with and without tax"
