"""`lambda-coverage`: run the pipeline locally, invoke your own function through it, rerun combines, fetch reports."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from coverage_wrapper._version import __version__

from .errors import CommandError

DEFAULT_OUT = "coverage-reports"
STACK_NAME = "LambdaCoverageLayerStack"  # the CDK app's stack (lambda_coverage.cdk.stack.STACK_NAME)
TRACEBACK_VARIABLE = "LAMBDA_COVERAGE_TRACEBACK"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class _CodeVersionOrToolVersion(argparse.Action):
    """`rerun --version V` names a code version (the contract's flag); `--version` alone prints the tool's, as on every verb."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        if values is None:
            print(f"lambda-coverage {__version__}")
            parser.exit(0)
        setattr(namespace, self.dest, values)


def is_local(endpoint: str | None) -> bool:
    """An endpoint on this machine: the emulation (`serve`), which takes dummy credentials and has its own region."""
    if not endpoint:
        return False
    host = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}").hostname or ""
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


def _client(service: str, endpoint: str | None) -> Any:
    import boto3

    if endpoint and is_local(endpoint):
        from .local.served import local_client

        return local_client(service, endpoint)
    return boto3.client(service, endpoint_url=endpoint) if endpoint else boto3.client(service)


def _require_credentials(endpoint: str | None) -> None:
    """AWS (no local endpoint) needs credentials: say how to get them, or how to use the emulation instead."""
    from .credentials import has_credentials

    if not is_local(endpoint) and not has_credentials():
        raise CommandError("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or `aws sso login`), "
                           "or pass --endpoint with the local emulation's endpoint from `lambda-coverage serve`")


def _describe_stack(stack: str) -> dict[str, Any]:
    """The deployed stack: its status and outputs (what `cdk deploy` printed)."""
    from botocore.exceptions import ClientError

    try:
        return _client("cloudformation", None).describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ValidationError":
            raise CommandError(f"no stack {stack} in this account and region: deploy it (`make cdk-deploy`), "
                               "or pass --stack with its name, or --endpoint for the local emulation") from None
        raise


def _stack_outputs(stack: str) -> dict[str, str]:
    return {output["OutputKey"]: output["OutputValue"] for output in _describe_stack(stack).get("Outputs", [])}


def _stack_output(outputs: dict[str, str], stack: str, name: str) -> str:
    if name not in outputs:
        raise CommandError(f"stack {stack} has no output {name}: deploy this version of the stack (`make cdk-deploy`)")
    return outputs[name]


def _find_bucket(endpoint: str | None, prefix: str) -> str:
    if is_local(endpoint):
        from .local.served import find_served_pipeline

        return find_served_pipeline(endpoint or "").bucket
    s3 = _client("s3", endpoint)
    for bucket in s3.list_buckets().get("Buckets", []):
        listed = s3.list_objects_v2(Bucket=bucket["Name"], Prefix=f"{prefix}reports/index.html", MaxKeys=1)
        if listed.get("KeyCount"):
            return bucket["Name"]
    raise CommandError("no bucket holds a coverage dashboard: pass --bucket")


def _check_date(text: str) -> str:
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2026-11-23") from None
    return text


def _count(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more (got {value})")
        return value

    return parse


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535; 0 takes a free one)")
    return value


def _stderr_progress(verb: str) -> Any:
    def progress(message: str) -> None:
        print(f"[{verb}] {message}", file=sys.stderr, flush=True)

    return progress


