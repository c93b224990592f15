"""The demo and the load tests: example functions in simulated execution environments, feeding the local pipeline."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from coverage_wrapper import keys
from coverage_wrapper.merge import Measurements, merge_data_files

from .errors import CommandError
from .examples import EXAMPLES, Example
from .execution_environment import ExecutionEnvironment, stage_layer
from .local.emulation import REGION, LocalAws

Progress = Callable[[str], None]
# How long the demo and `invoke` wait for every raw file to be combined once the environments are shut down.
PIPELINE_TIMEOUT_S = 150
# The report folders a download writes (and replaces), never anything else in the folder it is given.
_REPORT_FOLDERS = ("combined", "versions", "daily", "reports", "quarantine")


def _today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def resolve_event(event: Any, prefix: str) -> Any:
    """Fill the placeholders the example events use: today's date and the bucket prefix."""
    text = json.dumps(event).replace('"today"', json.dumps(_today())).replace("coverage/", prefix)
    return json.loads(text)


@dataclass(frozen=True)
class FleetFunction:
    """One function the fleet runs: its name, handler, code folder, mode, its events in order and extra environment.

    Event n goes to execution environment n modulo the number of environments; each environment takes its
    events one after the other, the environments side by side."""

    function_name: str
    handler: str
    code: Path
    zero_code: bool
    events: Sequence[Any]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Invocation:
    """What one invocation answered: `outcome` is `response` or `error` (the runtime's error document)."""

    function_name: str
    position: int
    environment: int
    outcome: str
    payload: Any
    duration_ms: float


@dataclass
class FleetResult:
    environments: int = 0
    records: list[Invocation] = field(default_factory=list)
    invoke_seconds: float = 0.0
    cold_starts_ms: list[float] = field(default_factory=list)
    shutdown_finished_at: float = 0.0
    # (function name, environment index, its environment variables): where each one's outbox was, and more.
    settings: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)

    @property
    def invocations(self) -> int:
        return len(self.records)

    @property
    def errors(self) -> list[str]:
        return [f"{r.function_name}: {r.payload}" for r in self.records if r.outcome != "response"]


class FunctionInitError(RuntimeError):
    """An execution environment could not start: the function's init failed (its error document) or its process died."""

    def __init__(self, function_name: str, reason: str, log: Path | None) -> None:
        super().__init__(f"{function_name}: {reason}")
        self.function_name = function_name
        self.reason = reason
        self.log = log


def example_functions(examples: Iterable[Example], repeat: int, prefix: str) -> list[FleetFunction]:
    """The examples as fleet functions, each event `repeat` times (placeholders filled)."""
    return [
        FleetFunction(e.function_name, e.handler, e.path, e.zero_code, [resolve_event(event, prefix) for event in e.events] * repeat)
        for e in examples
    ]


def run_fleet(
    aws: LocalAws,
    workdir: Path,
    examples: Iterable[Example] = EXAMPLES,
    environments: int = 3,
    iterations: int = 2,
    flush_invocations: int = 5,
    progress: Progress = print,
) -> FleetResult:
    """Start `environments` execution environments per example, invoke every event `iterations` times in each
    (cold, then warm), then shut them all down (SIGTERM, SHUTDOWN)."""
    functions = example_functions(examples, iterations * environments, aws.prefix)
    return run_functions(aws, workdir, functions, environments, flush_invocations=flush_invocations, progress=progress)


