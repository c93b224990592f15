"""Outbox entries that cannot be uploaded are set aside with a reason; the rest of the drain goes on."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from coverage_wrapper import keys
from coverage_wrapper.config import parse_config
from coverage_wrapper.outbox import Outbox
from coverage_wrapper.shipper import drain
from lambda_coverage.execution_environment import ExecutionEnvironment, stage_layer
from layer_harness import EVENTS, copy_app, layer_env, log_lines, outbox_files, run_function


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _flushed_entry(tmp_path: Path, bucket: str) -> Path:
    """One real flush of the fixture app, left in the outbox because S3 was unreachable at the time."""
    app = copy_app(tmp_path)
    env = layer_env(
        app, tmp_path, COVERAGE_S3_BUCKET=bucket, COVERAGE_UPLOAD_TIMEOUT="1",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{_closed_port()}",
    )
    run_function("handler.lambda_handler", EVENTS[:1], env)
    [entry] = outbox_files(tmp_path)
    return entry


def _plant(tmp_path: Path, name: str, data: bytes | None, sidecar: object) -> None:
    """An entry as a crash, a full disk or a stray process could leave it."""
    pending = tmp_path / "outbox" / "pending"
    pending.mkdir(parents=True, exist_ok=True)
    if data is not None:
        (pending / f"{name}.coverage").write_bytes(data)
    text = sidecar if isinstance(sidecar, str) else json.dumps(sidecar)
    (pending / f"{name}.json").write_text(text)


def _good_meta(entry: Path) -> dict:
    """The entry's sidecar, its retry backoff over (the failed upload at exit set one)."""
    meta = dict(json.loads(entry.with_suffix(".json").read_text()), not_before=0.0)
    entry.with_suffix(".json").write_text(json.dumps(meta))
    return meta


def _raw_keys(s3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="coverage/raw/").get("Contents", [])]


def test_each_kind_of_bad_entry_is_set_aside_with_its_reason_and_the_good_one_ships(
    tmp_path, s3, bucket, moto_endpoint, monkeypatch, capsys
):
    good = _flushed_entry(tmp_path, bucket)
    meta = _good_meta(good)
    sqlite_not_coverage = tmp_path / "other.db"
    import sqlite3

    with sqlite3.connect(sqlite_not_coverage) as connection:
        connection.execute("create table orders (id integer)")
    # Older than the good entry, so each comes first in the drain.
    _plant(tmp_path, "00000000000000000001-0000000a-000001", good.read_bytes(), "{not json")
    _plant(tmp_path, "00000000000000000002-0000000b-000001", None, meta)
    _plant(tmp_path, "00000000000000000003-0000000c-000001", b"plain text, not a database" * 40, meta)
    _plant(tmp_path, "00000000000000000004-0000000d-000001", sqlite_not_coverage.read_bytes(), meta)
    _plant(tmp_path, "00000000000000000005-0000000e-000001", good.read_bytes(), {k: v for k, v in meta.items() if k != "function"})
    _plant(tmp_path, "00000000000000000006-0000000f-000001", good.read_bytes(), [meta])
    capsys.readouterr()

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    config = parse_config({"COVERAGE_S3_BUCKET": bucket, "COVERAGE_OUTBOX_DIR": str(tmp_path / "outbox")})
    outbox = Outbox(config.outbox_dir)
    summary = drain(outbox, config)  # as at an INVOKE: due entries only

    assert len(summary["uploaded"]) == 1 and summary["rejected"] == 6 and summary["remaining"] == 0
    assert [keys.parse_raw_key(k).env for k in _raw_keys(s3, bucket)] == [meta["env"]]
    reasons = {r["name"].split("-")[1]: r["reason"] for r in outbox.rejected()}
    assert reasons == {
        "0000000a": "bad_sidecar",
        "0000000b": "missing_data",
        "0000000c": "not_coverage_data",
        "0000000d": "not_coverage_data",
        "0000000e": "bad_metadata",
        "0000000f": "bad_sidecar",
    }
    logged = [r for r in log_lines(capsys.readouterr().out) if r.get("operation") == "outbox_reject"]
    assert sorted(r["reason"] for r in logged) == sorted(reasons.values()), "each logged once, with its reason"
    assert any("'function' is missing" in r["error"] for r in logged)
    assert (tmp_path / "outbox" / "rejected" / "00000000000000000003-0000000c-000001.coverage").exists()
    # Never retried: the next drain has nothing to do and logs nothing.
    assert drain(outbox, config, everything=True) == {"uploaded": [], "failed": 0, "rejected": 0, "remaining": 0}
    assert not [r for r in log_lines(capsys.readouterr().out) if r.get("operation") == "outbox_reject"]


