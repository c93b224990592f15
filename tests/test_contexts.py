"""COVERAGE_CONTEXTS: which request ran each line, recorded as coverage.py dynamic contexts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coverage_wrapper.contexts import event_source, label, route
from exactness.harness import venv_python
from layer_harness import FIXTURES, layer_env

REST_GET = {"httpMethod": "GET", "resource": "/tasks/{id}", "path": "/tasks/7", "pathParameters": {"id": "7"},
            "requestContext": {"apiId": "a1", "httpMethod": "GET"}}
REST_POST = {"httpMethod": "POST", "resource": "/tasks", "path": "/tasks", "body": "{}", "requestContext": {"apiId": "a1"}}
HTTP_V2 = {"version": "2.0", "routeKey": "DELETE /tasks/{id}", "rawPath": "/tasks/9", "pathParameters": {"id": "9"},
           "requestContext": {"apiId": "h1", "http": {"method": "DELETE", "path": "/tasks/9"}}}
HTTP_DEFAULT = {"version": "2.0", "routeKey": "$default", "rawPath": "/ping",
                "requestContext": {"http": {"method": "GET", "path": "/ping"}}}
ALB = {"httpMethod": "GET", "path": "/health", "requestContext": {"elb": {"targetGroupArn": "arn:tg"}}}
SQS = {"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}
SNS = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "m"}}]}
S3 = {"Records": [{"eventSource": "aws:s3", "s3": {}}]}
EVENTBRIDGE = {"source": "my.app", "detail-type": "Task Done", "detail": {}}


@pytest.mark.parametrize("event, expected_route, expected_source", [
    (REST_GET, "GET /tasks/{id}", "aws:apigateway"),
    (REST_POST, "POST /tasks", "aws:apigateway"),
    (HTTP_V2, "DELETE /tasks/{id}", "aws:apigateway"),
    (HTTP_DEFAULT, "GET /ping", "aws:apigateway"),
    (ALB, "GET /health", "aws:elasticloadbalancing"),
    (SQS, "aws:sqs", "aws:sqs"),
    (SNS, "aws:sns", "aws:sns"),
    (S3, "aws:s3", "aws:s3"),
    (EVENTBRIDGE, "aws:events", "aws:events"),
    ({"anything": 1}, "other", "other"),
    ("not a dict", "other", "other"),
    (None, "other", "other"),
    ({"Records": "junk", "requestContext": 5, "routeKey": 3}, "other", "other"),
])
def test_each_event_shape_gets_its_route_and_source(event, expected_route, expected_source):
    assert route(event) == expected_route
    assert event_source(event) == expected_source
    assert label("route", event) == expected_route and label("event-source", event) == expected_source


def test_labels_are_bounded_and_carry_no_markup():
    assert label("route", {"httpMethod": "GET", "resource": "/x\n" + "y" * 500}) == ("GET /x?" + "y" * 500)[:200]
    hostile = {"httpMethod": "GET", "path": "/<script>alert('x')</script>\"&", "requestContext": {"elb": {}}}
    assert label("route", hostile) == "GET /?script?alert??x???/script???"


APP = '''\
from coverage_wrapper import coverage_handler


def get_task(event):
    task_id = event["pathParameters"]["id"]
    return {"id": task_id}


def create_task(event):
    return {"created": True}


def drain(records):
    done = 0
    for record in records:
        done += 1
    return done


@coverage_handler
def lambda_handler(event, context):
    if "Records" in event:
        return drain(event["Records"])
    if event.get("httpMethod") == "GET":
        return get_task(event)
    return create_task(event)
'''
# The handler has run all its lines by the SQS event; the last event, a route not seen before, must
# still be recorded under its own label.
EVENTS = [REST_GET, REST_POST, REST_GET, SQS, REST_GET, HTTP_V2]

ORACLE = '''
import json, sys
import coverage
sys.path.insert(0, sys.argv[1])
import tasks
handler = tasks.lambda_handler.__wrapped__
per_event = []
for event in json.loads(sys.argv[2]):
    cov = coverage.Coverage(data_file=None, include=[sys.argv[1] + "/*"], config_file=False)
    cov.start()
    handler(event, None)
    cov.stop()
    per_event.append(sorted(cov.get_data().lines(sys.argv[1] + "/tasks.py")))
print(json.dumps(per_event))
'''

READ = '''
import json, sys
from coverage.sqldata import CoverageData
data = CoverageData(basename=sys.argv[1]); data.read()
(path,) = [p for p in data.measured_files() if p.endswith("tasks.py")]
print(json.dumps({"contexts": sorted(data.measured_contexts()),
                  "by_line": {str(k): sorted(v) for k, v in data.contexts_by_lineno(path).items()}}))
'''


def _run(python: str, app: Path, tmp_path: Path, **env_overrides: str) -> dict:
    env = layer_env(app, tmp_path, COVERAGE_CONTEXTS="route", **env_overrides)
    done = subprocess.run([python, str(FIXTURES / "run_function.py"), "tasks.lambda_handler", json.dumps(EVENTS)],
                          env=env, cwd=app, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len([line for line in done.stdout.splitlines() if line.startswith('{"result"')]) == len(EVENTS)
    data_file = sorted((tmp_path / "outbox" / "pending").glob("*.coverage"))[-1]
    read = subprocess.run([python, "-c", READ, str(data_file)], capture_output=True, text=True, check=True)
    return json.loads(read.stdout)


@pytest.mark.parametrize("python, core", [("venv", "ctrace"), ("3.12", "markers"), ("3.13", "markers")])
def test_the_routes_recorded_for_a_line_are_the_requests_that_ran_it(python, core, tmp_path):
    interpreter = sys.executable if python == "venv" else str(venv_python(python))
    app = tmp_path / "app"
    app.mkdir()
    (app / "tasks.py").write_text(APP)
    recorded = _run(interpreter, app, tmp_path, COVERAGE_CORE=core)
    oracle = subprocess.run([interpreter, "-c", ORACLE, str(app), json.dumps(EVENTS)],
                            env=layer_env(app, tmp_path), capture_output=True, text=True, check=True)
    expected: dict[str, set[str]] = {}
    for event, lines in zip(EVENTS, json.loads(oracle.stdout)):
        for line in lines:
            expected.setdefault(str(line), set()).add(route(event))
    assert recorded["contexts"] == ["", "DELETE /tasks/{id}", "GET /tasks/{id}", "POST /tasks", "aws:sqs"]
    for line, routes in expected.items():
        assert set(recorded["by_line"][line]) - {""} == routes, f"line {line}: {APP.splitlines()[int(line) - 1]!r}"


def test_a_contexts_sample_rate_of_zero_records_no_request(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "tasks.py").write_text(APP)
    recorded = _run(sys.executable, app, tmp_path, COVERAGE_CONTEXTS_SAMPLE_RATE="0")
    assert recorded["contexts"] == [""]
    assert "5" in recorded["by_line"] and "10" in recorded["by_line"] and "15" in recorded["by_line"]


def test_contexts_settings_are_parsed_and_bad_values_fall_back_to_off():
    from coverage_wrapper.config import parse_config

    config = parse_config({"COVERAGE_CONTEXTS": " Event-Source ", "COVERAGE_CONTEXTS_SAMPLE_RATE": "0.05"})
    assert (config.contexts, config.contexts_sample_rate, config.problems) == ("event-source", 0.05, ())
    bad = parse_config({"COVERAGE_CONTEXTS": "per-user", "COVERAGE_CONTEXTS_SAMPLE_RATE": "2"})
    assert (bad.contexts, bad.contexts_sample_rate) == ("off", 1.0) and len(bad.problems) == 2


def test_an_environment_records_at_most_max_labels_the_rest_as_other(tmp_path):
    """ALB paths carry ids: a long-lived environment must never reach the pipeline's bound on labels."""
    from coverage_wrapper.contexts import MAX_LABELS

    app = tmp_path / "app"
    app.mkdir()
    (app / "tasks.py").write_text(APP)
    events = [{"httpMethod": "GET", "path": f"/tasks/{n}", "requestContext": {"elb": {}}} for n in range(MAX_LABELS + 50)]
    env = layer_env(app, tmp_path, COVERAGE_CONTEXTS="route")
    done = subprocess.run([sys.executable, str(FIXTURES / "run_function.py"), "tasks.lambda_handler", json.dumps(events)],
                          env=env, cwd=app, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    data_file = sorted((tmp_path / "outbox" / "pending").glob("*.coverage"))[-1]
    read = subprocess.run([sys.executable, "-c", READ, str(data_file)], capture_output=True, text=True, check=True)
    contexts = json.loads(read.stdout)["contexts"]
    assert len(contexts) == MAX_LABELS + 1 and "other" in contexts, "the empty context, 499 routes, then other"
    assert "GET /tasks/0" in contexts and f"GET /tasks/{MAX_LABELS + 10}" not in contexts
