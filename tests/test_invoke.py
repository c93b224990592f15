"""`lambda-coverage invoke`: a user's own function (its own top-level `services` package, module-level code, DynamoDB
and EventBridge calls) through the simulated execution environments and the local pipeline; its combined report
equals what coverage.py measures running the same events directly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import coverage
import pytest

REPO = Path(__file__).resolve().parent.parent
MEASURE_DIRECTLY = Path(__file__).resolve().parent / "fixtures" / "measure_directly.py"

HANDLER = '''"""Task service entry point."""
import os

from services import tasks

STAGE = os.environ.get("STAGE", "dev")
if STAGE == "prod":
    BANNER = "tasks"
else:
    BANNER = f"tasks ({STAGE})"


def handler(event, context):
    action = event.get("action")
    if action == "create":
        return tasks.create_task(event["id"], event["title"])
    if action == "get":
        return tasks.get_task(event["id"])
    raise ValueError(f"unknown action {action!r}")
'''

TASKS = '''"""Tasks in DynamoDB, announced on EventBridge."""
import json
import os

import boto3

TABLE = os.environ["TASKS_TABLE"]
dynamodb = boto3.client("dynamodb")
events = boto3.client("events")
try:
    dynamodb.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    CREATED_HERE = True
except dynamodb.exceptions.ResourceInUseException:
    CREATED_HERE = False


def create_task(task_id, title):
    if not title.strip():
        return {"id": task_id, "error": "empty title"}
    dynamodb.put_item(TableName=TABLE, Item={"id": {"S": task_id}, "title": {"S": title}})
    events.put_events(Entries=[{"Source": "tasks", "DetailType": "TaskCreated", "Detail": json.dumps({"id": task_id})}])
    return {"id": task_id, "created": True}


def get_task(task_id):
    item = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": task_id}}).get("Item")
    if item is None:
        return {"id": task_id, "found": False}
    return {"id": task_id, "found": True, "title": item["title"]["S"]}
'''

# Event n runs in environment n modulo 2 when there are two: each environment's outcomes do not depend on the other's.
EVENTS = [
    {"action": "create", "id": "t1", "title": "Write docs"},
    {"action": "get", "id": "nope"},
    {"action": "get", "id": "t1"},
    {"action": "create", "id": "t2", "title": "  "},
    {"action": "archive"},
]
EXPECTED = [
    '→ {"id": "t1", "created": true}',
    '→ {"id": "nope", "found": false}',
    '→ {"id": "t1", "found": true, "title": "Write docs"}',
    '→ {"id": "t2", "error": "empty title"}',
    "→ error ValueError: unknown action 'archive'",
]


def _clean_env() -> dict[str, str]:
    """A new user's shell: no AWS credentials, region or endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "COVERAGE_", "PYTEST_"))}
    env.update(AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_EC2_METADATA_DISABLED="true")
    return env


