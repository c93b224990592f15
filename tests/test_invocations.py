"""The decorator's bookkeeping per invocation: what it counts, when it flushes, what it stamps, what it never raises."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from exactness.harness import venv_python
from layer_harness import FIXTURES, copy_app, layer_env, log_lines, outbox_files

INTERPRETERS = [("venv", "ctrace"), ("3.12", "markers"), ("3.13", "markers")]

HANDLERS = '''\
import threading
import time

from coverage_wrapper import CoverageContext, coverage_handler
from shop.orders import classify


@coverage_handler
def lambda_handler(event, context):
    time.sleep(event.get("sleep", 0))  # also hands the GIL to another thread between calls
    return classify(event["total"])


@coverage_handler
def outer_handler(event, context):
    with CoverageContext():
        return {"inner": lambda_handler(event, context), "again": lambda_handler(event, context)}


def call_from_threads(threads, calls):
    start = threading.Barrier(threads)
    results = []

    def work():
        start.wait()
        results.extend(lambda_handler({"total": n}, None) for n in range(calls))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(results)
'''


def _app(tmp_path: Path) -> Path:
    app = copy_app(tmp_path)
    (app / "handlers.py").write_text(HANDLERS)
    return app


def _interpreter(python: str) -> str:
    return sys.executable if python == "venv" else str(venv_python(python))


def _run(python: str, app: Path, tmp_path: Path, handler: str, events: list, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [python, str(FIXTURES / "run_function.py"), f"handlers.{handler}", json.dumps(events)],
        env=layer_env(app, tmp_path, **env), cwd=app, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def _metas(tmp_path: Path) -> list[dict]:
    return [json.loads(f.with_suffix(".json").read_text()) for f in outbox_files(tmp_path)]


@pytest.mark.parametrize("python, core", INTERPRETERS)
def test_every_call_from_concurrent_threads_is_counted_once(python, core, tmp_path):
    """Calls that overlap in time from other threads are invocations of their own, not nested ones."""
    app = _app(tmp_path)
    threads, calls = 4, 1500
    script = f"import handlers; print({{'calls': handlers.call_from_threads({threads}, {calls})}})"
    done = subprocess.run(
        [_interpreter(python), "-c", script],
        env=layer_env(app, tmp_path, COVERAGE_CORE=core), cwd=app, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"{{'calls': {threads * calls}}}" in done.stdout.splitlines()
    assert _metas(tmp_path)[-1]["invocations"] == threads * calls, "the final flush counts every call"


@pytest.mark.parametrize("python, core", INTERPRETERS)
def test_nested_decorated_handlers_and_blocks_count_one_invocation(python, core, tmp_path):
    app = _app(tmp_path)
    events = [{"total": 5}, {"total": 50}, {"total": 500}]
    done = _run(_interpreter(python), app, tmp_path, "outer_handler", events, COVERAGE_CORE=core)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"result"')]
    assert [r["result"]["inner"] for r in results] == ["small", "medium", "large"]
    [meta] = _metas(tmp_path)
    assert meta["invocations"] == 3


@pytest.mark.parametrize("python, core", INTERPRETERS)
def test_a_flush_due_by_time_happens_at_the_end_of_the_invocation_that_reaches_it(python, core, tmp_path):
    """The second invocation outlasts COVERAGE_FLUSH_SECONDS: its own end flushes, not the next invocation."""
    app = _app(tmp_path)
    began = time.time()
    events = [{"total": 5}, {"total": 500, "sleep": 0.6}]
    done = _run(_interpreter(python), app, tmp_path, "lambda_handler", events,
                COVERAGE_CORE=core, COVERAGE_FLUSH_SECONDS="0.5", COVERAGE_FLUSH_INVOCATIONS="1000")
    ended = time.time()
    flushes = [r for r in log_lines(done.stdout) if r.get("operation") == "coverage_flush"]
    # Under load the first invocation may already end past the deadline: then it flushes too.
    assert [r["invocations"] for r in flushes if r["flush_reason"] == "policy"][-1:] == [2]
    meta = _metas(tmp_path)[-1]
    assert meta["invocations"] == 2
    first, last = (datetime.fromisoformat(meta[k].replace("Z", "+00:00")).timestamp()
                   for k in ("first_invocation", "last_invocation"))
    assert began <= first and last <= ended, "wall-clock times of this run"
    assert last - first >= 0.6, "the second invocation ended after its 0.6 s sleep"


def test_a_failing_flush_never_reaches_the_handler_and_is_reported(tmp_path):
    app = _app(tmp_path)
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "pending").write_text("a file where the outbox wants a directory")
    events = [{"total": 5}, {"total": 500}]
    done = _run(sys.executable, app, tmp_path, "lambda_handler", events, COVERAGE_FLUSH_INVOCATIONS="1")
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith(('{"result"', '{"error"'))]
    assert results == [{"result": "small"}, {"result": "large"}]
    failures = [r for r in log_lines(done.stdout) if r.get("message") == "Coverage flush failed"]
    assert len(failures) >= 2, "each invocation's policy flush failed, and said so"
