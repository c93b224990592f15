"""`lambda-coverage`: run the pipeline locally, rerun combines, fetch reports, combine local files."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DEFAULT_OUT = "coverage-reports"


def _client(service: str, endpoint: str | None) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=endpoint) if endpoint else boto3.client(service)


def _state_machine_arn(endpoint: str | None, name_part: str) -> str:
    sfn = _client("stepfunctions", endpoint)
    matches = [m["stateMachineArn"] for page in sfn.get_paginator("list_state_machines").paginate()
               for m in page["stateMachines"] if name_part in m["name"]]
    if not matches:
        raise SystemExit(f"lambda-coverage: no state machine named like '{name_part}' at {endpoint or 'AWS'}")
    return matches[-1]


def _find_bucket(endpoint: str | None, prefix: str) -> str:
    s3 = _client("s3", endpoint)
    for bucket in s3.list_buckets().get("Buckets", []):
        listed = s3.list_objects_v2(Bucket=bucket["Name"], Prefix=f"{prefix}reports/index.html", MaxKeys=1)
        if listed.get("KeyCount"):
            return bucket["Name"]
    raise SystemExit("lambda-coverage: no bucket holds a dashboard; pass --bucket")


def _check_date(text: str) -> str:
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2026-11-23")
    return text


def cmd_serve(args: argparse.Namespace) -> int:
    from .local.emulation import LocalAws

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with LocalAws(port=args.port, prefix=args.prefix) as aws:
        print(json.dumps(aws.endpoints.as_dict()), flush=True)
        stop.wait()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo

    terminal = sys.stdout  # the pipeline's Lambdas log to sys.stdout, which the demo sends to a file

    def progress(message: str) -> None:
        print(f"[demo] {message}", file=terminal, flush=True)

    try:
        demo(Path(args.out).resolve(), invocations=args.invocations, environments=args.environments, progress=progress)
    except TimeoutError as exc:
        # The message names each stuck group, its files and its last combine; the pipeline log has the rest.
        print(f"lambda-coverage: demo failed: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_load_test(args: argparse.Namespace) -> int:
    from .demo import load_test

    terminal = sys.stdout

    def progress(message: str) -> None:
        print(f"[load-test] {message}", file=terminal, flush=True)

    try:
        report = load_test(args.tier, progress=progress, iterations=args.iterations, workers=args.workers)
    except TimeoutError as exc:
        print(f"lambda-coverage: load test failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=1))
    if not report["zero_loss"] or report["function_errors"]:
        print("lambda-coverage: LOSS DETECTED — raw files outside a manifest or combined data differing from its raw files", file=sys.stderr)
        return 1
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """What runs locally (serve/demo processes) and, with credentials, what is deployed."""
    import subprocess

    from .credentials import has_credentials

    local = subprocess.run(["pgrep", "-af", "lambda-coverage (serve|demo|load-test)"], capture_output=True, text=True).stdout.strip()
    print("local emulation:", "\n  " + local.replace("\n", "\n  ") if local else "not running (start it with `lambda-coverage serve`)")
    if not has_credentials():
        print("AWS: no credentials found; nothing deployed can be checked")
        return 0
    cloudformation = _client("cloudformation", None)
    try:
        stack = cloudformation.describe_stacks(StackName=args.stack)["Stacks"][0]
    except Exception as exc:
        print(f"AWS: stack {args.stack} not found ({exc.__class__.__name__})")
        return 0
    print(f"AWS: stack {args.stack} {stack['StackStatus']}")
    for output in stack.get("Outputs", []):
        print(f"  {output['OutputKey']}: {output['OutputValue']}")
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    import uuid

    from coverage_wrapper.keys import sanitize_segment

    from . import pipeline

    request = {"function": args.function, "date": args.date, "mode": "rebuild"}
    if args.version:
        request["version"] = args.version
    arn = _state_machine_arn(args.endpoint, pipeline.COMBINE.state_machine_name)
    sfn = _client("stepfunctions", args.endpoint)
    # A readable, unique name (moto would otherwise name every unnamed execution "None").
    name = f"rerun-{sanitize_segment(args.function, 40)}-{args.date}-{uuid.uuid4().hex[:8]}"
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(request))["executionArn"]
    print(json.dumps({"execution_arn": execution, "input": request}), flush=True)
    if args.wait:
        import time

        while (description := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            time.sleep(0.5)
        print(json.dumps({"status": description["status"], "output": description.get("output"), "error": description.get("error")}))
        return 0 if description["status"] == "SUCCEEDED" else 1
    return 0


def cmd_reports(args: argparse.Namespace) -> int:
    from coverage_wrapper.keys import normalize_prefix

    from .demo import download_reports

    prefix = normalize_prefix(args.prefix)
    bucket = args.bucket or _find_bucket(args.endpoint, prefix)
    out = Path(args.out).resolve()
    count = download_reports(_client("s3", args.endpoint), bucket, prefix, out)
    print(f"{count} files from s3://{bucket}/{prefix} → {out}/ (dashboard: {out / 'reports' / 'index.html'})")
    return 0


def cmd_combine(args: argparse.Namespace) -> int:
    from coverage_wrapper.merge import merge_data_files

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data_path = out / "coverage.sqlite"
    result = merge_data_files([str(p) for p in args.paths], str(data_path))
    for path, rejection in result.rejected:
        print(f"skipped {path}: {rejection.code}: {rejection.message}", file=sys.stderr)
    if not result.merged:
        print("lambda-coverage: no valid coverage data files to combine", file=sys.stderr)
        return 1
    summary: dict[str, Any] = {"files_combined": len(result.merged), "files_skipped": len(result.rejected), "combined": str(data_path)}
    if args.source_root:
        summary.update(_local_reports(data_path, Path(args.source_root), out, set(result.measurements.executed_lines())))
    print(json.dumps(summary, indent=1))
    return 0


def _local_reports(data_path: Path, source_root: Path, out: Path, measured: set[str]) -> dict[str, Any]:
    """Render every report from local sources, through the same reporter the pipeline uses."""
    from coverage_wrapper.sources import scan_sources
    from lambda_coverage.services.reporter.render import Group, build_reports
    from lambda_coverage.services.reporter.sources import SourceSnapshot

    snapshot = SourceSnapshot(root=str(source_root), manifest_found=True)
    snapshot.available = {f.relative_path: f.absolute_path for f in scan_sources(str(source_root))}
    snapshot.never_executed = set(snapshot.available) - measured
    group = Group(function="local", date=datetime.now(timezone.utc).strftime("%Y-%m-%d"), version="local")
    summary = build_reports(str(data_path), snapshot, str(out), group)
    return {"percent": summary.get("percent"), "covered": summary.get("covered"), "statements": summary.get("statements"), "html": str(out / "html" / "index.html")}


def _diff_versions(versions: list[str], function: str, old: str | None, new: str | None) -> tuple[str, str]:
    """--from/--to as given; a missing one from the function's versions in deployment order (latest two by default)."""
    if old and new:
        return old, new
    if new:
        earlier = versions[: versions.index(new)] if new in versions else []
        if not earlier:
            raise SystemExit(f"lambda-coverage: no code version of {function} is older than {new}; pass --from")
        return earlier[-1], new
    newer = [v for v in versions if v != old]
    if old and newer:
        return old, newer[-1]
    if not old and len(versions) >= 2:
        return versions[-2], versions[-1]
    known = ", ".join(versions) or "none"
    raise SystemExit(f"lambda-coverage: {function} needs two code versions to compare (known: {known}); pass --from and --to")