def _cli(*args: str, cwd: Path, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lambda_coverage.cli", *args], cwd=cwd, env=_clean_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def task_service(tmp_path) -> Path:
    code = tmp_path / "task-service"
    (code / "services").mkdir(parents=True)
    (code / "handler.py").write_text(HANDLER)
    (code / "services" / "__init__.py").write_text('"""The task service\'s own package."""\n')
    (code / "services" / "tasks.py").write_text(TASKS)
    return code


@pytest.fixture(scope="module")
def served():
    """`lambda-coverage serve` in its own process; the endpoint it prints."""
    server = subprocess.Popen([sys.executable, "-m", "lambda_coverage.cli", "serve"], cwd=REPO, env=_clean_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield json.loads(server.stdout.readline())["endpoint"]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise


def _dynamodb(endpoint: str):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


def _create_table(endpoint: str, name: str) -> None:
    _dynamodb(endpoint).create_table(TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")


def _measured_directly(code: Path, spec: str, events: list, endpoint: str, env: dict[str, str], scratch: Path, monkeypatch) -> dict:
    """coverage.py on its own, started before the handler's import, over the same events: executed lines and branches per file."""
    data_file = scratch / "direct.coverage"
    run_env = {**_clean_env(), **env, "PYTHONPATH": str(code), "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    subprocess.run([sys.executable, str(MEASURE_DIRECTLY), str(code), spec, json.dumps(events), str(data_file)],
                   cwd=code, env=run_env, check=True, capture_output=True, timeout=120)
    monkeypatch.chdir(code)  # file names relative to the code folder, as the layer stores them
    measurement = coverage.Coverage(data_file=str(data_file), branch=True, config_file=False)
    measurement.load()
    report = scratch / "direct.json"
    measurement.json_report(outfile=str(report))
    return _executed(json.loads(report.read_text()))


def _executed(report: dict) -> dict:
    return {path: (data["executed_lines"], data["executed_branches"]) for path, data in report["files"].items()}


def _combined_report(out: Path, function: str) -> tuple[dict, dict]:
    [summary] = [json.loads(p.read_text()) for p in (out / "combined" / function).glob("*/*/summary.json")]
    report = json.loads(next((out / "combined" / function).glob("*/*/coverage.json")).read_text())
    return summary, report


def _assert_results_printed(stdout: str, environments: int) -> None:
    lines = [line for line in stdout.splitlines() if line.startswith("#")]
    assert len(lines) == len(EVENTS), stdout
    for n, (line, expected) in enumerate(zip(lines, EXPECTED)):
        assert line.startswith(f"#{n + 1} of {len(EVENTS)} (environment {n % environments + 1}, "), line
        assert line.endswith(expected), (line, expected)


def test_invoke_runs_the_users_function_and_its_report_equals_coverage_py_run_directly(task_service, tmp_path, moto_endpoint, monkeypatch):
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    table = f"tasks-{os.urandom(4).hex()}"

    done = _cli("invoke", "--handler", "handler.handler", "--code", "task-service", "--events", "events.jsonl",
                "--env", f"TASKS_TABLE={table}", "--env", "STAGE=test", cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    _assert_results_printed(done.stdout, environments=1)
    out = tmp_path / "coverage-reports"
    summary, report = _combined_report(out, "task-service")
    assert summary["raw_files"] >= 1 and f"task-service  {summary['version']}" in done.stdout, "the demo's table"
    assert (out / "reports" / "index.html").is_file() and "task-service" in (out / "reports" / "index.html").read_text()
    assert not (task_service / "__pycache__").exists(), "the function ran from a copy, as from a deployment package"

    # The oracle's own DynamoDB (a fresh table in another moto server): its module-level create_table succeeds too.
    direct = _measured_directly(task_service, "handler.handler", EVENTS, moto_endpoint, {"TASKS_TABLE": table, "STAGE": "test"}, tmp_path, monkeypatch)
    assert set(direct) == {"handler.py", "services/__init__.py", "services/tasks.py"}
    assert {path: value for path, value in _executed(report).items() if path in direct} == direct
    handler_lines = direct["handler.py"][0]
    assert {7, 10} <= set(handler_lines) and 8 not in handler_lines, "module-level code measured: the STAGE branch taken"


def test_invoke_against_serve_with_two_environments(task_service, tmp_path, served, monkeypatch):
    (tmp_path / "events.json").write_text(json.dumps(EVENTS, indent=2))
    table = f"tasks-{os.urandom(4).hex()}"
    _create_table(served, table)  # the function's module-level create_table finds it in every process

    done = _cli("invoke", "--handler", "handler.handler", "--code", str(task_service), "--events", "events.json", "--function", "tasks-api",
                "--environments", "2", "--env", f"TASKS_TABLE={table}", "--endpoint", served, "--out", "reports", cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    _assert_results_printed(done.stdout, environments=2)
    assert f"using the pipeline at {served}" in done.stderr
    summary, report = _combined_report(tmp_path / "reports", "tasks-api")
    assert summary["raw_files"] >= 2, "each environment flushed at least at shutdown"
    item = _dynamodb(served).get_item(TableName=table, Key={"id": {"S": "t1"}})["Item"]
    assert item["title"]["S"] == "Write docs", "the function's own AWS calls went to the emulation"

    direct = _measured_directly(task_service, "handler.handler", EVENTS, served, {"TASKS_TABLE": table}, tmp_path, monkeypatch)
    assert {path: value for path, value in _executed(report).items() if path in direct} == direct
    assert 13 not in direct["services/tasks.py"][0] and 15 in direct["services/tasks.py"][0], "the table existed: the except branch"


def test_invoke_with_the_decorator(tmp_path, served):
    code = tmp_path / "decorated"
    code.mkdir()
    (code / "app.py").write_text(
        "from coverage_wrapper import coverage_handler\n"
        "\n"
        "\n"
        "@coverage_handler\n"
        "def handler(event, context):\n"
        "    if event.get('n', 0) > 1:\n"
        "        return {'big': True}\n"
        "    return {'big': False}\n"
    )
    (tmp_path / "events.jsonl").write_text('{"n": 5}\n{"n": 0}\n')

    done = _cli("invoke", "--handler", "app.handler", "--code", "decorated", "--events", "events.jsonl", "--decorator",
                "--endpoint", served, "--out", "reports", cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert '#1 of 2 (environment 1, ' in done.stdout and done.stdout.count("→ {\"big\": ") == 2
    _summary, report = _combined_report(tmp_path / "reports", "decorated")
    assert {6, 7, 8} <= set(report["files"]["app.py"]["executed_lines"])


def test_a_function_that_fails_to_initialize_is_one_line(tmp_path, served):
    code = tmp_path / "broken"
    code.mkdir()
    (code / "app.py").write_text("import os\n\nSETTING = os.environ['MISSING_SETTING']\n\n\ndef handler(event, context):\n    return event\n")
    (tmp_path / "events.jsonl").write_text("{}\n")

    done = _cli("invoke", "--handler", "app.handler", "--code", "broken", "--events", "events.jsonl", "--endpoint", served, cwd=tmp_path)

    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    error = done.stderr.splitlines()[-1]
    assert error.startswith("lambda-coverage invoke: the function failed to initialize: "), done.stderr
    assert "MISSING_SETTING" in error and "its log: " in error and "Traceback" not in done.stderr
    log = Path(error.rsplit("its log: ", 1)[1].rstrip(")"))
    assert "MISSING_SETTING" in log.read_text()


def test_files_an_environment_could_not_upload_before_its_shutdown_budget_ended_are_shipped_after_it(tmp_path, served):
    """The simulated /tmp outlives its environment: what its extension left in the outbox (a loaded machine can
    eat Lambda's 2 s SHUTDOWN budget) is shipped with the layer's own drain, counted, and lands in the bucket."""
    from layer_harness import EVENTS, copy_app, layer_env, outbox_files, run_function

    from lambda_coverage.demo import FleetResult
    from lambda_coverage.invoke import ship_leftovers
    from lambda_coverage.local.served import find_served_pipeline

    pipeline = find_served_pipeline(served)
    app = copy_app(tmp_path)
    with socket.socket() as probe:  # an endpoint nobody answers: the in-process upload fails, the entry stays
        probe.bind(("127.0.0.1", 0))
        unreachable = f"http://127.0.0.1:{probe.getsockname()[1]}"
    env = layer_env(app, tmp_path, COVERAGE_S3_BUCKET=pipeline.bucket, AWS_ENDPOINT_URL=unreachable, AWS_LAMBDA_FUNCTION_NAME="left-fn")
    run_function("handler.lambda_handler", EVENTS[:2], env)
    assert len(outbox_files(tmp_path)) == 1

    fleet = FleetResult(environments=1, settings=[("left-fn", 0, {k: v for k, v in env.items() if k.startswith("COVERAGE_")})])
    assert ship_leftovers(pipeline, fleet, tmp_path / "logs") == [(0, 1)]

    assert outbox_files(tmp_path) == []
    listed = pipeline.client("s3").list_objects_v2(Bucket=pipeline.bucket, Prefix="coverage/raw/left-fn/")
    assert listed["KeyCount"] == 1 and listed["Contents"][0]["Key"].endswith("-000001.coverage")
    assert "Coverage file uploaded successfully" in (tmp_path / "logs" / "left-fn-0" / "shipped-after-shutdown.log").read_text()
