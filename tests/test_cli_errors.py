"""Every `lambda-coverage` error is one line on stderr saying what to do (exit status 2), never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from coverage_wrapper import keys
from pipeline_corpus import DATE, TREES, measured_run

from lambda_coverage import cli
from lambda_coverage.local.emulation import LocalAws
from lambda_coverage.local.faults import FaultPolicy, LambdaFault

REPO = Path(__file__).resolve().parent.parent
VERBS = ("serve", "demo", "invoke", "rerun", "reports", "load-test", "status", "combine", "diff")


def _clean_env(**extra: str) -> dict[str, str]:
    """No AWS credentials, region or endpoint: what a new user's shell has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "COVERAGE_", "PYTEST_"))}
    env.update(AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_EC2_METADATA_DISABLED="true")
    env.update(extra)
    return env


def _cli(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lambda_coverage.cli", *args], cwd=cwd, env=env or _clean_env(),
                          capture_output=True, text=True, timeout=timeout)


def _assert_one_line(done: subprocess.CompletedProcess, verb: str, *fragments: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"lambda-coverage {verb}: "), done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, (fragment, done.stderr)


# -- usage errors, checked before anything starts ---------------------------------------------------


def test_the_root_and_every_verb_print_the_version():
    expected = f"lambda-coverage {cli.__version__}\n"
    assert _cli("--version").stdout == expected
    for verb in VERBS:
        done = _cli(verb, "--version")
        assert (done.returncode, done.stdout) == (0, expected), verb


def test_rerun_version_with_a_value_is_the_code_version_and_alone_the_tool_version():
    assert cli.parser().parse_args(["rerun", "--function", "f", "--date", "2026-11-23", "--version", "abc123"]).version == "abc123"
    alone = _cli("rerun", "--function", "f", "--date", "2026-11-23", "--version")
    assert (alone.returncode, alone.stdout) == (0, f"lambda-coverage {cli.__version__}\n")


def test_usage_errors_are_one_line():
    _assert_one_line(_cli("demo", "--environments", "0"), "demo", "--environments: must be 1 or more (got 0)", "--help")
    _assert_one_line(_cli("serve", "--port", "99999"), "serve", "99999 is not a port")
    _assert_one_line(_cli("rerun", "--function", "f", "--date", "23/11/2026"), "rerun", "is not a date like 2026-11-23")
    _assert_one_line(_cli("invoke", "--handler", "app.handler", "--code", ".", "--events", "e", "--environments", "0"), "invoke",
                     "must be 1 or more")
    done = _cli()
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "required: VERB" in done.stderr


def test_demo_with_an_out_folder_it_cannot_write_fails_before_starting(tmp_path):
    _assert_one_line(_cli("demo", "--out", "/proc/x"), "demo", "cannot write reports to --out /proc/x")
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    _assert_one_line(_cli("demo", "--out", str(a_file)), "demo", f"--out {a_file} is a file")
    assert a_file.read_text() == "mine"


def test_serve_on_a_port_in_use_says_so_and_takes_no_other():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _cli("serve", "--port", str(port))
    _assert_one_line(done, "serve", f"port {port} is in use")
    assert done.stdout == "", "no endpoint line for a server that never started"


def test_serve_with_a_log_file_it_cannot_write():
    _assert_one_line(_cli("serve", "--log-file", "/proc/x/serve.log"), "serve", "cannot write --log-file /proc/x/serve.log")