def cmd_diff(args: argparse.Namespace) -> int:
    """Print the version diff of a function as JSON (what `{p}reports/diff/` holds for the latest two)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from coverage_wrapper.keys import normalize_prefix
    from lambda_coverage.services.reporter.diff import NoVersionData, version_diff
    from lambda_coverage.services.reporter.function_index import known_versions

    prefix = normalize_prefix(args.prefix)
    try:
        s3 = _client("s3", args.endpoint)
        bucket = args.bucket or _find_bucket(args.endpoint, prefix)
        old, new = _diff_versions(known_versions(s3, bucket, prefix, args.function), args.function, args.from_version, args.to_version)
        diff = version_diff(s3, bucket, prefix, args.function, old, new)
    except (NoVersionData, ValueError) as exc:
        raise SystemExit(f"lambda-coverage: {exc}")
    except (BotoCoreError, ClientError) as exc:
        raise SystemExit(f"lambda-coverage: cannot read the coverage bucket ({exc}); check --endpoint, --bucket and credentials")
    print(json.dumps(diff, indent=1))
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="lambda-coverage", description=__doc__)
    verbs = root.add_subparsers(dest="verb", required=True)

    serve = verbs.add_parser("serve", help="keep the local AWS emulation up; prints one JSON line when ready")
    serve.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    serve.add_argument("--prefix", default="coverage/", help="key prefix (default coverage/)")
    serve.set_defaults(run=cmd_serve)

    demo = verbs.add_parser("demo", help="run the examples through the whole local pipeline and download the reports")
    demo.add_argument("--out", default=DEFAULT_OUT, help=f"report folder (default ./{DEFAULT_OUT}/)")
    demo.add_argument("--invocations", type=int, default=0, help="total invocations across the examples (default: every event four times per environment)")
    demo.add_argument("--environments", type=int, default=3, help="execution environments per function (default 3)")
    demo.set_defaults(run=cmd_demo)

    rerun = verbs.add_parser("rerun", help="start a rebuild combine (local with --endpoint, else AWS)")
    rerun.add_argument("--function", required=True)
    rerun.add_argument("--date", required=True, type=_check_date)
    rerun.add_argument("--version", help="code version (default: every version of that day)")
    rerun.add_argument("--endpoint", help="the local emulation's endpoint (from `serve`); omit for AWS")
    rerun.add_argument("--wait", action="store_true", help="wait for the execution and print its status")
    rerun.set_defaults(run=cmd_rerun)

    reports = verbs.add_parser("reports", help="download the reports and dashboard")
    reports.add_argument("--out", required=True)
    reports.add_argument("--endpoint", help="the local emulation's endpoint; omit for AWS")
    reports.add_argument("--bucket", help="coverage bucket (default: the one holding a dashboard)")
    reports.add_argument("--prefix", default="coverage/")
    reports.set_defaults(run=cmd_reports)

    load = verbs.add_parser("load-test", help="many invocations through the local pipeline, then a zero-loss check")
    load.add_argument("--tier", choices=("quick", "standard", "full"), default="standard", help="the seed's tiers: quick 1×2, standard 2×3, full 5×5 (iterations × workers)")
    load.add_argument("--iterations", type=int, help="override the tier's iterations (each event this many times per environment)")
    load.add_argument("--workers", type=int, help="override the tier's execution environments per function")
    load.set_defaults(run=cmd_load_test)

    status = verbs.add_parser("status", help="what runs locally and what is deployed")
    status.add_argument("--stack", default="LambdaCoverageLayerStack")
    status.set_defaults(run=cmd_status)

    combine = verbs.add_parser("combine", help="combine local raw .coverage files (no AWS)")
    combine.add_argument("paths", nargs="+", type=Path)
    combine.add_argument("--out", required=True, help="folder for coverage.sqlite (and reports with --source-root)")
    combine.add_argument("--source-root", help="render JSON/HTML/LCOV/Cobertura reports from these sources")
    combine.set_defaults(run=cmd_combine)

    diff = verbs.add_parser("diff", help="what one code version of a function executes that another does not (JSON)")
    diff.add_argument("--function", required=True)
    diff.add_argument("--from", dest="from_version", help="older code version (default: the one before --to)")
    diff.add_argument("--to", dest="to_version", help="newer code version (default: the latest)")
    diff.add_argument("--endpoint", help="the local emulation's endpoint; omit for AWS")
    diff.add_argument("--bucket", help="coverage bucket (default: the one holding a dashboard)")
    diff.add_argument("--prefix", default="coverage/")
    diff.set_defaults(run=cmd_diff)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