def run_functions(
    aws: LocalAws,
    workdir: Path,
    functions: Sequence[FleetFunction],
    environments: int,
    flush_invocations: int | None = None,
    progress: Progress = print,
    log_root: Path | None = None,
) -> FleetResult:
    """Run each function in `environments` execution environments against the pipeline of `aws`: the layer as
    at /opt, the extension, a private /tmp each; every environment is shut down (SIGTERM, SHUTDOWN) at the end,
    whatever happened. The functions' own AWS calls go to the same endpoint, with dummy credentials.

    `flush_invocations` None keeps the layer's default flush policy. Function logs go under `log_root`
    (default `workdir/logs`), one folder per environment."""
    if environments < 1:
        raise CommandError(f"--environments must be 1 or more (got {environments})")
    opt = stage_layer(workdir / "opt")
    log_root = log_root or workdir / "logs"
    fleet: list[tuple[FleetFunction, int, ExecutionEnvironment]] = []
    for function in functions:
        code = workdir / "functions" / function.function_name
        if not code.exists():
            # A copy, as Lambda runs a deployment package: nothing is written into the function's own folder.
            shutil.copytree(function.code, code, ignore=shutil.ignore_patterns("__pycache__", ".git"))
        for index in range(environments):
            private_tmp = workdir / "tmp" / f"{function.function_name}-{index}"
            private_tmp.mkdir(parents=True, exist_ok=True)
            env = {
                "COVERAGE_S3_BUCKET": aws.bucket,
                "COVERAGE_S3_PREFIX": aws.prefix,
                "COVERAGE_SOURCE_ROOT": str(code),
                "COVERAGE_OUTBOX_DIR": str(private_tmp / "lambda-coverage"),
                "TMPDIR": str(private_tmp),
                "AWS_ENDPOINT_URL": aws.endpoint,
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                # Never the caller's credentials: everything here talks to the emulation, which takes any.
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
            }
            if flush_invocations:
                env["COVERAGE_FLUSH_INVOCATIONS"] = str(flush_invocations)
            env.update(function.env)
            fleet.append((function, index, ExecutionEnvironment(
                function.function_name, function.handler, code, opt, env=env,
                exec_wrapper=function.zero_code, log_dir=log_root / f"{function.function_name}-{index}",
            )))
    result = FleetResult(environments=len(fleet), settings=[(f.function_name, i, e.extra_env) for f, i, e in fleet])
    workers = max(1, len(fleet))
    per_function = "" if len(functions) == 1 else f", {environments} per function"
    progress(f"starting {len(fleet)} execution environments{per_function} (cold starts)")
    try:
        result.cold_starts_ms = _start_all(fleet, workers)

        def drive(member: tuple[FleetFunction, int, ExecutionEnvironment]) -> list[Invocation]:
            function, index, environment = member
            records = []
            for position in range(index, len(function.events), environments):
                record = environment.invoke(function.events[position])
                records.append(Invocation(function.function_name, position, index, record["outcome"], record["payload"], record["duration_ms"]))
            return records

        began = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            for records in pool.map(drive, fleet):
                result.records += records
        result.invoke_seconds = time.perf_counter() - began
        result.records.sort(key=lambda r: (r.function_name, r.position))
        progress(f"{result.invocations} invocations in {result.invoke_seconds:.1f} s; shutting environments down (SIGTERM, then SHUTDOWN)")
    finally:
        # A few at a time: on Lambda each environment has its own CPU share for its 2 s shutdown budget.
        with ThreadPoolExecutor(min(workers, 4)) as pool:
            list(pool.map(lambda member: member[2].shutdown(), fleet))
        result.shutdown_finished_at = time.time()
    return result


def _start_all(fleet: list[tuple[FleetFunction, int, ExecutionEnvironment]], workers: int) -> list[float]:
    """Cold-start every environment side by side; the first that cannot start is raised as `FunctionInitError`."""

    def start(member: tuple[FleetFunction, int, ExecutionEnvironment]) -> float | FunctionInitError:
        function, _index, environment = member
        try:
            return environment.start() * 1000
        except (RuntimeError, TimeoutError) as exc:
            reason = _init_error_text(environment.init_error) if environment.init_error else str(exc).removeprefix(f"{function.function_name}: ")
            log = environment.log_dir / "runtime.log" if environment.log_dir else None
            return FunctionInitError(function.function_name, reason, log)

    with ThreadPoolExecutor(workers) as pool:
        started = list(pool.map(start, fleet))
    for outcome in started:
        if isinstance(outcome, FunctionInitError):
            raise outcome
    return [s for s in started if isinstance(s, float)]


def _init_error_text(document: dict) -> str:
    """The runtime's init error document in one line: `Runtime.ImportModuleError: Unable to import module ...`."""
    message = " ".join(str(document.get("errorMessage", "")).split())
    return f"{document.get('errorType', 'error')}: {message}" if message else str(document.get("errorType", document))


def group_summaries(aws: LocalAws, function: str | None = None) -> list[dict]:
    """Every group's summary.json (or only `function`'s), sorted by function, date and version."""
    s3 = aws.client("s3")
    summaries = []
    root = f"{aws.prefix}combined/" + (f"{function}/" if function else "")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket, Prefix=root):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/summary.json"):
                summary = json.loads(s3.get_object(Bucket=aws.bucket, Key=item["Key"])["Body"].read())
                summary["generated_key_modified"] = item["LastModified"].timestamp()
                summaries.append(summary)
    return sorted(summaries, key=lambda s: (s["function"], s["date"], s["version"]))


