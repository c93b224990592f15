"""The pipeline on the local emulation: invocation throughput, upload-to-report latency, and the request counts the cost model uses.

The pipeline's Lambdas run inside this process (LocalAws routes `Invoke` to them), so every AWS call
they make can be counted here, attributed to the Lambda that made it, and every invocation timed.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import statistics
import tempfile
import threading
import time
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

_current = threading.local()


class CallCounter:
    """Counts botocore API calls made by pipeline Lambdas (not this benchmark's own calls) and times each Lambda."""

    def __init__(self) -> None:
        self.calls: collections.Counter = collections.Counter()
        self.lambda_ms: dict[str, list[float]] = collections.defaultdict(list)
        self._lock = threading.Lock()

    def install(self, router: Any) -> None:
        import botocore.client

        original_call = botocore.client.BaseClient._make_api_call
        counter = self

        def counted(client: Any, operation: str, params: dict) -> Any:
            function = getattr(_current, "function", None)
            if function is not None:
                with counter._lock:
                    counter.calls[(function, client.meta.service_model.service_name, operation)] += 1
            return original_call(client, operation, params)

        botocore.client.BaseClient._make_api_call = counted
        _propagate_to_pools()
        original_invoke = router.invoke

        def timed(name: str, payload: bytes) -> Any:
            _current.function = name
            began = time.perf_counter()
            try:
                return original_invoke(name, payload)
            finally:
                _current.function = None
                with counter._lock:
                    counter.lambda_ms[name].append((time.perf_counter() - began) * 1000)

        router.invoke = timed

    def snapshot(self) -> tuple[collections.Counter, dict[str, int]]:
        with self._lock:
            return collections.Counter(self.calls), {name: len(ms) for name, ms in self.lambda_ms.items()}


def _propagate_to_pools() -> None:
    """Reporter and combiner upload from thread pools: their calls still belong to the Lambda that submitted them."""
    import concurrent.futures

    original_submit = concurrent.futures.ThreadPoolExecutor.submit

    def submit(pool: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        function = getattr(_current, "function", None)
        if function is None:
            return original_submit(pool, fn, *args, **kwargs)

        def attributed(*inner_args: Any, **inner_kwargs: Any) -> Any:
            _current.function = function
            try:
                return fn(*inner_args, **inner_kwargs)
            finally:
                _current.function = None

        return original_submit(pool, attributed, *args, **kwargs)

    concurrent.futures.ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]


def _quiet() -> None:
    """The pipeline's JSON logs and metrics stay out of the benchmark's output."""
    import logging

    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    for name in ("moto", "werkzeug", "botocore"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _summary(s3: Any, bucket: str, key: str) -> dict | None:
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def _history_counts(sfn: Any, execution_arn: str) -> dict[str, int]:
    events = []
    token = None
    while True:
        page = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            break
    kinds = collections.Counter(e["type"] for e in events)
    # AWS bills a Standard workflow per state transition: one per state entered (Map iterations included).
    return {"events": len(events), "state_transitions": sum(n for kind, n in kinds.items() if kind.endswith("StateEntered"))}


def measure(environments: int, iterations: int, bursts: int, burst_files: int, progress=print) -> dict:
    from coverage_wrapper import keys
    from lambda_coverage.demo import run_fleet
    from lambda_coverage.local.emulation import LocalAws
    from lambda_coverage.pipeline import FUNCTIONS

    results: dict[str, Any] = {}
    counter = CallCounter()
    log = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as scratch, LocalAws() as aws, contextlib.redirect_stdout(log):
        _quiet()
        counter.install(aws.router)
        s3, sfn = aws.client("s3"), aws.client("stepfunctions")
        fleet = run_fleet(aws, Path(scratch), environments=environments, iterations=iterations, flush_invocations=5, progress=lambda _m: None)
        aws.wait_until_idle(timeout=300)
        results["fleet"] = {
            "environments": fleet.environments,
            "invocations": fleet.invocations,
            "errors": len(fleet.errors),
            "invoke_seconds": fleet.invoke_seconds,
            "invocations_per_s": fleet.invocations / max(fleet.invoke_seconds, 1e-9),
            "cold_start_ms": statistics.median(fleet.cold_starts_ms),
            "shutdown_to_idle_s": time.time() - fleet.shutdown_finished_at,
        }
        # A real raw upload of the fleet is the template of each burst: same group, new keys.
        raw = [o["Key"] for o in s3.list_objects_v2(Bucket=aws.bucket, Prefix=keys.raw_root(aws.prefix) + "simple-function/")["Contents"]]
        template = s3.get_object(Bucket=aws.bucket, Key=raw[0])
        body, metadata = template["Body"].read(), template["Metadata"]
        parsed = keys.parse_raw_key(raw[0], aws.prefix)
        summary_key = keys.combined_prefix(aws.prefix, parsed.function, parsed.date, parsed.version) + "summary.json"
        results["bursts"] = []
        for burst in range(bursts):
            progress(f"  pipeline: burst {burst + 1} of {bursts} ({burst_files} raw uploads)")
            before_calls, before_invokes = counter.snapshot()
            expected = (_summary(s3, aws.bucket, summary_key) or {}).get("raw_files", 0) + burst_files
            started = time.time()
            first = time.perf_counter()
            for n in range(burst_files):
                env = os.urandom(4).hex()
                key = keys.raw_key(aws.prefix, parsed.function, datetime.now(UTC), parsed.version, env, n + 1)
                s3.put_object(Bucket=aws.bucket, Key=key, Body=body, Metadata=metadata, ContentType="application/vnd.sqlite3")
            last_upload = time.perf_counter()
            while True:
                seen = _summary(s3, aws.bucket, summary_key) or {}
                if (seen.get("raw_files") or 0) >= expected:
                    break
                if time.perf_counter() - last_upload > 120:
                    raise TimeoutError(f"summary.json never counted {expected} raw files")
                time.sleep(0.05)
            reported = time.perf_counter()
            aws.wait_until_idle(timeout=120)
            after_calls, after_invokes = counter.snapshot()
            combines = [e for e in aws.executions(aws.combine_state_machine_arn) if e["startDate"].timestamp() >= started - 1]
            intakes = [e for e in aws.executions(aws.intake_state_machine_arn) if e["startDate"].timestamp() >= started - 1]
            results["bursts"].append({
                "raw_files": burst_files,
                "upload_seconds": last_upload - first,
                "last_upload_to_summary_s": reported - last_upload,
                "raw_files_per_s": burst_files / (reported - first),
                "combines": len(combines),
                "combine_history": [_history_counts(sfn, e["executionArn"]) for e in combines],
                "combine_seconds": [(e["stopDate"] - e["startDate"]).total_seconds() for e in combines if e.get("stopDate")],
                "intakes": len(intakes),
                "intake_seconds": [(e["stopDate"] - e["startDate"]).total_seconds() for e in intakes if e.get("stopDate")],
                "calls": {"|".join(k): v for k, v in (after_calls - before_calls).items()},
                "lambda_invocations": {k: after_invokes.get(k, 0) - before_invokes.get(k, 0) for k in after_invokes},
            })
        results["window_seconds"] = aws.window_seconds
        results["lambda_ms"] = {name: statistics.median(ms) for name, ms in counter.lambda_ms.items()}
        results["lambda_memory_mb"] = {f.function_name: f.memory_mb for f in FUNCTIONS}
    return results