def test_invoke_input_errors_are_one_line_before_anything_starts(tmp_path):
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text("def handler(event, context):\n    return event\n")
    events = tmp_path / "events.jsonl"
    events.write_text('{"ok": 1}\n{not json}\n')
    empty = tmp_path / "empty.json"
    empty.write_text("\n")
    pretty = tmp_path / "event.json"
    pretty.write_text('{\n  "a": 1,\n  "b": \n}\n')
    good = tmp_path / "good.jsonl"
    good.write_text('{"ok": 1}\n')

    def invoke(*args: str) -> subprocess.CompletedProcess:
        return _cli("invoke", *args, cwd=tmp_path)

    _assert_one_line(invoke("--handler", "handler", "--code", "fn", "--events", "good.jsonl"), "invoke", "is not MODULE.FUNCTION")
    _assert_one_line(invoke("--handler", "missing.handler", "--code", "fn", "--events", "good.jsonl"), "invoke",
                     "no module missing under --code", "check --handler and --code")
    _assert_one_line(invoke("--handler", "app.handler", "--code", "nowhere", "--events", "good.jsonl"), "invoke", "is not a folder")
    _assert_one_line(invoke("--handler", "app.handler", "--code", "fn", "--events", "events.jsonl"), "invoke",
                     "--events events.jsonl line 2 is not JSON")
    _assert_one_line(invoke("--handler", "app.handler", "--code", "fn", "--events", "event.json"), "invoke",
                     "--events event.json line 4 is not JSON")
    _assert_one_line(invoke("--handler", "app.handler", "--code", "fn", "--events", "empty.json"), "invoke", "is empty")
    _assert_one_line(invoke("--handler", "app.handler", "--code", "fn", "--events", "absent.json"), "invoke", "cannot read --events absent.json")
    _assert_one_line(invoke("--handler", "app.handler", "--code", "fn", "--events", "good.jsonl", "--env", "NOEQUALS"), "invoke",
                     "--env 'NOEQUALS' is not KEY=VALUE")
    _assert_one_line(invoke("--handler", "app.handler", "--code", "fn", "--events", "good.jsonl", "--function", "bad name"), "invoke",
                     "--function 'bad name' must be")
    assert not (tmp_path / "coverage-reports").exists(), "nothing was started or written"


# -- combine (local files, no AWS) ---------------------------------------------------------------------


@pytest.fixture
def raw_file(tmp_path) -> Path:
    """A real raw file, paths relative to its sources (as uploaded), and a copy of those sources at ./src."""
    shutil.copytree(TREES["v1"], tmp_path / "src")
    return measured_run(tmp_path / "raw.coverage", "v1", seed=3)


def test_combine_takes_a_relative_source_root(tmp_path, raw_file):
    relative = _cli("combine", "raw.coverage", "--out", "rel", "--source-root", "src", cwd=tmp_path)
    absolute = _cli("combine", str(raw_file), "--out", str(tmp_path / "abs"), "--source-root", str(tmp_path / "src"), cwd=REPO)
    assert relative.returncode == 0 and absolute.returncode == 0, relative.stderr + absolute.stderr
    assert relative.stderr == ""
    summary = json.loads(relative.stdout)
    assert summary["covered"] > 0 and summary["files_with_source"] > 0
    assert {k: v for k, v in summary.items() if k not in ("combined", "html")} == \
        {k: v for k, v in json.loads(absolute.stdout).items() if k not in ("combined", "html")}
    rel_files = json.loads((tmp_path / "rel" / "coverage.json").read_text())["files"]
    abs_files = json.loads((tmp_path / "abs" / "coverage.json").read_text())["files"]
    assert {f: d["executed_lines"] for f, d in rel_files.items()} == {f: d["executed_lines"] for f, d in abs_files.items()}
    assert any(d["executed_lines"] for d in rel_files.values())