def prepare_out(out: Path) -> Path:
    """The report folder, created and writable, as an absolute path; a one-line `CommandError` when it cannot be."""
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file: give a folder for the reports")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise CommandError(f"cannot write reports to --out {out} ({exc.strerror or exc}): choose a folder you can write") from None
    return out


def download_reports(s3: Any, bucket: str, prefix: str, out: Path) -> int:
    """Everything readable under the prefix except raw data and source blobs, paths without the prefix.

    Each report folder it writes (`combined/`, `reports/`, ...) replaces the same folder of an earlier download;
    nothing else in `out` is touched."""
    wanted = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix):]
            if relative.startswith(("raw/", "sources/")) or relative.endswith("/") or ".." in relative.split("/"):
                continue
            wanted.append((item["Key"], relative))
    for folder in {relative.split("/", 1)[0] for _, relative in wanted} & set(_REPORT_FOLDERS):
        if (out / folder).is_dir():
            shutil.rmtree(out / folder)
    for key, relative in wanted:
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return len(wanted)


def summary_table(summaries: list[dict]) -> str:
    rows = [("function", "version", "date", "raw files", "lines covered", "percent")]
    for s in summaries:
        percent = "n/a" if s.get("percent") is None else f"{s['percent']:.1f}%"
        rows.append((s["function"], s["version"], s["date"], str(s.get("raw_files") or 0), f"{s.get('covered', 0)}/{s.get('statements', 0)}", percent))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@contextlib.contextmanager
def pipeline_logs(log_file: Any) -> Iterator[None]:
    """The pipeline's Lambdas run in this process and print their JSON logs (INFO: every intake decision, plan,
    batch, commit and follow-up) to stdout, which the caller sends to `log_file`; the emulation's own log lines
    go there too. Metrics stay off: they would repeat every count as JSON."""
    import logging

    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    emulation = logging.getLogger(__package__)  # the emulation's modules (the event bridge's deliveries)
    emulation.setLevel(logging.INFO)
    handler = logging.StreamHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    emulation.addHandler(handler)
    try:
        yield
    finally:
        emulation.removeHandler(handler)


