"""A WSGI app in front of moto that answers Lambda `Invoke` by running the project's handlers in-process."""

from __future__ import annotations

import importlib
import json
import re
import threading
import time
import traceback
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Callable
from urllib.parse import unquote

from ..pipeline import PipelineFunction
from .faults import FaultPolicy

_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
ACCOUNT = "123456789012"


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline_ms: int
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


def function_arn(region: str, function_name: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function_name}"


def _function_name(path_segment: str) -> str:
    """`name`, `name:qualifier` or a full ARN (URL-encoded, as botocore sends it) → the bare name."""
    name = unquote(path_segment)
    if name.startswith("arn:"):
        name = name.split(":")[6]
    return name.split(":")[0]


class LambdaRouter:
    """Routes `POST /2015-03-31/functions/{name}/invocations` to handlers; everything else to `backend`."""

    def __init__(self, backend: Callable, functions: Iterable[PipelineFunction], region: str, faults: FaultPolicy | None = None) -> None:
        self.faults = faults
        self.backend = faults.wsgi(backend) if faults else backend
        self.region = region
        self.functions: dict[str, PipelineFunction] = {f.function_name: f for f in functions}
        self.invocations: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        match = _INVOKE_PATH.match(environ.get("PATH_INFO", ""))
        if match and environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            payload = environ["wsgi.input"].read(length) if length else b""
            status, headers, body = self.invoke(_function_name(match["name"]), payload)
            start_response(status, headers)
            return [body]
        return self.backend(environ, start_response)

    def invoke(self, name: str, payload: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        function = self.functions.get(name)
        if function is None:
            error = {"Type": "User", "message": f"Function not found: {function_arn(self.region, name)}"}
            return "404 Not Found", [("Content-Type", "application/json"), ("x-amzn-ErrorType", "ResourceNotFoundException")], json.dumps(error).encode()
        with self._lock:
            self.invocations[name] = self.invocations.get(name, 0) + 1
        context = LambdaContext(
            function_name=name,
            memory_limit_in_mb=function.memory_mb,
            invoked_function_arn=function_arn(self.region, name),
            aws_request_id=str(uuid.uuid4()),
            deadline_ms=int((time.time() + function.timeout_seconds) * 1000),
        )
        headers = [("Content-Type", "application/json"), ("X-Amz-Executed-Version", "$LATEST")]
        fault = self.faults.lambda_fault(name) if self.faults else None
        if fault is not None and not fault.after and not fault.delay_seconds:
            return self._error(headers, fault.error_type, f"injected: {name} failed before running")
        try:
            event = json.loads(payload or b"{}")
            result = _resolve(function.handler)(event, context)
            body = json.dumps(result).encode()
        except Exception as exc:
            # Lambda's shape for an unhandled error: the state machine's Retry/Catch see errorType.
            return self._error(headers, type(exc).__name__, str(exc), traceback.format_exc().splitlines())
        if fault is not None and fault.delay_seconds:
            time.sleep(fault.delay_seconds)
        elif fault is not None:
            return self._error(headers, fault.error_type, f"injected: {name} did its work, then its answer was lost")
        return "200 OK", headers, body

    @staticmethod
    def _error(headers: list[tuple[str, str]], error_type: str, message: str, stack: list[str] | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
        error = {"errorMessage": message, "errorType": error_type, "stackTrace": stack or []}
        return "200 OK", headers + [("X-Amz-Function-Error", "Unhandled")], json.dumps(error).encode()


def _resolve(dotted: str) -> Callable:
    """Import the handler on first use, as Lambda does at cold start."""
    module_name, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)