def _check_port_free(port: int) -> None:
    """Before the server binds (werkzeug would print its own lines and exit): a port taken is one line."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise CommandError(f"port {port} is in use ({exc.strerror}): choose another --port, or omit it for a free one") from None


def cmd_serve(args: argparse.Namespace) -> int:
    """One JSON line on stdout once ready; everything else (the pipeline's logs) to stderr or --log-file."""
    import contextlib
    import time

    from .demo import pipeline_logs
    from .local.emulation import LocalAws

    # A plain flag, polled: the kernel may hand SIGTERM to any of the emulation's threads, which does not wake a
    # main thread blocked on a lock (an untimed Event.wait slept through it), and a handler taking a lock could
    # deadlock the main thread that holds it.
    stopping: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda received, _frame: stopping.append(received))
    with contextlib.ExitStack() as stack:
        try:
            log = stack.enter_context(open(args.log_file, "a", buffering=1)) if args.log_file else sys.stderr
        except OSError as exc:
            raise CommandError(f"cannot write --log-file {args.log_file} ({exc.strerror or exc}): choose a file you can write") from None
        # From here on file descriptor 1 is the log: whatever prints (the pipeline's Lambdas, libraries) goes there,
        # and stdout keeps only the one line written through a saved descriptor.
        sys.stdout.flush()
        ready_line = stack.enter_context(os.fdopen(os.dup(1), "w"))
        os.dup2(log.fileno(), 1)
        stack.enter_context(pipeline_logs(log))
        if args.port:
            _check_port_free(args.port)
        aws = LocalAws(port=args.port, prefix=args.prefix)
        aws.start()
        stack.callback(aws.stop)
        ready_line.write(json.dumps(aws.endpoints.as_dict()) + "\n")
        ready_line.close()
        while not stopping:
            time.sleep(0.2)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo

    terminal = sys.stdout  # the pipeline's Lambdas log to sys.stdout, which the demo sends to a file

    def progress(message: str) -> None:
        print(f"[demo] {message}", file=terminal, flush=True)

    try:
        demo(Path(args.out), invocations=args.invocations, environments=args.environments, progress=progress)
    except TimeoutError as exc:
        # The message names each stuck group, its files and its last combine; the pipeline log has the rest.
        print(f"lambda-coverage demo: failed: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    from .demo import summary_table
    from .invoke import (
        InvokeRequest,
        default_function_name,
        describe,
        invoke,
        parse_env,
        read_events,
    )

    code = Path(args.code).expanduser().resolve()
    request = InvokeRequest(
        handler=args.handler,
        code=code,
        events=read_events(args.events),
        function_name=args.function or default_function_name(code),
        zero_code=not args.decorator,
        environments=args.environments,
        env=parse_env(args.env or []),
        endpoint=args.endpoint,
        out=Path(args.out),
    )
    try:
        result = invoke(request, _stderr_progress("invoke"))
    except TimeoutError as exc:
        print(f"lambda-coverage invoke: failed: {exc}", file=sys.stderr)
        return 1
    for record in result.records:
        print(describe(record, len(result.records)))
    print()
    if not result.summaries:
        print(f"lambda-coverage invoke: no coverage data of {request.function_name} reached the pipeline: "
              f"see the function's logs in {result.logs}", file=sys.stderr)
        return 1
    print(summary_table(result.summaries))
    print()
    print(f"Reports: {result.out / 'combined' / request.function_name}/  Dashboard: {result.out / 'reports' / 'index.html'}")
    return 0


def cmd_load_test(args: argparse.Namespace) -> int:
    from .demo import load_test

    terminal = sys.stdout

    def progress(message: str) -> None:
        print(f"[load-test] {message}", file=terminal, flush=True)

    try:
        report = load_test(args.tier, progress=progress, iterations=args.iterations, workers=args.workers)
    except TimeoutError as exc:
        print(f"lambda-coverage load-test: failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=1))
    if not report["zero_loss"] or report["function_errors"]:
        print("lambda-coverage load-test: LOSS DETECTED — raw files outside a manifest or combined data differing from its raw files", file=sys.stderr)
        return 1
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """What runs locally (serve/demo processes) and, with credentials, what is deployed."""
    import subprocess

    from .credentials import has_credentials

    local = subprocess.run(["pgrep", "-af", "lambda-coverage (serve|demo|invoke|load-test)"], capture_output=True, text=True, check=False).stdout.strip()
    print("local emulation:", "\n  " + local.replace("\n", "\n  ") if local else "not running (start it with `lambda-coverage serve`)")
    if not has_credentials():
        print("AWS: no credentials found; nothing deployed can be checked")
        return 0
    try:
        stack = _describe_stack(args.stack)
    except CommandError as exc:
        print(f"AWS: {exc}")
        return 0
    print(f"AWS: stack {args.stack} {stack['StackStatus']}")
    for output in stack.get("Outputs", []):
        print(f"  {output['OutputKey']}: {output['OutputValue']}")
    return 0


def _combine_target(args: argparse.Namespace) -> tuple[str, str, str]:
    """(combine state machine ARN, bucket, prefix): from the emulation at --endpoint, else from the stack's outputs."""
    from coverage_wrapper.keys import normalize_prefix

    from . import pipeline

    if args.endpoint:
        if is_local(args.endpoint):
            from .local.served import find_served_pipeline

            served = find_served_pipeline(args.endpoint)
            return served.combine_state_machine_arn, served.bucket, served.prefix
        raise CommandError(f"--endpoint {args.endpoint} is not on this machine: omit --endpoint for AWS (the stack's outputs say where)")
    _require_credentials(None)
    outputs = _stack_outputs(args.stack)
    arn = _stack_output(outputs, args.stack, pipeline.COMBINE_STATE_MACHINE_ARN)
    bucket = _stack_output(outputs, args.stack, "CoverageBucketName")
    return arn, bucket, normalize_prefix(outputs.get("CoveragePrefix", "coverage/"))


def cmd_rerun(args: argparse.Namespace) -> int:
    import time
    import uuid

    from coverage_wrapper import keys

    for name in ("function", "version"):
        value = getattr(args, name)
        if value is not None and not keys.is_segment(value):
            raise CommandError(f"--{name} {value!r} must be 1-128 characters of A-Z a-z 0-9 . _ -")
    arn, bucket, prefix = _combine_target(args)
    raw = keys.raw_group_prefix(prefix, args.function, args.date, args.version)
    if not _client("s3", args.endpoint).list_objects_v2(Bucket=bucket, Prefix=raw, MaxKeys=1).get("KeyCount"):
        raise CommandError(f"no raw files under s3://{bucket}/{raw}: nothing to rebuild; check --function, --date"
                           + (" and --version" if args.version else ""))
    request = {"function": args.function, "date": args.date, "mode": "rebuild"}
    if args.version:
        request["version"] = args.version
    sfn = _client("stepfunctions", args.endpoint)
    # A readable, unique name (moto would otherwise name every unnamed execution "None").
    name = f"rerun-{keys.sanitize_segment(args.function, 40)}-{args.date}-{uuid.uuid4().hex[:8]}"
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(request))["executionArn"]
    print(json.dumps({"execution_arn": execution, "input": request}), flush=True)
    if not args.wait:
        return 0
    while (description := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        time.sleep(0.5)
    status = description["status"]
    print(json.dumps({"status": status, "output": description.get("output"), "error": description.get("error"),
                      "cause": description.get("cause")}))
    if status == "SUCCEEDED":
        return 0
    print(f"lambda-coverage rerun: the rebuild ended {status}: {description.get('error') or 'no error name'}: "
          f"{_readable_cause(description.get('cause'))}", file=sys.stderr)
    return 1


def _readable_cause(cause: str | None) -> str:
    """A failed Lambda step's cause is its error document: `errorType: errorMessage`; any other cause as given."""
    try:
        document = json.loads(cause or "")
    except ValueError:
        document = None
    if isinstance(document, dict) and document.get("errorMessage"):
        cause = f"{document.get('errorType', 'Error')}: {document['errorMessage']}"
    return " ".join(str(cause or "no cause given").split())[:2000]


def cmd_reports(args: argparse.Namespace) -> int:
    from coverage_wrapper.keys import normalize_prefix

    from .demo import download_reports, prepare_out

    out = prepare_out(Path(args.out))
    if args.prefix is None and is_local(args.endpoint) and not args.bucket:
        from .local.served import find_served_pipeline

        served = find_served_pipeline(args.endpoint)
        bucket, prefix = served.bucket, served.prefix
    else:
        _require_credentials(args.endpoint)
        prefix = normalize_prefix(args.prefix or "coverage/")
        bucket = args.bucket or _find_bucket(args.endpoint, prefix)
    count = download_reports(_client("s3", args.endpoint), bucket, prefix, out)
    print(f"{count} files from s3://{bucket}/{prefix} → {out}/ (dashboard: {out / 'reports' / 'index.html'})")
    return 0


def cmd_combine(args: argparse.Namespace) -> int:
    from coverage_wrapper.merge import merge_data_files

    out = Path(args.out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file: give a folder for coverage.sqlite and the reports")
    source_root = Path(args.source_root).expanduser().resolve() if args.source_root else None
    if source_root is not None and not source_root.is_dir():
        raise CommandError(f"--source-root {source_root} is not a folder: give the folder the data's paths are relative to")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"cannot create --out {out} ({exc.strerror or exc}): choose a folder you can write") from None
    data_path = out / "coverage.sqlite"
    result = merge_data_files([str(p) for p in args.paths], str(data_path))
    for path, rejection in result.rejected:
        print(f"skipped {path}: {rejection.code}: {rejection.message}", file=sys.stderr)
    if not result.merged:
        print("lambda-coverage combine: no valid coverage data files to combine", file=sys.stderr)
        return 1
    summary: dict[str, Any] = {"files_combined": len(result.merged), "files_skipped": len(result.rejected), "combined": str(data_path)}
    measured = set(result.measurements.executed_lines())
    if source_root is not None:
        summary.update(_local_reports(data_path, source_root, out, measured))
        if measured and summary.get("files_with_source") == 0:
            print(f"lambda-coverage combine: warning: none of the {len(measured)} measured files is under --source-root {source_root}; "
                  "give the folder the data's paths are relative to", file=sys.stderr)
    else:
        print("lambda-coverage combine: warning: no reports without sources; add --source-root DIR (the function's code) "
              "to render JSON, HTML, LCOV and Cobertura", file=sys.stderr)
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
    return {"percent": summary.get("percent"), "covered": summary.get("covered"), "statements": summary.get("statements"),
            "files_with_source": len(measured & set(snapshot.available)), "html": str(out / "html" / "index.html")}


def _diff_versions(versions: list[str], function: str, old: str | None, new: str | None) -> tuple[str, str]:
    """--from/--to as given; a missing one from the function's versions in deployment order (latest two by default)."""
    if old and new:
        return old, new
    if new:
        earlier = versions[: versions.index(new)] if new in versions else []
        if not earlier:
            raise CommandError(f"no code version of {function} is older than {new}; pass --from")
        return earlier[-1], new
    newer = [v for v in versions if v != old]
    if old and newer:
        return old, newer[-1]
    if not old and len(versions) >= 2:
        return versions[-2], versions[-1]
    known = ", ".join(versions) or "none"
    raise CommandError(f"{function} needs two code versions to compare (known: {known}); pass --from and --to")


def cmd_diff(args: argparse.Namespace) -> int:
    """Print the version diff of a function as JSON (what `{p}reports/diff/` holds for the latest two)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from coverage_wrapper.keys import normalize_prefix
    from lambda_coverage.services.reporter.diff import NoVersionData, version_diff
    from lambda_coverage.services.reporter.function_index import known_versions

    prefix = normalize_prefix(args.prefix)
    _require_credentials(args.endpoint)
    try:
        s3 = _client("s3", args.endpoint)
        bucket = args.bucket or _find_bucket(args.endpoint, prefix)
        old, new = _diff_versions(known_versions(s3, bucket, prefix, args.function), args.function, args.from_version, args.to_version)
        diff = version_diff(s3, bucket, prefix, args.function, old, new)
    except (NoVersionData, ValueError) as exc:
        raise CommandError(str(exc)) from None
    except (BotoCoreError, ClientError) as exc:
        raise CommandError(f"cannot read the coverage bucket ({exc}); check --endpoint, --bucket and credentials") from None
    print(json.dumps(diff, indent=1))
    return 0


_MARK_IN_CHILD = """
import json, sys
if sys.version_info[:2] not in ((3, 12), (3, 13)):
    print(json.dumps({"python": "%d.%d" % sys.version_info[:2]}))
    raise SystemExit(0)
from coverage_wrapper.markers import mark_tree
split = lambda text: [p.strip() for p in text.split(",") if p.strip()]
marked, failed = mark_tree(sys.argv[1], split(sys.argv[2]), split(sys.argv[3]))
print(json.dumps({"python": "%d.%d" % sys.version_info[:2], "marked": marked, "failed": failed}))
"""


def cmd_mark(args: argparse.Namespace) -> int:
    """Mark the function's modules ahead of time, with the function's Python, so that cold starts skip marking."""
    import subprocess

    import coverage_wrapper

    code = Path(args.code)
    if not code.is_dir():
        raise CommandError(f"{code}: not a folder; give the folder Lambda runs the function from (its /var/task)")
    python = args.python or sys.executable
    # The layer's own package, whichever Python runs it: marking needs nothing but the standard library.
    layer_dir = str(Path(coverage_wrapper.__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = layer_dir
    try:
        done = subprocess.run(
            [python, "-s", "-c", _MARK_IN_CHILD, str(code.resolve()), args.include, args.exclude],
            env=env, capture_output=True, text=True, check=False,
        )
    except OSError as exc:
        raise CommandError(f"cannot run {python}: {exc.strerror or exc}") from None
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise CommandError(f"{python} could not mark the modules: {(done.stderr.strip().splitlines() or ['no output'])[-1]}") from None
    if "marked" not in result:
        raise CommandError(
            f"{python} is Python {result['python']}; the markers core runs on 3.12 and 3.13: "
            "give --python the interpreter of the function's runtime"
        )
    for path, reason in sorted(result["failed"].items()):
        print(f"not marked: {path}: {reason}", file=sys.stderr)
    if not result["marked"]:
        raise CommandError(f"{code}: no module to mark (no Python file the layer would measure there)")
    print(f"Marked {len(result['marked'])} modules under {code} for Python {result['python']}")
    return 0


def parser() -> argparse.ArgumentParser:
    version = f"lambda-coverage {__version__}"
    root = _Parser(prog="lambda-coverage", description=__doc__)
    root.add_argument("--version", action="version", version=version)
    verbs = root.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help: str, tool_version: bool = True) -> argparse.ArgumentParser:
        command = verbs.add_parser(name, help=help, description=help)
        if tool_version:
            command.add_argument("--version", action="version", version=version)
        return command

    serve = verb("serve", "keep the local AWS emulation up; prints one JSON line on stdout when ready, logs on stderr")
    serve.add_argument("--port", type=_port, default=0, help="loopback port (default: a free one)")
    serve.add_argument("--prefix", default="coverage/", help="key prefix (default coverage/)")
    serve.add_argument("--log-file", help="write the logs to this file instead of stderr")
    serve.set_defaults(run=cmd_serve)

    demo = verb("demo", "run the examples through the whole local pipeline and download the reports")
    demo.add_argument("--out", default=DEFAULT_OUT, help=f"report folder (default ./{DEFAULT_OUT}/)")
    demo.add_argument("--invocations", type=_count(0), default=0, help="total invocations across the examples (default: every event four times per environment)")
    demo.add_argument("--environments", type=_count(1), default=3, help="execution environments per function (default 3)")
    demo.set_defaults(run=cmd_demo)

    invoke = verb("invoke", "run your own function (zero-code by default) on your events through the local pipeline, then download its reports")
    invoke.add_argument("--handler", required=True, help="MODULE.FUNCTION, as the function's Lambda handler setting")
    invoke.add_argument("--code", required=True, help="the folder Lambda would run the function from (its /var/task)")
    invoke.add_argument("--events", required=True, help="JSON lines (one event per line), a JSON array of events or one JSON event; - reads stdin")
    invoke.add_argument("--function", help="function name in the reports (default: the --code folder's name)")
    invoke.add_argument("--decorator", action="store_true", help="the handler uses @coverage_handler: no exec wrapper")
    invoke.add_argument("--environments", type=_count(1), default=1, help="execution environments; event n goes to environment n modulo this (default 1)")
    invoke.add_argument("--env", action="append", metavar="KEY=VALUE", help="an environment variable of the function (repeatable)")
    invoke.add_argument("--endpoint", help="a running `lambda-coverage serve` (default: start an emulation for this command)")
    invoke.add_argument("--out", default=DEFAULT_OUT, help=f"report folder (default ./{DEFAULT_OUT}/)")
    invoke.set_defaults(run=cmd_invoke)

    rerun = verb("rerun", "start a rebuild combine (local with --endpoint, else AWS)", tool_version=False)
    rerun.add_argument("--function", required=True)
    rerun.add_argument("--date", required=True, type=_check_date)
    rerun.add_argument("--version", nargs="?", action=_CodeVersionOrToolVersion, metavar="V",
                       help="code version (default: every version of that day); alone, prints the tool's version")
    rerun.add_argument("--endpoint", help="the local emulation's endpoint (from `serve`); omit for AWS")
    rerun.add_argument("--stack", default=STACK_NAME, help=f"on AWS, the deployed stack whose outputs name the state machine (default {STACK_NAME})")
    rerun.add_argument("--wait", action="store_true", help="wait for the execution and print its status (and its cause when it fails)")
    rerun.set_defaults(run=cmd_rerun)

    reports = verb("reports", "download the reports and dashboard")
    reports.add_argument("--out", required=True)
    reports.add_argument("--endpoint", help="the local emulation's endpoint; omit for AWS")
    reports.add_argument("--bucket", help="coverage bucket (default: the emulation's, or the one holding a dashboard)")
    reports.add_argument("--prefix", help="key prefix (default: the emulation's, or coverage/)")
    reports.set_defaults(run=cmd_reports)

    load = verb("load-test", "many invocations through the local pipeline, then a zero-loss check")
    load.add_argument("--tier", choices=("quick", "standard", "full"), default="standard", help="the seed's tiers: quick 1×2, standard 2×3, full 5×5 (iterations × workers)")
    load.add_argument("--iterations", type=_count(1), help="override the tier's iterations (each event this many times per environment)")
    load.add_argument("--workers", type=_count(1), help="override the tier's execution environments per function")
    load.set_defaults(run=cmd_load_test)

    status = verb("status", "what runs locally and what is deployed")
    status.add_argument("--stack", default=STACK_NAME)
    status.set_defaults(run=cmd_status)

    combine = verb("combine", "combine local raw .coverage files (no AWS)")
    combine.add_argument("paths", nargs="+", type=Path)
    combine.add_argument("--out", required=True, help="folder for coverage.sqlite (and reports with --source-root)")
    combine.add_argument("--source-root", help="render JSON/HTML/LCOV/Cobertura reports from these sources")
    combine.set_defaults(run=cmd_combine)

    diff = verb("diff", "what one code version of a function executes that another does not (JSON)")
    diff.add_argument("--function", required=True)
    diff.add_argument("--from", dest="from_version", help="older code version (default: the one before --to)")
    diff.add_argument("--to", dest="to_version", help="newer code version (default: the latest)")
    diff.add_argument("--endpoint", help="the local emulation's endpoint; omit for AWS")
    diff.add_argument("--bucket", help="coverage bucket (default: the one holding a dashboard)")
    diff.add_argument("--prefix", default="coverage/")
    diff.set_defaults(run=cmd_diff)

    mark = verb("mark", "mark the function's modules for branch coverage at build time, so cold starts skip it (Python 3.12/3.13)")
    mark.add_argument("code", help="the folder Lambda runs the function from (its /var/task), as the build leaves it")
    mark.add_argument("--python", help="the function runtime's interpreter (default: this one)")
    mark.add_argument("--include", default="", help="as COVERAGE_INCLUDE_PATTERNS, when the function sets it")
    mark.add_argument("--exclude", default="", help="as COVERAGE_EXCLUDE_PATTERNS, when the function sets it")
    mark.set_defaults(run=cmd_mark)
    return root


def _one_line(exc: BaseException) -> tuple[str, int]:
    """What the user reads for an error the commands do not turn into a `CommandError` themselves, and the exit status."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}", 2
    try:
        from botocore import exceptions as aws
    except ImportError:
        aws = None
    if aws is not None:
        if isinstance(exc, aws.EndpointConnectionError):
            return f"cannot reach {exc.kwargs.get('endpoint_url')}: is `lambda-coverage serve` running there, or is --endpoint right?", 2
        if isinstance(exc, aws.NoCredentialsError):
            return "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or pass --endpoint for the local emulation", 2
        if isinstance(exc, aws.NoRegionError):
            return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or pass --endpoint for the local emulation", 2
        if isinstance(exc, aws.ClientError):
            error = exc.response.get("Error", {})
            return f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}", 2
        if isinstance(exc, aws.BotoCoreError):
            return f"AWS: {exc}", 2
    return (f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:500]} "
            f"(set {TRACEBACK_VARIABLE}=1 to see where)"), 1


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except CommandError as exc:
        message, status = " ".join(str(exc).split()), 2
    except Exception as exc:
        if os.environ.get(TRACEBACK_VARIABLE):
            raise
        message, status = _one_line(exc)
    print(f"lambda-coverage {args.verb}: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
