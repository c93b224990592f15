"""`lambda-coverage invoke`: a user's own function in simulated execution environments, through the local pipeline."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from coverage_wrapper import keys

from .demo import (
    PIPELINE_TIMEOUT_S,
    FleetFunction,
    FleetResult,
    FunctionInitError,
    Invocation,
    download_reports,
    group_summaries,
    pipeline_logs,
    prepare_out,
    run_functions,
)
from .errors import CommandError
from .local.emulation import LocalAws

Progress = Callable[[str], None]
MAX_ENVIRONMENTS = 32  # each one is two processes (runtime and extension) on this machine
_HANDLER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_RESULT_CHARS = 2000


@dataclass(frozen=True)
class InvokeRequest:
    """One `invoke`: which function, where its code is, its events, how many environments, which pipeline."""

    handler: str
    code: Path
    events: Sequence[Any]
    function_name: str
    zero_code: bool = True
    environments: int = 1
    env: dict[str, str] = field(default_factory=dict)
    endpoint: str | None = None
    out: Path = Path("coverage-reports")


@dataclass
class InvokeResult:
    out: Path
    records: list[Invocation]
    summaries: list[dict]
    files: int
    logs: Path


def read_events(source: str) -> list[Any]:
    """Events from a file (or `-` for standard input): a JSON array, one JSON document (an event.json, as for
    `sam local invoke -e`), or JSON lines, one event per line (blank lines skipped)."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read --events {source} ({exc.strerror or exc}): give a file of JSON events") from None
    except UnicodeDecodeError:
        raise CommandError(f"--events {source} is not UTF-8 text: give a file of JSON events") from None
    if not text.strip():
        raise CommandError(f"--events {source} is empty: give one JSON event per line, or a JSON array of events")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as exc:
        document_error = exc
    else:
        return whole if isinstance(whole, list) else [whole]
    events = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as exc:
            # Not JSON lines from the first line on: the file was meant as one document; its own error says where.
            error, where = (document_error, document_error.lineno) if not events else (exc, number)
            raise CommandError(f"--events {source} line {where} is not JSON ({error.msg}): "
                               "give one JSON event per line, a JSON array or one JSON event") from None
    return events


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    """`KEY=VALUE` pairs (the value may hold `=`) into the function's extra environment."""
    env = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise CommandError(f"--env {pair!r} is not KEY=VALUE: give each variable as --env NAME=value")
        env[name] = value
    return env


def default_function_name(code: Path) -> str:
    """The code folder's name, made a valid function name (`./task-service` → `task-service`)."""
    return keys.sanitize_segment(code.resolve().name, 64) or "function"


def check_request(request: InvokeRequest) -> None:
    """Everything the command can check before it starts anything, each failure as one line saying what to do."""
    if not _HANDLER.match(request.handler):
        raise CommandError(f"--handler {request.handler!r} is not MODULE.FUNCTION (like app.handler or services.tasks.handler)")
    if not request.code.is_dir():
        raise CommandError(f"--code {request.code} is not a folder: give the folder that holds the handler's module")
    module = request.handler.rpartition(".")[0]
    path = request.code.joinpath(*module.split("."))
    if not (path.with_suffix(".py").is_file() or (path / "__init__.py").is_file() or any(path.parent.glob(f"{path.name}.*.so"))):
        raise CommandError(f"no module {module} under --code {request.code} (looked for {path.with_suffix('.py')}): check --handler and --code")
    if not keys.is_segment(request.function_name):
        raise CommandError(f"--function {request.function_name!r} must be 1-128 characters of A-Z a-z 0-9 . _ -")
    if not 1 <= request.environments <= MAX_ENVIRONMENTS:
        raise CommandError(f"--environments must be from 1 to {MAX_ENVIRONMENTS} (got {request.environments})")
    if not request.events:
        raise CommandError("no events to invoke the function with: give at least one event")


