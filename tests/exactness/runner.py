"""Runs the staged exactness corpus in one process, measured by coverage.py's C tracer or by the layer, and writes its JSON report.

Invoked by the exactness suite with an interpreter of the Python under test: `runner.py PLAN.json`.
The plan says which side measures (`oracle`: coverage.py's own branch measurement; `layer`: the layer's
session with the core under test), whether measuring starts before the corpus is imported or after,
and which functions to call. The outcome file records the report, the core that measured, what each
call returned or raised, and the function-body lines of every staged file (for the import-first checks).
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import sys
import traceback
from typing import Any, Callable


def _function_body_lines(path: str) -> list[int]:
    """Lines inside a def's body (not the def or decorator lines): code that only runs when the function is called."""
    with open(path, "rb") as handle:  # bytes: the parser honours the file's own encoding declaration
        tree = ast.parse(handle.read(), path)
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = node.body[0].lineno
            lines.update(line for line in range(start, (node.end_lineno or start) + 1) if line > node.lineno)
    return sorted(lines)


def _staged_files(root: str) -> dict[str, list[int]]:
    found = {}
    for directory, subdirs, filenames in os.walk(root):
        subdirs[:] = [d for d in subdirs if d != "__pycache__"]
        for filename in filenames:
            if filename.endswith(".py"):
                path = os.path.join(directory, filename)
                found[os.path.relpath(path, root)] = _function_body_lines(path)
    return found


def _call(call: dict[str, Any], checkpoint: Callable[[], None]) -> list[str]:
    """Run one planned call (each event is one invocation); what it returned or raised, comparable across runs."""
    module = importlib.import_module(call["module"])
    function = getattr(module, call["function"])
    if call.get("events") is None:
        outcomes = [repr(function())]
        checkpoint()
        return outcomes
    outcomes = []
    for event in call["events"]:
        try:
            result = function(event, None)
            # An API response's body may carry timings; its status code is what must not change.
            outcomes.append(repr(result["statusCode"]) if isinstance(result, dict) and "statusCode" in result else repr(result))
        except Exception as exc:  # an example may raise on a bad event: that is an outcome too
            outcomes.append(f"raised {type(exc).__name__}")
        checkpoint()
    return outcomes


def main(plan_path: str) -> None:
    with open(plan_path, encoding="utf-8") as handle:
        plan = json.load(handle)
    root = plan["root"]
    os.chdir(root)  # report file names relative to the source root, the same on both sides
    outcome: dict[str, Any] = {"calls": {}, "errors": {}, "core": None, "tracer_during_calls": None}
    modules = sorted({call["module"] for call in plan["calls"]})

    def import_all() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:
                outcome["errors"][name] = "import failed:\n" + traceback.format_exc()

    if plan["side"] == "oracle":
        import coverage

        cov = coverage.Coverage(branch=True, data_file=plan["data_file"], source=[root], config_file=False)
        if plan["order"] == "start-first":
            cov.start()
            import_all()
        else:
            import_all()
            cov.start()
        outcome["core"] = os.environ.get("COVERAGE_CORE")
    else:
        from coverage_wrapper.session import get_session

        if plan["order"] == "import-first":
            import_all()
        session = get_session()
        session.start_continuous()
        if plan["order"] == "start-first":
            import_all()
        outcome["core"] = session.config.core
        outcome["measuring"] = session.status()["measuring"]

    outbox_files: list[str] = []
    flushes: list[dict[str, Any]] = []

    def flush() -> None:
        flushed = session.flush(reason="test")
        flushes.append({k: v for k, v in flushed.items() if k != "duration_ms"})
        if flushed.get("flushed"):
            outbox_files.append(flushed["outbox_file"])

    def checkpoint() -> None:
        if plan.get("flush_each_call"):  # as COVERAGE_FLUSH_INVOCATIONS=1 does after every invocation
            flush()

    outcome["tracer_during_calls"] = repr(sys.gettrace())
    for call in plan["calls"]:
        name = call["module"] + "." + call["function"]
        if call["module"] in outcome["errors"]:
            continue
        try:
            outcome["calls"][name] = _call(call, checkpoint)
        except Exception:
            outcome["errors"][name] = traceback.format_exc()

    if plan["side"] == "oracle":
        cov.stop()
        cov.save()
        report_cov = cov
    else:
        flush()
        outcome["flushes"] = flushes
        outcome["session_errors"] = list(session.errors)
        outcome["modules_marked"] = session.status()["modules_marked"]
        if not outbox_files:
            _write(plan["outcome"], outcome)
            return
        import coverage

        # Every file the flushes put in the outbox, combined as the pipeline combines them.
        report_cov = coverage.Coverage(data_file=plan["data_file"], branch=True, config_file=False)
        report_cov.combine(data_paths=outbox_files, keep=True, strict=True)
    report_cov.json_report(outfile=plan["report"])
    with open(plan["report"], encoding="utf-8") as handle:
        outcome["report"] = json.load(handle)
    outcome["function_body_lines"] = _staged_files(root)
    _write(plan["outcome"], outcome)


def _write(path: str, outcome: dict[str, Any]) -> None:
    with open(path + ".part", "w", encoding="utf-8") as handle:
        json.dump(outcome, handle)
    os.replace(path + ".part", path)


if __name__ == "__main__":
    main(sys.argv[1])
