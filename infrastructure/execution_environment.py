"""A simulated Lambda execution environment: the Runtime and Extensions APIs, with real processes.

The function runs under `awslambdaric` (the runtime interface client AWS publishes) and the layer's
extension runs beside it, exactly as in Lambda: extensions register, the runtime polls for
invocations, INVOKE events reach extensions, and shutdown sends SIGTERM to the runtime and then
SHUTDOWN to extensions within a 2 s budget.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import coverage_wrapper

from . import data_dir

LAYER_SCRIPTS = data_dir("layer_src")  # the exec wrapper and the extension
RUNTIME_SIGTERM_GRACE_S = 0.3  # Lambda's budget for the runtime with an external extension
SHUTDOWN_BUDGET_S = 2.0
BOOTSTRAP = (
    "import os, sys\n"
    "from awslambdaric.__main__ import main\n"
    "main([sys.argv[0], os.environ['_HANDLER']])\n"
)


def stage_layer(target: Path) -> Path:
    """Lay the layer out as Lambda mounts it at /opt, from the sources in layer_src/."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(Path(coverage_wrapper.__file__).parent, target / "python" / "coverage_wrapper",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(LAYER_SCRIPTS / "extensions", target / "extensions")
    shutil.copy2(LAYER_SCRIPTS / "coverage-instrument", target / "coverage-instrument")
    return target


class _Extension:
    def __init__(self, name: str, events: list[str]) -> None:
        self.identifier = str(uuid.uuid4())
        self.name = name
        self.events = events
        self.inbox: queue.Queue[dict] = queue.Queue()
        self.waiting = threading.Event()


