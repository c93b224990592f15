"""The demo and the load tests: example functions in simulated execution environments, feeding the local pipeline."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from coverage_wrapper import keys
from coverage_wrapper.merge import Measurements, merge_data_files

from .examples import EXAMPLES, Example
from .execution_environment import ExecutionEnvironment, stage_layer
from .local.emulation import LocalAws

Progress = Callable[[str], None]


def _today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def resolve_event(event: Any, prefix: str) -> Any:
    """Fill the placeholders the example events use: today's date and the bucket prefix."""
    text = json.dumps(event).replace('"today"', json.dumps(_today())).replace("coverage/", prefix)
    return json.loads(text)


@dataclass
class FleetResult:
    environments: int = 0
    invocations: int = 0
    errors: list[str] = field(default_factory=list)
    invoke_seconds: float = 0.0
    cold_starts_ms: list[float] = field(default_factory=list)
    shutdown_finished_at: float = 0.0


def run_fleet(
    aws: LocalAws,
    workdir: Path,
    examples: Iterable[Example] = EXAMPLES,
    environments: int = 3,
    iterations: int = 2,
    flush_invocations: int = 5,
    progress: Progress = print,
) -> FleetResult:
    """Start `environments` execution environments per example, invoke every event `iterations` times
    spread across them (cold, then warm), then shut them all down (SIGTERM, SHUTDOWN)."""
    opt = stage_layer(workdir / "opt")
    fleet: list[tuple[Example, ExecutionEnvironment]] = []
    for example in examples:
        code = workdir / "functions" / example.function_name
        if not code.exists():
            shutil.copytree(example.path, code, ignore=shutil.ignore_patterns("__pycache__"))
        for index in range(environments):
            env = {
                "COVERAGE_S3_BUCKET": aws.bucket,
                "COVERAGE_S3_PREFIX": aws.prefix,
                "COVERAGE_SOURCE_ROOT": str(code),
                "COVERAGE_OUTBOX_DIR": str(workdir / "tmp" / f"{example.function_name}-{index}"),
                "COVERAGE_FLUSH_INVOCATIONS": str(flush_invocations),
                "AWS_ENDPOINT_URL": aws.endpoint,
            }
            fleet.append((example, ExecutionEnvironment(
                example.function_name, example.handler, code, opt, env=env,
                exec_wrapper=example.zero_code, log_dir=workdir / "logs" / f"{example.function_name}-{index}",
            )))
    result = FleetResult(environments=len(fleet))
    workers = max(1, len(fleet))
    progress(f"starting {len(fleet)} execution environments ({environments} per function, cold starts)")
    with ThreadPoolExecutor(workers) as pool:
        result.cold_starts_ms = [s * 1000 for s in pool.map(lambda pair: pair[1].start(), fleet)]

    def drive(position: int) -> tuple[int, list[str]]:
        example, environment = fleet[position]
        index = position % environments
        events = [e for n, e in enumerate(itertools.chain.from_iterable([example.events] * iterations * environments)) if n % environments == index]
        errors = []
        for event in events:
            record = environment.invoke(resolve_event(event, aws.prefix))
            if record["outcome"] != "response":
                errors.append(f"{example.function_name}: {record['payload']}")
        return len(events), errors

    began = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for count, errors in pool.map(drive, range(len(fleet))):
            result.invocations += count
            result.errors += errors
    result.invoke_seconds = time.perf_counter() - began
    progress(f"{result.invocations} invocations in {result.invoke_seconds:.1f} s; shutting environments down (SIGTERM, then SHUTDOWN)")
    # A few at a time: on Lambda each environment has its own CPU share for its 2 s shutdown budget.
    with ThreadPoolExecutor(min(workers, 4)) as pool:
        list(pool.map(lambda pair: pair[1].shutdown(), fleet))
    result.shutdown_finished_at = time.time()
    return result


def group_summaries(aws: LocalAws) -> list[dict]:
    s3 = aws.client("s3")
    summaries = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket, Prefix=f"{aws.prefix}combined/"):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/summary.json"):
                summary = json.loads(s3.get_object(Bucket=aws.bucket, Key=item["Key"])["Body"].read())
                summary["generated_key_modified"] = item["LastModified"].timestamp()
                summaries.append(summary)
    return sorted(summaries, key=lambda s: (s["function"], s["date"], s["version"]))


def download_reports(s3: Any, bucket: str, prefix: str, out: Path) -> int:
    """Everything readable under the prefix except raw data and source blobs, paths without the prefix."""
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix):]
            if relative.startswith(("raw/", "sources/")) or relative.endswith("/") or ".." in relative.split("/"):
                continue
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            count += 1
    return count


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
    emulation = logging.getLogger("infrastructure")
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
    iterations = max(1, invocations // max(1, sum(len(e.events) for e in EXAMPLES) * environments)) if invocations else 4
    out.mkdir(parents=True, exist_ok=True)
    pipeline_log = out.parent / f"{out.name}.pipeline.log"
    with tempfile.TemporaryDirectory(prefix="lambda-coverage-demo-") as scratch, LocalAws() as aws, \
            open(pipeline_log, "w") as log_file, contextlib.redirect_stdout(log_file), pipeline_logs(log_file):
        progress(f"local AWS emulation up at {aws.endpoint} (bucket {aws.bucket}); pipeline logs in {pipeline_log}")
        fleet = run_fleet(aws, Path(scratch), environments=environments, iterations=iterations, progress=progress)
        for error in fleet.errors:
            progress(f"unexpected function error: {error}")
        progress("waiting for the pipeline: every raw file validated, combined and reported")
        aws.wait_until_idle(timeout=150)
        progress("sweeping the day in daily mode (what the daily schedule does)")
        daily = aws.wait_for_execution(aws.start_daily(_today()), timeout=120)
        if daily["status"] != "SUCCEEDED":
            raise RuntimeError(f"daily sweep {daily['status']}: {daily.get('error')} {daily.get('cause')}")
        shutil.rmtree(out)
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
