"""Faults injected on purpose, when a test chooses: S3 errors and throttling, lost conditional writes, deterministic
races, failing or slow Lambda steps, and events delivered late, twice or out of order.

S3 faults are real HTTP answers (status, S3 error XML) given instead of S3's, either by the emulation's
front door (`LocalAws(faults=...)`) or by a botocore `before-send` hook on one client (`attached`), so
botocore parses and retries them exactly as it would AWS's. Nothing here replaces the code under test.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

S3_ERROR_MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "PreconditionFailed": "At least one of the pre-conditions you specified did not hold",
    "InternalError": "We encountered an internal error. Please try again.",
    "ConditionalRequestConflict": "A conflicting conditional operation is currently in progress against this resource.",
}


@dataclass(frozen=True)
class S3Request:
    """What a fault rule sees of one S3 request."""

    method: str
    bucket: str
    key: str
    headers: dict[str, str]
    query: dict[str, list[str]]

    @property
    def conditional_write(self) -> bool:
        return self.method == "PUT" and ("if-match" in self.headers or "if-none-match" in self.headers)

    @classmethod
    def from_path(cls, method: str, path: str, query: str, headers: dict[str, str]) -> S3Request:
        """Path-style addressing (`/bucket/key`), which botocore uses for an IP endpoint."""
        bucket, _, key = unquote(path).lstrip("/").partition("/")
        return cls(method.upper(), bucket, key, {k.lower(): v for k, v in headers.items()}, parse_qs(query))


@dataclass
class S3Fault:
    """Answer matching requests with an S3 error: the first `times` of them (counted per key with `per_key`), or the
    1st, (every+1)-th, (2·every+1)-th... with `every`."""

    status: int
    code: str
    matches: Callable[[S3Request], bool]
    times: int | None = None
    per_key: bool = False
    every: int | None = None
    _seen: dict[str, int] = field(default_factory=dict)

    def fires(self, request: S3Request) -> bool:
        if not self.matches(request):
            return False
        counter = request.key if self.per_key else ""
        self._seen[counter] = seen = self._seen.get(counter, 0) + 1
        if self.every is not None:
            return (seen - 1) % self.every == 0
        return self.times is None or seen <= self.times


@dataclass
class Interleave:
    """Before the first request that matches, run `action` (say, a rival combine's commit), then let the request go:
    a race whose interleaving is chosen, not left to luck."""

    matches: Callable[[S3Request], bool]
    action: Callable[[], None]
    fired: bool = False


@dataclass
class LambdaFault:
    """A pipeline Lambda's first `times` invocations fail: before running (`after=False`) or after, with its work
    done and its answer lost (a timeout after the side effects). `delay_seconds` instead answers late."""

    times: int = 1
    after: bool = False
    delay_seconds: float = 0.0
    error_type: str = "InjectedFault"
    seen: int = 0


@dataclass
class EventFaults:
    """How the S3 → EventBridge → intake hop misbehaves: every event twice, batches reversed, every `delay_every`-th
    event held back `delay_seconds` (past its combine window)."""

    duplicate: bool = False
    reverse: bool = False
    delay_seconds: float = 0.0
    delay_every: int = 0


def key_matches(pattern: str, method: str | None = None, conditional: bool | None = None) -> Callable[[S3Request], bool]:
    """A rule matching keys by regular expression, optionally one HTTP method and (not) conditional writes."""
    compiled = re.compile(pattern)

    def matches(request: S3Request) -> bool:
        if method is not None and request.method != method:
            return False
        if conditional is not None and request.conditional_write != conditional:
            return False
        return bool(compiled.search(request.key))

    return matches


class FaultPolicy:
    """The faults of one test or soak run; `injected` counts what was actually injected, by kind."""

    def __init__(
        self,
        s3: list[S3Fault | Interleave] | None = None,
        lambdas: dict[str, LambdaFault] | None = None,
        events: EventFaults | None = None,
    ) -> None:
        self.s3 = list(s3 or [])
        self.lambdas = dict(lambdas or {})
        self.events = events or EventFaults()
        self.injected: dict[str, int] = {}
        self._lock = threading.Lock()

    def count(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] = self.injected.get(kind, 0) + 1

    # -- S3 ------------------------------------------------------------------------------------------

    def s3_error(self, request: S3Request) -> tuple[int, str] | None:
        """The (status, code) to answer `request` with, after running any interleaved action; None to pass it on."""
        action = None
        with self._lock:
            for rule in self.s3:
                if isinstance(rule, Interleave):
                    if not rule.fired and rule.matches(request):
                        rule.fired, action = True, rule.action
                        break
                elif rule.fires(request):
                    self.injected[f"s3:{rule.code}"] = self.injected.get(f"s3:{rule.code}", 0) + 1
                    return rule.status, rule.code
        if action is not None:
            self.count("s3:interleaved")
            action()
        return None

    def wsgi(self, app: Callable) -> Callable:
        """WSGI middleware: S3 requests (by their SigV4 credential scope) may be answered with a fault."""

        def middleware(environ: dict, start_response: Callable) -> Any:
            if "/s3/aws4_request" in environ.get("HTTP_AUTHORIZATION", ""):
                headers = {k[5:].replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")}
                request = S3Request.from_path(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""), headers)
                answer = self.s3_error(request)
                if answer is not None:
                    status, code = answer
                    body = error_xml(code, request.key)
                    start_response(f"{status} {code}", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
                    return [body]
            return app(environ, start_response)

        return middleware

    @contextlib.contextmanager
    def attached(self, client: Any) -> Iterator[Any]:
        """Apply the S3 faults to one boto3 S3 client (a botocore `before-send` hook) while the block runs."""
        from botocore.awsrequest import AWSResponse

        def before_send(request: Any, **_: Any) -> Any:
            parts = urlsplit(request.url)
            answer = self.s3_error(S3Request.from_path(request.method, parts.path, parts.query, dict(request.headers)))
            if answer is None:
                return None
            status, code = answer
            return AWSResponse(request.url, status, {"Content-Type": "application/xml"}, _Body(error_xml(code, parts.path)))

        handler_id = f"fault-policy-{uuid.uuid4().hex}"
        client.meta.events.register("before-send.s3", before_send, unique_id=handler_id)
        try:
            yield client
        finally:
            client.meta.events.unregister("before-send.s3", unique_id=handler_id)

    # -- Lambda --------------------------------------------------------------------------------------

    def lambda_fault(self, function_name: str) -> LambdaFault | None:
        """The fault to apply to this invocation of `function_name` (matched on its name's end), if any."""
        with self._lock:
            for suffix, fault in self.lambdas.items():
                if function_name.endswith(suffix) and fault.seen < fault.times:
                    fault.seen += 1
                    kind = "delayed" if fault.delay_seconds else "failed after" if fault.after else "failed"
                    self.injected[f"lambda:{suffix}:{kind}"] = self.injected.get(f"lambda:{suffix}:{kind}", 0) + 1
                    return fault
        return None


class _Body:
    def __init__(self, content: bytes) -> None:
        self.content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.content


def error_xml(code: str, resource: str) -> bytes:
    message = S3_ERROR_MESSAGES.get(code, code)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><Resource>{resource}</Resource>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    ).encode()


def commit_conflicts() -> S3Fault:
    """Every other conditional write of a combined data file, manifest or history.json loses (412), counted per key,
    starting with the first: every commit and every dashboard refresh meets a conflict."""
    return S3Fault(412, "PreconditionFailed", key_matches(r"(/coverage\.sqlite|/manifest\.json|/history\.json)$", method="PUT", conditional=True),
                   every=2, per_key=True)


def throttling(every: int = 7) -> S3Fault:
    """One S3 request in `every` is answered 503 SlowDown (botocore's standard retry mode retries it)."""
    return S3Fault(503, "SlowDown", lambda request: True, every=every)