class ExecutionEnvironment:
    """One execution environment of one function: start (cold), invoke (warm), shut down."""

    def __init__(
        self,
        function_name: str,
        handler: str,
        code_dir: Path,
        layer_dir: Path | None,
        env: dict[str, str] | None = None,
        exec_wrapper: bool = False,
        log_dir: Path | None = None,
        python: str = sys.executable,
    ) -> None:
        self.function_name = function_name
        self.handler = handler
        self.code_dir = Path(code_dir)
        self.layer_dir = Path(layer_dir) if layer_dir else None
        self.extra_env = dict(env or {})
        self.exec_wrapper = exec_wrapper
        self.log_dir = log_dir
        self.python = python
        self.invocations = 0
        self.init_error: dict | None = None
        self._pending: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._results: dict[str, tuple[threading.Event, dict]] = {}
        self._runtime_waiting = threading.Event()
        self._extensions: dict[str, _Extension] = {}
        self._processes: list[subprocess.Popen] = []
        self._runtime: subprocess.Popen | None = None
        self._logs: list[Any] = []
        self._closing = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    # -- the HTTP APIs -------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        environment = self

        class Api(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes; without this, Nagle + delayed ACK add 40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *_args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", (headers or {}).get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                if self.path == "/2018-06-01/runtime/invocation/next":
                    request_id, event = environment._next_invocation()
                    self._reply(200, event, {
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(int((time.time() + 300) * 1000)),
                        "Lambda-Runtime-Invoked-Function-Arn": environment.function_arn,
                        "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0",
                        "Content-Type": "application/json",
                    })
                elif self.path == "/2020-01-01/extension/event/next":
                    extension = environment._extensions.get(self.headers.get("Lambda-Extension-Identifier", ""))
                    if extension is None:
                        self._reply(403, b'{"errorType": "Extension.Unknown"}')
                        return
                    extension.waiting.set()
                    extension_event = extension.inbox.get()
                    extension.waiting.clear()
                    self._reply(200, json.dumps(extension_event).encode(), {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})
                else:
                    self._reply(404)

            def do_POST(self) -> None:
                body = self._body()
                parts = self.path.split("/")
                if self.path == "/2020-01-01/extension/register":
                    events = json.loads(body or b"{}").get("events", [])
                    extension = _Extension(self.headers.get("Lambda-Extension-Name", ""), events)
                    environment._extensions[extension.identifier] = extension
                    self._reply(200, json.dumps({
                        "functionName": environment.function_name,
                        "functionVersion": "$LATEST",
                        "handler": environment.handler,
                    }).encode(), {"Lambda-Extension-Identifier": extension.identifier})
                elif self.path.startswith("/2018-06-01/runtime/invocation/") and parts[-1] in ("response", "error"):
                    environment._complete(parts[-2], parts[-1], body)
                    self._reply(202, b'{"status": "OK"}')
                elif self.path == "/2018-06-01/runtime/init/error":
                    environment.init_error = json.loads(body or b"{}")
                    self._reply(202, b'{"status": "OK"}')
                else:
                    self._reply(404)

        return Api

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def _next_invocation(self) -> tuple[str, bytes]:
        self._runtime_waiting.set()
        request_id, event = self._pending.get()
        self._runtime_waiting.clear()
        return request_id, event

    def _complete(self, request_id: str, outcome: str, body: bytes) -> None:
        done, record = self._results[request_id]
        record.update(outcome=outcome, payload=json.loads(body or b"null"), responded_at=time.perf_counter())
        done.set()

    # -- lifecycle -----------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        python_path = [str(self.code_dir)]
        if self.layer_dir:
            python_path.append(str(self.layer_dir / "python"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "PYTEST_", "_HANDLER"))}
        env.update(
            AWS_LAMBDA_RUNTIME_API=self.address,
            AWS_LAMBDA_FUNCTION_NAME=self.function_name,
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
            AWS_EXECUTION_ENV="AWS_Lambda_python%d.%d" % sys.version_info[:2],
            AWS_REGION=os.environ.get("AWS_REGION", "us-east-1"),
            LAMBDA_TASK_ROOT=str(self.code_dir),
            _HANDLER=self.handler,
            PYTHONPATH=os.pathsep.join(python_path),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def _spawn(self, command: list[str], name: str) -> subprocess.Popen:
        output: Any = subprocess.DEVNULL
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{name}.log", "ab")
            self._logs.append(output)
        process = subprocess.Popen(command, env=self._environment(), cwd=self.code_dir, stdout=output, stderr=subprocess.STDOUT)
        self._processes.append(process)
        return process

    def start(self, timeout: float = 60) -> float:
        """Cold start: extensions register, then the runtime initializes; returns the init duration (s)."""
        began = time.perf_counter()
        deadline = time.monotonic() + timeout
        extension_dir = self.layer_dir / "extensions" if self.layer_dir else None
        launched = []
        if extension_dir and extension_dir.is_dir():
            for path in sorted(extension_dir.iterdir()):
                if os.access(path, os.X_OK):
                    launched.append(self._spawn([str(path)], f"extension-{path.name}"))
        while len(self._extensions) < len(launched):
            self._check_alive(launched, deadline, "extension registration")
            time.sleep(0.005)
        command = [self.python, "-c", BOOTSTRAP]
        if self.exec_wrapper and self.layer_dir:
            command = [str(self.layer_dir / "coverage-instrument"), *command]
        self._runtime = self._spawn(command, "runtime")
        self._wait_until_ready(deadline, "runtime init")
        return time.perf_counter() - began

    def _wait_until_ready(self, deadline: float, stage: str) -> None:
        """Until the runtime and every extension wait in their `next` call: the environment is idle."""
        for ready in [self._runtime_waiting, *(e.waiting for e in self._extensions.values())]:
            while not ready.wait(0.05):
                self._check_alive([self._runtime] if self._runtime else [], deadline, stage)

    def _check_alive(self, processes: list[subprocess.Popen], deadline: float, stage: str) -> None:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{self.function_name}: process exited with {process.returncode} during {stage}")
        if self.init_error:
            raise RuntimeError(f"{self.function_name}: init error {self.init_error}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{self.function_name}: {stage} timed out")

    def invoke(self, event: Any, timeout: float = 60) -> dict[str, Any]:
        """One invocation: INVOKE to extensions, the event to the runtime; returns when it responded."""
        self._wait_until_ready(time.monotonic() + timeout, "previous invocation")
        request_id = str(uuid.uuid4())
        done = threading.Event()
        record: dict[str, Any] = {"request_id": request_id}
        self._results[request_id] = (done, record)
        began = time.perf_counter()
        for extension in self._extensions.values():
            if "INVOKE" in extension.events:
                extension.inbox.put({
                    "eventType": "INVOKE",
                    "deadlineMs": int((time.time() + 300) * 1000),
                    "requestId": request_id,
                    "invokedFunctionArn": self.function_arn,
                    "tracing": {"type": "X-Amzn-Trace-Id", "value": ""},
                })
        self._pending.put((request_id, json.dumps(event).encode()))
        if not done.wait(timeout):
            raise TimeoutError(f"{self.function_name}: invocation {request_id} timed out")
        self.invocations += 1
        record["duration_ms"] = (record["responded_at"] - began) * 1000
        del self._results[request_id]
        return record

    def shutdown(self, timeout: float = 60) -> dict[str, Any]:
        """Once idle, as Lambda spins down only an idle environment: SIGTERM to the runtime (when an
        extension is registered), then SHUTDOWN to extensions."""
        with contextlib.suppress(RuntimeError):  # a runtime that already exited is shut down all the same
            self._wait_until_ready(time.monotonic() + timeout, "shutdown")
        began = time.monotonic()
        runtime_code = None
        if self._runtime is not None and self._runtime.poll() is None:
            if self._extensions:
                self._runtime.send_signal(signal.SIGTERM)
                try:
                    runtime_code = self._runtime.wait(RUNTIME_SIGTERM_GRACE_S)
                except subprocess.TimeoutExpired:
                    pass
            if self._runtime.poll() is None:
                self._runtime.kill()
                self._runtime.wait()
        deadline_s = began + SHUTDOWN_BUDGET_S
        for extension in self._extensions.values():
            if "SHUTDOWN" in extension.events:
                remaining = deadline_s - time.monotonic()
                extension.inbox.put({
                    "eventType": "SHUTDOWN",
                    "shutdownReason": "spindown",
                    "deadlineMs": int((time.time() + max(0.0, remaining)) * 1000),
                })
        extension_codes = []
        for process in self._processes:
            if process is self._runtime:
                continue
            try:
                extension_codes.append(process.wait(max(0.05, deadline_s - time.monotonic())))
            except subprocess.TimeoutExpired:
                process.kill()
                extension_codes.append(process.wait())
        self._server.shutdown()
        self._server.server_close()
        for handle in self._logs:
            handle.close()
        return {
            "runtime_exit": runtime_code if runtime_code is not None else (self._runtime.returncode if self._runtime else None),
            "runtime_exited_on_sigterm": runtime_code is not None,
            "extension_exits": extension_codes,
            "shutdown_ms": (time.monotonic() - began) * 1000,
        }
