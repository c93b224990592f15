"""When time is short (the 2 s after SHUTDOWN), the outbox's data goes to S3 before the source snapshot."""

from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from coverage_wrapper.config import parse_config
from coverage_wrapper.outbox import Outbox
from coverage_wrapper.shipper import drain
from layer_harness import EVENTS, copy_app, layer_env, outbox_files, run_function


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def recording_s3(moto_endpoint):
    """moto behind a pass-through proxy that records the order of the requests S3 receives."""
    target = urlsplit(moto_endpoint)
    seen: list[tuple[str, str]] = []

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.command, self.path.split("?", 1)[0]))
            upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("expect", "connection")}
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            upstream.close()

        do_PUT = do_GET = do_HEAD = do_POST = _forward

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_data_is_uploaded_before_the_source_snapshot(tmp_path, bucket, recording_s3, monkeypatch):
    app = copy_app(tmp_path)
    env = layer_env(
        app, tmp_path, COVERAGE_S3_BUCKET=bucket, COVERAGE_UPLOAD_TIMEOUT="1",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{_closed_port()}",
    )
    run_function("handler.lambda_handler", EVENTS[:1], env)
    assert len(outbox_files(tmp_path)) == 1
    endpoint, seen = recording_s3
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    config = parse_config({"COVERAGE_S3_BUCKET": bucket, "COVERAGE_OUTBOX_DIR": str(tmp_path / "outbox")})
    summary = drain(Outbox(config.outbox_dir), config, everything=True)
    assert len(summary["uploaded"]) == 1
    puts = [path for method, path in seen if method == "PUT"]
    assert "/raw/" in puts[0], "the data first: a kill at the deadline loses the snapshot, never the data"
    assert any("/sources/" in path and path.endswith("manifest.json") for path in puts[1:])