def test_shutdown_drain_sets_a_corrupt_entry_aside_and_uploads_the_final_flush(tmp_path, s3, bucket, moto_endpoint):
    app = copy_app(tmp_path)
    later = time.time() + 3600  # in backoff: INVOKE drains skip it, the SHUTDOWN drain takes everything
    _plant(tmp_path, "00000000000000000001-0badc0de-000001", b"garbage" * 100, {
        "function": "shop-fn", "flushed_at": time.time(), "env": "0badc0de", "seq": 1,
        "source_root": str(app), "bucket": bucket, "prefix": "coverage/", "attempts": 3, "not_before": later,
    })
    environment = ExecutionEnvironment(
        "shop-fn", "handler.lambda_handler", app, stage_layer(tmp_path / "opt"), exec_wrapper=True,
        env={"COVERAGE_SOURCE_ROOT": str(app), "COVERAGE_OUTBOX_DIR": str(tmp_path / "outbox"),
             "COVERAGE_S3_BUCKET": bucket, "AWS_ENDPOINT_URL": moto_endpoint},
        log_dir=tmp_path / "logs",
    )
    environment.start()
    assert environment.invoke(EVENTS[0])["outcome"] == "response"
    outcome = environment.shutdown()
    assert outcome["extension_exits"] == [0]
    raw = _raw_keys(s3, bucket)
    assert len(raw) == 1 and keys.parse_raw_key(raw[0]).function == "shop-fn", "the SIGTERM flush was uploaded"
    extension_log = log_lines((tmp_path / "logs" / "extension-lambda-coverage-shipper.log").read_text())
    rejected = [r for r in extension_log if r.get("operation") == "outbox_reject"]
    assert [(r["entry"], r["reason"]) for r in rejected] == [("00000000000000000001-0badc0de-000001", "not_coverage_data")]
    assert outbox_files(tmp_path) == []


def test_a_missing_bucket_never_sets_valid_data_aside(tmp_path, s3, bucket, moto_endpoint, monkeypatch):
    _flushed_entry(tmp_path, "no-such-bucket-here")  # the function names a bucket that does not exist
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    config = parse_config({"COVERAGE_S3_BUCKET": bucket, "COVERAGE_OUTBOX_DIR": str(tmp_path / "outbox")})
    outbox = Outbox(config.outbox_dir)
    for _ in range(7):
        summary = drain(outbox, config, everything=True)
        assert summary["failed"] == 1 and summary["rejected"] == 0
    assert len(outbox.entries()) == 1 and outbox.rejected() == []


class _RefusingS3(BaseHTTPRequestHandler):
    """S3 as seen when it refuses one request for what it is: a 400 with an S3 error document."""

    protocol_version = "HTTP/1.1"  # answers botocore's `Expect: 100-continue` at once

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<Error><Code>InvalidArgument</Code><Message>refused for this request</Message></Error>"
        self.send_response(400)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def refusing_s3():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingS3)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_entry_s3_keeps_refusing_is_retried_a_few_times_then_set_aside(tmp_path, bucket, refusing_s3, monkeypatch):
    good = _flushed_entry(tmp_path, bucket)
    _plant(tmp_path, "99999999999999999999-0000abcd-000001", good.read_bytes(), dict(_good_meta(good), env="0000abcd"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", refusing_s3)
    config = parse_config({"COVERAGE_S3_BUCKET": bucket, "COVERAGE_OUTBOX_DIR": str(tmp_path / "outbox")})
    outbox = Outbox(config.outbox_dir)
    first = drain(outbox, config, everything=True)
    assert first["failed"] == 2, "a refusal is about one entry: the drain goes on to the next"
    for _ in range(3):
        drain(outbox, config, everything=True)
    assert len(outbox.entries()) == 2 and outbox.rejected() == []
    last = drain(outbox, config, everything=True)
    assert last["rejected"] == 2 and outbox.entries() == []
    assert {r["reason"] for r in outbox.rejected()} == {"refused"}
    assert all("InvalidArgument" in r["detail"] for r in outbox.rejected())