def invoke(request: InvokeRequest, progress: Progress) -> InvokeResult:
    """Run the function on every event, wait until every raw file is combined, download the reports to `out`."""
    check_request(request)
    out = prepare_out(request.out)
    logs = out.parent / f"{out.name}.function-logs"
    pipeline_log = out.parent / f"{out.name}.pipeline.log"
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lambda-coverage-invoke-")))
        aws: LocalAws
        if request.endpoint:
            from .local.served import find_served_pipeline

            aws = find_served_pipeline(request.endpoint)
            progress(f"using the pipeline at {aws.endpoint} (bucket {aws.bucket}, prefix {aws.prefix})")
        else:
            aws = stack.enter_context(LocalAws())
            # The pipeline's Lambdas run in this process and log to stdout: into the pipeline log.
            log_file = stack.enter_context(open(pipeline_log, "w"))
            stack.enter_context(contextlib.redirect_stdout(log_file))
            stack.enter_context(pipeline_logs(log_file))
            progress(f"local AWS emulation up at {aws.endpoint} (bucket {aws.bucket}); pipeline logs in {pipeline_log}")
        function = FleetFunction(request.function_name, request.handler, request.code, request.zero_code, list(request.events), request.env)
        try:
            # Every invocation's data is flushed at once, so the extension ships it while the next one runs (as on a
            # busy function) and shutdown has only the last flush to upload; --env COVERAGE_FLUSH_INVOCATIONS=N overrides.
            fleet = run_functions(aws, scratch, [function], request.environments, flush_invocations=1, progress=progress, log_root=logs)
        except FunctionInitError as exc:
            raise CommandError(f"the function failed to initialize: {exc.reason} (its log: {exc.log})") from None
        for index, count in ship_leftovers(aws, fleet, logs):
            progress(f"warning: environment {index + 1} had not finished uploading when Lambda's 2 s shutdown budget ended; "
                     f"{count} files shipped from its /tmp afterwards (on Lambda they would be lost)")
        progress(f"waiting for the pipeline: every raw file validated, combined and reported (function logs in {logs})")
        aws.wait_until_idle(timeout=PIPELINE_TIMEOUT_S)
        files = download_reports(aws.client("s3"), aws.bucket, aws.prefix, out)
        summaries = group_summaries(aws, request.function_name)
    return InvokeResult(out, fleet.records, summaries, files, logs)


def ship_leftovers(aws: LocalAws, fleet: FleetResult, logs: Path) -> list[tuple[int, int]]:
    """Ship what the environments' outboxes still hold after their shutdown, with the layer's own drain: on a loaded
    machine an extension can run out of its SHUTDOWN budget, and the simulated /tmp outlives the environment.
    Returns (environment index, files shipped) for each environment that had any; the drain's log goes to `logs`."""
    from coverage_wrapper.config import parse_config
    from coverage_wrapper.outbox import Outbox
    from coverage_wrapper.shipper import drain

    shipped = []
    client = None
    for function_name, index, env in fleet.settings:
        config = parse_config(env)
        outbox = Outbox(config.outbox_dir, config.outbox_max_files)
        if not outbox.entries():
            continue
        client = client or aws.client("s3")
        log = logs / f"{function_name}-{index}" / "shipped-after-shutdown.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as handle, contextlib.redirect_stdout(handle):  # the layer logs to stdout
            summary = drain(outbox, config, everything=True, client=client)
        shipped.append((index, len(summary["uploaded"])))
    return shipped


def describe(record: Invocation, total: int) -> str:
    """One invocation on one line: its number, environment, duration, and its result or error."""
    where = f"#{record.position + 1} of {total} (environment {record.environment + 1}, {record.duration_ms:.1f} ms)"
    if record.outcome == "response":
        text = json.dumps(record.payload, ensure_ascii=False)
        return f"{where} → {text[:_RESULT_CHARS]}{'…' if len(text) > _RESULT_CHARS else ''}"
    error = record.payload if isinstance(record.payload, dict) else {"errorMessage": str(record.payload)}
    message = " ".join(str(error.get("errorMessage", "")).split())[:_RESULT_CHARS]
    return f"{where} → error {error.get('errorType', 'Error')}: {message}"
