"""Under the Lambda runtime (`awslambdaric`), the runtime calls the user's handler itself and its loop counts invocations."""

from __future__ import annotations

import json

import pytest

from lambda_coverage.execution_environment import ExecutionEnvironment, stage_layer
from layer_harness import copy_app, outbox_files, recorded

# The handler reports who called it: the runtime's `handle_event_request`, or a wrapper of the layer's.
PROBE = (
    "import sys\n"
    "{decorate_import}\n"
    "from shop.orders import price\n"
    "{decorator}\n"
    "def lambda_handler(event, context):\n"
    "    if event.get('fail'):\n"
    "        raise RuntimeError('requested failure')\n"
    "    if event.get('late'):\n"
    "        return {{'late': True, 'caller': sys._getframe(1).f_code.co_name}}\n"
    "    return {{'total': price(event['items'], 'de'), 'caller': sys._getframe(1).f_code.co_name}}\n"
)
EVENT = {"items": [{"qty": 2, "unit": 3}], "path": "/orders", "httpMethod": "GET", "resource": "/orders"}


def _environment(tmp_path, decorated: bool, **env: str) -> tuple[ExecutionEnvironment, object]:
    app = copy_app(tmp_path)
    (app / "probe.py").write_text(PROBE.format(
        decorate_import="from coverage_wrapper import coverage_handler" if decorated else "# zero-code",
        decorator="@coverage_handler" if decorated else "# undecorated",
    ))
    environment = ExecutionEnvironment(
        "probe-fn", "probe.lambda_handler", app, stage_layer(tmp_path / "opt"), exec_wrapper=not decorated,
        env={"COVERAGE_SOURCE_ROOT": str(app), "COVERAGE_OUTBOX_DIR": str(tmp_path / "outbox"), **env},
        log_dir=tmp_path / "logs",
    )
    return environment, app


def _sidecars(tmp_path) -> list[dict]:
    return [json.loads(path.with_suffix(".json").read_text()) for path in outbox_files(tmp_path)]


@pytest.mark.parametrize("decorated", [True, False], ids=["decorator", "zero-code"])
def test_the_runtime_calls_the_handler_itself_and_its_loop_counts_every_invocation(tmp_path, decorated):
    environment, app = _environment(tmp_path, decorated, COVERAGE_FLUSH_INVOCATIONS="3")
    environment.start()
    results = [environment.invoke(EVENT) for _ in range(5)]
    failed = environment.invoke({"fail": True})
    results.append(environment.invoke({"late": True}))
    environment.shutdown()
    assert {r["payload"]["caller"] for r in results} == {"handle_event_request"}, "no wrapper between runtime and handler"
    assert failed["outcome"] == "error" and failed["payload"]["errorType"] == "RuntimeError", "the runtime's own error"
    # Policy flushes after the 3rd and the 6th invocation (the failed one counts), the SIGTERM flush after the 7th.
    assert [s["invocations"] for s in _sidecars(tmp_path)] == [3, 6, 7]
    lines = recorded(outbox_files(tmp_path)[-1], app, tmp_path).executed_lines()
    assert {7, 9, 10} <= set(lines["probe.py"]), "every way through the handler was measured"

def test_per_request_contexts_keep_the_handler_wrapped_to_read_each_event(tmp_path):
    environment, app = _environment(tmp_path, decorated=True, COVERAGE_CONTEXTS="route")
    environment.start()
    result = environment.invoke(EVENT)
    environment.shutdown()
    assert result["payload"]["caller"] == "measured_handler"
    (data_file,) = outbox_files(tmp_path)
    assert "GET /orders" in recorded(data_file, app, tmp_path).contexts