def test_combine_without_sources_warns_that_reports_need_them(tmp_path, raw_file):
    done = _cli("combine", "raw.coverage", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stderr.count("\n") == 1 and "warning: no reports without sources; add --source-root DIR" in done.stderr
    assert (tmp_path / "out" / "coverage.sqlite").is_file() and not (tmp_path / "out" / "coverage.json").exists()


def test_combine_with_sources_that_hold_none_of_the_files_warns(tmp_path, raw_file):
    (tmp_path / "elsewhere").mkdir()
    done = _cli("combine", "raw.coverage", "--out", "out", "--source-root", "elsewhere", cwd=tmp_path)
    assert done.returncode == 0
    assert "warning: none of the" in done.stderr and "is under --source-root" in done.stderr


def test_combine_errors_are_one_line(tmp_path, raw_file):
    (tmp_path / "report.txt").write_text("mine")
    _assert_one_line(_cli("combine", "raw.coverage", "--out", "report.txt", cwd=tmp_path), "combine",
                     f"--out {tmp_path / 'report.txt'} is a file")
    assert (tmp_path / "report.txt").read_text() == "mine"
    _assert_one_line(_cli("combine", "raw.coverage", "--out", "out", "--source-root", "nowhere", cwd=tmp_path), "combine",
                     "--source-root", "is not a folder")
    (tmp_path / "blocked" / "coverage.sqlite").mkdir(parents=True)
    _assert_one_line(_cli("combine", "raw.coverage", "--out", "blocked", cwd=tmp_path), "combine", "Is a directory")


# -- against the local emulation, from a shell without AWS credentials ---------------------------------


@pytest.fixture(scope="module")
def failing_pipeline(tmp_path_factory):
    """The emulation with its Plan step failing every time, and one valid raw file of `shop-fn` on DATE."""
    faults = FaultPolicy(lambdas={"plan": LambdaFault(times=10_000)})
    raw = measured_run(tmp_path_factory.mktemp("raw") / "raw.coverage", "v1", seed=5)
    with LocalAws(faults=faults) as aws:
        key = keys.raw_key(aws.prefix, "shop-fn", _on_date(DATE), "v1", "0000beef", 1)
        aws.client("s3").upload_file(str(raw), aws.bucket, key)
        yield aws


def _on_date(date: str):
    from datetime import datetime, timezone

    return datetime.strptime(date, "%Y-%m-%d").replace(hour=10, tzinfo=timezone.utc)


def test_rerun_wait_that_fails_prints_the_cause(failing_pipeline):
    done = _cli("rerun", "--function", "shop-fn", "--date", DATE, "--endpoint", failing_pipeline.endpoint, "--wait")
    assert done.returncode == 1, done.stderr
    status = json.loads(done.stdout.splitlines()[-1])
    assert status["status"] == "FAILED" and status["cause"]
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("lambda-coverage rerun: the rebuild ended FAILED: ")
    assert done.stderr.endswith(": CombineFailed: InjectedFault: injected: lambda-coverage-plan failed before running\n"), done.stderr


def test_rerun_of_a_function_or_date_without_raw_files_says_so(failing_pipeline):
    endpoint, bucket = failing_pipeline.endpoint, failing_pipeline.bucket
    _assert_one_line(_cli("rerun", "--function", "nobody", "--date", DATE, "--endpoint", endpoint), "rerun",
                     f"no raw files under s3://{bucket}/coverage/raw/nobody/{DATE}/", "check --function, --date")
    _assert_one_line(_cli("rerun", "--function", "shop-fn", "--date", "2020-01-01", "--endpoint", endpoint), "rerun",
                     f"no raw files under s3://{bucket}/coverage/raw/shop-fn/2020-01-01/")
    _assert_one_line(_cli("rerun", "--function", "../etc", "--date", DATE, "--endpoint", endpoint), "rerun",
                     "--function '../etc' must be 1-128 characters")
    started = [e for e in failing_pipeline.executions(failing_pipeline.combine_state_machine_arn) if e["name"].startswith("rerun-nobody")]
    assert started == [], "nothing was started"


def test_local_endpoints_need_no_credentials(failing_pipeline, tmp_path):
    done = _cli("reports", "--out", str(tmp_path / "reports"), "--endpoint", failing_pipeline.endpoint)
    assert done.returncode == 0, done.stderr
    assert f"s3://{failing_pipeline.bucket}/coverage/" in done.stdout


def test_an_endpoint_nobody_serves_is_one_line():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{closed}"
    _assert_one_line(_cli("rerun", "--function", "f", "--date", DATE, "--endpoint", endpoint), "rerun",
                     f"cannot reach {endpoint}", "lambda-coverage serve")


# -- rerun on AWS: the combine state machine from the stack's outputs ---------------------------------


@pytest.fixture
def deployed(moto_endpoint, request):
    """What `cdk deploy` leaves: a bucket with a raw file, a combine state machine with a generated name, and a
    stack whose outputs name them (moto's CloudFormation, reached as AWS through AWS_ENDPOINT_URL)."""
    clients = {s: boto3.client(s, endpoint_url=moto_endpoint, region_name="us-east-1") for s in ("s3", "stepfunctions", "cloudformation")}
    suffix = os.urandom(4).hex()
    bucket = f"coverage-{suffix}"
    clients["s3"].create_bucket(Bucket=bucket)
    clients["s3"].put_object(Bucket=bucket, Key=keys.raw_key("coverage/", "orders", _on_date(DATE), "v1", "0000cafe", 1), Body=b"x")
    machine = clients["stepfunctions"].create_state_machine(
        name=f"CombineStateMachine{suffix.upper()}", roleArn="arn:aws:iam::123456789012:role/combine",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]

    def stack(name: str, outputs: dict[str, str]) -> str:
        template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                    "Outputs": {key: {"Value": value} for key, value in outputs.items()}}
        clients["cloudformation"].create_stack(StackName=name, TemplateBody=json.dumps(template))
        return name

    full = stack(f"Coverage{suffix}", {"CombineStateMachineArn": machine, "CoverageBucketName": bucket, "CoveragePrefix": "coverage/"})
    partial = stack(f"Old{suffix}", {"CoverageBucketName": bucket})
    env = _clean_env(AWS_ENDPOINT_URL=moto_endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    return {"env": env, "machine": machine, "bucket": bucket, "stack": full, "old_stack": partial, "sfn": clients["stepfunctions"]}


def test_rerun_on_aws_finds_the_state_machine_in_the_stack_outputs(deployed):
    done = _cli("rerun", "--function", "orders", "--date", DATE, "--stack", deployed["stack"], env=deployed["env"])
    assert done.returncode == 0, done.stderr
    started = json.loads(done.stdout)
    assert started["input"] == {"function": "orders", "date": DATE, "mode": "rebuild"}
    executions = deployed["sfn"].list_executions(stateMachineArn=deployed["machine"])["executions"]
    assert [e["executionArn"] for e in executions] == [started["execution_arn"]]


def test_rerun_on_aws_errors_are_one_line(deployed):
    env = deployed["env"]
    _assert_one_line(_cli("rerun", "--function", "orders", "--date", DATE, "--stack", "NoSuchStack", env=env), "rerun",
                     "no stack NoSuchStack", "--stack")
    _assert_one_line(_cli("rerun", "--function", "orders", "--date", DATE, "--stack", deployed["old_stack"], env=env), "rerun",
                     f"stack {deployed['old_stack']} has no output CombineStateMachineArn")
    _assert_one_line(_cli("rerun", "--function", "other", "--date", DATE, "--stack", deployed["stack"], env=env), "rerun",
                     f"no raw files under s3://{deployed['bucket']}/coverage/raw/other/{DATE}/")
    _assert_one_line(_cli("rerun", "--function", "orders", "--date", DATE), "rerun", "no AWS credentials found", "--endpoint")
    assert deployed["sfn"].list_executions(stateMachineArn=deployed["machine"])["executions"] == []


def test_the_default_stack_name_is_the_cdk_apps():
    from lambda_coverage.cdk.stack import STACK_NAME

    assert cli.STACK_NAME == STACK_NAME
    assert cli.parser().parse_args(["rerun", "--function", "f", "--date", DATE]).stack == STACK_NAME
