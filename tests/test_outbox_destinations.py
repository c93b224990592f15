"""Outbox entries carry their destination; per-destination state; live data files of ended processes go."""

from __future__ import annotations

import socket
import subprocess
import sys

from coverage_wrapper import keys
from coverage_wrapper.config import parse_config
from coverage_wrapper.outbox import Outbox
from coverage_wrapper.shipper import drain
from coverage_wrapper.sources import code_version, scan_sources
from layer_harness import EVENTS, copy_app, layer_env, run_function


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listed(s3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_processes_sharing_an_outbox_ship_each_entry_to_its_own_bucket_and_prefix(tmp_path, s3, bucket, moto_endpoint, monkeypatch):
    other_bucket = f"{bucket}-b"
    s3.create_bucket(Bucket=other_bucket)
    app = copy_app(tmp_path)
    unreachable = f"http://127.0.0.1:{_closed_port()}"
    for name, target, prefix in (("a-fn", bucket, "team-a/"), ("b-fn", other_bucket, "team-b/")):
        env = layer_env(
            app, tmp_path, AWS_LAMBDA_FUNCTION_NAME=name, COVERAGE_S3_BUCKET=target, COVERAGE_S3_PREFIX=prefix,
            AWS_ENDPOINT_URL=unreachable, COVERAGE_UPLOAD_TIMEOUT="1",
        )
        run_function("handler.lambda_handler", EVENTS[:1], env)
    # A third process, configured for yet another prefix, drains the shared outbox.
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    config = parse_config({"COVERAGE_S3_BUCKET": bucket, "COVERAGE_S3_PREFIX": "elsewhere/", "COVERAGE_OUTBOX_DIR": str(tmp_path / "outbox")})
    summary = drain(Outbox(config.outbox_dir), config, everything=True)
    assert len(summary["uploaded"]) == 2 and summary["remaining"] == 0
    version = code_version(scan_sources(str(app)))
    in_a, in_b = _listed(s3, bucket), _listed(s3, other_bucket)
    assert [keys.parse_raw_key(k, "team-a/").function for k in in_a if "/raw/" in k] == ["a-fn"]
    assert [keys.parse_raw_key(k, "team-b/").function for k in in_b if "/raw/" in k] == ["b-fn"]
    assert keys.sources_manifest_key("team-a/", "a-fn", version) in in_a
    assert keys.sources_manifest_key("team-b/", "b-fn", version) in in_b
    assert not [k for k in in_a + in_b if k.startswith("elsewhere/")]


def test_a_run_against_another_bucket_or_prefix_uploads_its_own_source_snapshot(tmp_path, s3, bucket, moto_endpoint):
    other_bucket = f"{bucket}-b"
    s3.create_bucket(Bucket=other_bucket)
    app = copy_app(tmp_path)
    version = code_version(scan_sources(str(app)))
    runs = ((bucket, "coverage/"), (other_bucket, "coverage/"), (bucket, "second/"))
    for target, prefix in runs:  # one outbox directory for all three, as with the default /tmp path
        env = layer_env(app, tmp_path, COVERAGE_S3_BUCKET=target, COVERAGE_S3_PREFIX=prefix, AWS_ENDPOINT_URL=moto_endpoint)
        run_function("handler.lambda_handler", EVENTS[:1], env)
    for target, prefix in runs:
        listed = _listed(s3, target)
        assert keys.sources_manifest_key(prefix, "orders-fn", version) in listed, (target, prefix)
        assert [k for k in listed if k.startswith(f"{prefix}sources/blobs/")], (target, prefix)


def test_live_data_files_of_ended_processes_are_removed(tmp_path, bucket, moto_endpoint, monkeypatch):
    app = copy_app(tmp_path)
    run_function("handler.lambda_handler", EVENTS[:2], layer_env(app, tmp_path))
    live = tmp_path / "outbox" / "live"
    assert list(live.iterdir()) == [], "a process that exits removes its own live file"
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (live / f"{ended.stdout.strip()}-0badc0de.coverage").write_bytes(b"left by a killed process")
        (live / f"{ended.stdout.strip()}-0badc0de.coverage-journal").write_bytes(b"")
        (live / f"{running.pid}-0c0ffee0.coverage").write_bytes(b"still measuring")
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
        config = parse_config({"COVERAGE_S3_BUCKET": bucket, "COVERAGE_OUTBOX_DIR": str(tmp_path / "outbox")})
        drain(Outbox(config.outbox_dir), config)
        assert sorted(p.name for p in live.iterdir()) == [f"{running.pid}-0c0ffee0.coverage"]
    finally:
        running.kill()
        running.wait()