def demo(out: Path, invocations: int = 0, environments: int = 3, progress: Progress = print) -> list[dict]:
    """What `make demo` runs: the five examples → S3 → EventBridge → Step Functions → reports in `out`."""
    began = time.perf_counter()
    if environments < 1:
        raise CommandError(f"--environments must be 1 or more (got {environments})")
    if invocations < 0:
        raise CommandError(f"--invocations must be 0 (the default mix) or more (got {invocations})")
    iterations = max(1, invocations // max(1, sum(len(e.events) for e in EXAMPLES) * environments)) if invocations else 4
    out = prepare_out(out)
    pipeline_log = out.parent / f"{out.name}.pipeline.log"
    with tempfile.TemporaryDirectory(prefix="lambda-coverage-demo-") as scratch, LocalAws() as aws, \
            open(pipeline_log, "w") as log_file, contextlib.redirect_stdout(log_file), pipeline_logs(log_file):
        progress(f"local AWS emulation up at {aws.endpoint} (bucket {aws.bucket}); pipeline logs in {pipeline_log}")
        fleet = run_fleet(aws, Path(scratch), environments=environments, iterations=iterations, progress=progress)
        for error in fleet.errors:
            progress(f"unexpected function error: {error}")
        progress("waiting for the pipeline: every raw file validated, combined and reported")
        aws.wait_until_idle(timeout=PIPELINE_TIMEOUT_S)
        progress("sweeping the day in daily mode (what the daily schedule does)")
        daily = aws.wait_for_execution(aws.start_daily(_today()), timeout=120)
        if daily["status"] != "SUCCEEDED":
            raise RuntimeError(f"daily sweep {daily['status']}: {daily.get('error')} {daily.get('cause')}")
        files = download_reports(aws.client("s3"), aws.bucket, aws.prefix, out)
        summaries = group_summaries(aws)
    progress(f"downloaded {files} report files to {out}/ in {time.perf_counter() - began:.0f} s total")
    print()
    print(summary_table(summaries))
    print()
    print(f"Dashboard: {out / 'reports' / 'index.html'}")
    return summaries


def zero_loss_check(aws: LocalAws, scratch: Path) -> dict[str, Any]:
    """Every raw file is in its group's manifest, and each combined file equals the union of its raw files."""
    s3 = aws.client("s3")
    groups: dict[tuple[str, str, str], list[str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket, Prefix=keys.raw_root(aws.prefix)):
        for item in page.get("Contents", []):
            raw = keys.parse_raw_key(item["Key"], aws.prefix)
            if raw is not None:
                groups.setdefault(raw.group, []).append(item["Key"])
    mismatched = []
    for group, raw_keys in groups.items():
        local = []
        for n, key in enumerate(raw_keys):
            path = scratch / f"zero-loss-{n}.coverage"
            path.write_bytes(s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read())
            local.append(str(path))
        union = merge_data_files(local).measurements
        combined_path = scratch / "combined.sqlite"
        combined_key = keys.combined_prefix(aws.prefix, *group) + "coverage.sqlite"
        combined_path.write_bytes(s3.get_object(Bucket=aws.bucket, Key=combined_key)["Body"].read())
        combined = Measurements()
        combined.add_file(str(combined_path))
        if combined.executed_lines() != union.executed_lines():
            mismatched.append("/".join(group))
    return {"groups": len(groups), "raw_files": sum(map(len, groups.values())), "unmerged": aws.unmerged_raw_keys(), "mismatched_groups": mismatched}


def upload_to_report_seconds(aws: LocalAws, summaries: list[dict]) -> list[float]:
    """Per group: from its last raw upload to the summary.json written after it (S3 LastModified times)."""
    s3 = aws.client("s3")
    last_upload: dict[tuple[str, str, str], float] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket, Prefix=keys.raw_root(aws.prefix)):
        for item in page.get("Contents", []):
            raw = keys.parse_raw_key(item["Key"], aws.prefix)
            if raw is not None:
                last_upload[raw.group] = max(last_upload.get(raw.group, 0.0), item["LastModified"].timestamp())
    return [
        summary["generated_key_modified"] - last_upload[group]
        for summary in summaries
        if (group := (summary["function"], summary["date"], summary["version"])) in last_upload
    ]


TIERS = {"quick": (1, 2), "standard": (2, 3), "full": (5, 5)}


def load_test(
    tier: str,
    progress: Progress = print,
    iterations: int | None = None,
    workers: int | None = None,
    pipeline_log: Path | None = None,
) -> dict[str, Any]:
    """The seed's load-test tiers (iterations × workers) against the local emulation, with a zero-loss check.

    The pipeline's logs go to `pipeline_log` (default ./load-test.pipeline.log), kept after the run.
    """
    iterations = iterations or TIERS[tier][0]
    workers = workers or TIERS[tier][1]
    pipeline_log = (pipeline_log or Path("load-test.pipeline.log")).resolve()
    with tempfile.TemporaryDirectory(prefix="lambda-coverage-load-") as scratch, LocalAws() as aws, \
            open(pipeline_log, "w") as log_file, contextlib.redirect_stdout(log_file), pipeline_logs(log_file):
        progress(f"local AWS emulation up at {aws.endpoint}; pipeline logs in {pipeline_log}")
        # Each tier iteration sends every example event ten times per environment.
        fleet = run_fleet(aws, Path(scratch), environments=workers, iterations=iterations * 10 * workers, flush_invocations=2, progress=progress)
        progress("waiting for the pipeline, then checking that nothing was lost")
        aws.wait_until_idle(timeout=300)
        idle_at = time.time()
        summaries = group_summaries(aws)
        latencies = upload_to_report_seconds(aws, summaries)
        check = zero_loss_check(aws, Path(scratch))
    report = {
        "tier": tier,
        "iterations": iterations,
        "workers": workers,
        "environments": fleet.environments,
        "invocations": fleet.invocations,
        "function_errors": len(fleet.errors),
        "throughput_invocations_per_s": round(fleet.invocations / max(fleet.invoke_seconds, 1e-9), 1),
        "median_cold_start_ms": round(sorted(fleet.cold_starts_ms)[len(fleet.cold_starts_ms) // 2], 1),
        "shutdown_to_reports_s": round(idle_at - fleet.shutdown_finished_at, 1),
        "upload_to_report_s": {"median": round(statistics.median(latencies), 2), "max": round(max(latencies), 2)} if latencies else None,
        "groups": check["groups"],
        "raw_files": check["raw_files"],
        "unmerged_raw_files": len(check["unmerged"]),
        "mismatched_groups": check["mismatched_groups"],
        "zero_loss": not check["unmerged"] and not check["mismatched_groups"],
        "reports": len(summaries),
    }
    return report
