"""The layer inside a function process: what it records, passes through, flushes and ships."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from coverage_wrapper import keys
from coverage_wrapper.imported import ran_at_import
from coverage_wrapper.sources import code_version, scan_sources
from layer_harness import (
    EVENTS,
    FIXTURES,
    LAYER_SRC,
    copy_app,
    layer_env,
    log_lines,
    measured_directly,
    outbox_files,
    recorded,
    run_function,
)


def test_recorded_lines_and_arcs_equal_coverage_py_run_directly(tmp_path):
    app = copy_app(tmp_path)
    results = run_function("handler.lambda_handler", EVENTS, layer_env(app, tmp_path))
    files = outbox_files(tmp_path)
    assert len(files) == 1, "the final flush at exit writes one file"
    layer = recorded(files[0], app, tmp_path)
    direct = measured_directly(app, "handler.lambda_handler", EVENTS, tmp_path)
    # Decorator mode starts measuring after the import: module-level lines are saved as ran (self-arcs),
    # every other arc is coverage.py's own.
    assert layer.executed_lines() == direct.executed_lines()
    for path, arcs in direct.arcs.items():
        module_level = ran_at_import(ast.parse((app / path).read_text()))
        assert {a for a in layer.arcs[path] if a[0] != a[1]} <= arcs
        assert {a for a in arcs if a[0] > 0 and a[0] not in module_level} <= layer.arcs[path]
    assert layer.executed_lines()["shop/orders.py"]  # the business logic, not only the handler
    assert results[0] == {"result": {"statusCode": 200, "total": 8.33, "size": "small"}}


def test_return_values_and_exceptions_pass_through_untouched(tmp_path):
    app = copy_app(tmp_path)
    measured = run_function("handler.lambda_handler", EVENTS, layer_env(app, tmp_path))
    bare = run_function("handler.lambda_handler", EVENTS, layer_env(app, tmp_path, COVERAGE_ENABLED="false"))
    assert measured == bare
    assert measured[2] == {"error": "ValueError: quantity must be positive"}
    assert measured[3] == {"error": "RuntimeError: requested failure"}


def test_warm_invocations_flush_by_invocation_count(tmp_path):
    app = copy_app(tmp_path)
    events = [EVENTS[0]] * 4 + [EVENTS[1]] * 4
    env = layer_env(app, tmp_path, COVERAGE_FLUSH_INVOCATIONS="4")
    run_function("handler.lambda_handler", events, env)
    files = outbox_files(tmp_path)
    # Flush after 4 (new lines) and after 8 (the second event reached new lines); exit adds nothing new.
    assert len(files) == 2
    metas = [json.loads(f.with_suffix(".json").read_text()) for f in files]
    assert [m["invocations"] for m in metas] == [4, 8]
    assert [m["seq"] for m in metas] == [1, 2]
    first, second = (recorded(f, app, tmp_path).executed_lines()["shop/orders.py"] for f in files)
    assert set(first) < set(second), "data is cumulative across warm invocations"


def test_unchanged_coverage_is_not_flushed_again(tmp_path):
    app = copy_app(tmp_path)
    env = layer_env(app, tmp_path, COVERAGE_FLUSH_INVOCATIONS="2")
    run_function("handler.lambda_handler", [EVENTS[0]] * 10, env)
    metas = [json.loads(f.with_suffix(".json").read_text()) for f in outbox_files(tmp_path)]
    # The policy flush after 2 invocations; none at 4, 6, 8, 10 (nothing new); the exit flush records the count.
    assert [m["invocations"] for m in metas] == [2, 10]


def test_kill_switch_leaves_the_handler_unwrapped_and_unmeasured(tmp_path):
    app = copy_app(tmp_path)
    env = layer_env(app, tmp_path, COVERAGE_ENABLED="false")
    probe = (
        "import sys, handler; "
        "print(handler.lambda_handler.__module__, hasattr(handler.lambda_handler, '__wrapped__'), "
        "'coverage' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=app, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["handler", "False", "False"]
    run_function("handler.lambda_handler", EVENTS, env)
    assert outbox_files(tmp_path) == []


def test_sampling_zero_measures_nothing_and_one_measures(tmp_path):
    app = copy_app(tmp_path)
    run_function("handler.lambda_handler", EVENTS, layer_env(app, tmp_path, COVERAGE_SAMPLE_RATE="0"))
    assert outbox_files(tmp_path) == []
    run_function("handler.lambda_handler", EVENTS, layer_env(app, tmp_path, COVERAGE_SAMPLE_RATE="1"))
    assert len(outbox_files(tmp_path)) == 1


def test_sample_rate_is_the_fraction_of_execution_environments():
    import random

    from coverage_wrapper.config import parse_config
    from coverage_wrapper.session import CoverageSession

    random.seed(7)
    config = parse_config({"COVERAGE_SAMPLE_RATE": "0.25", "COVERAGE_OUTBOX_DIR": "/tmp/unused-outbox"})
    sampled = sum(CoverageSession(config).sampled for _ in range(2000))
    assert 400 < sampled < 600


def test_invalid_configuration_is_logged_once_and_replaced_by_defaults(tmp_path):
    app = copy_app(tmp_path)
    env = layer_env(
        app,
        tmp_path,
        COVERAGE_FLUSH_INVOCATIONS="many",
        COVERAGE_SAMPLE_RATE="2.5",
        COVERAGE_BRANCH_COVERAGE="perhaps",
        COVERAGE_LOG_LEVEL="LOUD",
        COVERAGE_UPLOAD_TIMEOUT="-1",
    )
    done = subprocess.run(
        [sys.executable, str(FIXTURES / "run_function.py"), "handler.lambda_handler", json.dumps(EVENTS[:2])],
        env=env, cwd=app, capture_output=True, text=True, check=True,
    )
    problems = [r["problem"] for r in log_lines(done.stdout) if r["message"] == "Invalid coverage configuration"]
    assert len(problems) == 5
    assert any(p.startswith("COVERAGE_FLUSH_INVOCATIONS='many' is invalid") for p in problems)
    assert '"result"' in done.stdout and len(outbox_files(tmp_path)) == 1  # defaults: measured, flushed at exit


def test_missing_bucket_is_one_clear_log_line_and_the_handler_runs(tmp_path):
    app = copy_app(tmp_path)
    done = subprocess.run(
        [sys.executable, str(FIXTURES / "run_function.py"), "handler.lambda_handler", json.dumps(EVENTS[:2])],
        env=layer_env(app, tmp_path), cwd=app, capture_output=True, text=True, check=True,
    )
    warnings = [r for r in log_lines(done.stdout) if "COVERAGE_S3_BUCKET" in r["message"]]
    assert len(warnings) == 1
    assert done.stdout.count('"result"') == 2


def test_upload_follows_the_key_scheme_with_metadata_and_source_snapshot(tmp_path, s3, bucket, moto_endpoint):
    app = copy_app(tmp_path)
    env = layer_env(app, tmp_path, COVERAGE_S3_BUCKET=bucket, AWS_ENDPOINT_URL=moto_endpoint, COVERAGE_S3_PREFIX="cov/")
    before = datetime.now(timezone.utc)
    run_function("handler.lambda_handler", EVENTS, env)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    raw = [k for k in listed if "/raw/" in k]
    assert len(raw) == 1
    parsed = keys.parse_raw_key(raw[0], "cov/")
    version = code_version(scan_sources(str(app)))
    assert (parsed.function, parsed.date, parsed.version) == ("orders-fn", before.strftime("%Y-%m-%d"), version)
    assert parsed.seq == 1 and len(parsed.env) == 8
    head = s3.head_object(Bucket=bucket, Key=raw[0])
    meta = head["Metadata"]
    assert meta["function"] == "orders-fn" and meta["code-version"] == version
    assert meta["invocations"] == "4" and meta["branch"] == "true" and meta["core"] in ("ctrace", "sysmon")
    assert set(meta) >= {"function-version", "runtime", "layer-version", "first-invocation", "last-invocation", "source-root"}
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=keys.sources_manifest_key("cov/", "orders-fn", version))["Body"].read())
    assert set(manifest["files"]) == {"handler.py", "plain.py", "shop/__init__.py", "shop/orders.py"}
    blob = s3.get_object(Bucket=bucket, Key=keys.source_blob_key("cov/", manifest["files"]["shop/orders.py"]["sha256"]))
    assert blob["Body"].read() == (app / "shop" / "orders.py").read_bytes()
    uploaded = tmp_path / "uploaded.coverage"
    s3.download_file(bucket, raw[0], str(uploaded))
    assert recorded(uploaded, app, tmp_path).executed_lines()["shop/orders.py"]
    assert outbox_files(tmp_path) == [], "the outbox is empty once shipped"


def test_code_version_label_wins_over_the_computed_hash(tmp_path, s3, bucket, moto_endpoint):
    app = copy_app(tmp_path)
    env = layer_env(app, tmp_path, COVERAGE_S3_BUCKET=bucket, AWS_ENDPOINT_URL=moto_endpoint, COVERAGE_CODE_VERSION="git:1a2b3c/main")
    run_function("handler.lambda_handler", EVENTS[:1], env)
    raw = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="coverage/raw/")["Contents"]]
    assert keys.parse_raw_key(raw[0]).version == "git-1a2b3c-main"


def test_sigterm_flushes_a_warm_idle_process_then_exits_as_without_the_layer(tmp_path):
    app = copy_app(tmp_path)
    env = layer_env(app, tmp_path, COVERAGE_FLUSH_INVOCATIONS="1000", COVERAGE_FLUSH_SECONDS="1000")
    process = subprocess.Popen(
        [sys.executable, str(FIXTURES / "run_function.py"), "handler.lambda_handler", json.dumps(EVENTS[:2]), "--sleep-after", "60"],
        env=env, cwd=app, stdout=subprocess.PIPE, text=True,
    )
    for line in process.stdout:
        if line.startswith('{"idle"'):
            break
    assert outbox_files(tmp_path) == []
    process.send_signal(signal.SIGTERM)
    output = process.stdout.read()
    assert process.wait(timeout=20) == -signal.SIGTERM
    files = outbox_files(tmp_path)
    assert len(files) == 1
    assert json.loads(files[0].with_suffix(".json").read_text())["invocations"] == 2
    assert any(r.get("flush_reason") == "sigterm" for r in log_lines(output))


def test_zero_code_mode_covers_module_level_lines(tmp_path):
    app = copy_app(tmp_path)
    env = layer_env(app, tmp_path, _HANDLER="plain.lambda_handler")
    env["PYTHONPATH"] = os.pathsep.join([str(app), str(LAYER_SRC)])  # as on Lambda, where /opt/python is on the path
    bootstrap = (
        "import importlib, json, os; "
        "module, _, name = os.environ['_HANDLER'].rpartition('.'); "
        "handler = getattr(importlib.import_module(module), name); "
        f"print(json.dumps(handler({json.dumps(EVENTS[0])}, None)))"
    )
    done = subprocess.run(
        [str(LAYER_SRC / "coverage-instrument"), sys.executable, "-c", bootstrap],
        env=env, cwd=app, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert '"ready": true' in done.stdout
    files = outbox_files(tmp_path)
    assert len(files) == 1
    lines = recorded(files[0], app, tmp_path).executed_lines()
    assert {1, 2, 4, 6, 7, 8, 13} <= set(lines["plain.py"]), "imports, constants and the if at module level"
    assert {3, 6, 18} <= set(lines["shop/orders.py"]), "module-level lines of imported modules too"
    assert json.loads(files[0].with_suffix(".json").read_text())["invocations"] == 1


def test_context_manager_measures_only_inside_the_block_and_nests(tmp_path):
    app = copy_app(tmp_path)
    (app / "blocks.py").write_text(
        "from coverage_wrapper import CoverageContext\n"
        "from shop.orders import classify, price\n"
        "\n"
        "def lambda_handler(event, context):\n"
        "    outside = classify(500)\n"
        "    with CoverageContext():\n"
        "        with CoverageContext():\n"
        "            total = price(event['items'], 'de')\n"
        "    return {'total': total, 'outside': outside}\n"
    )
    results = run_function("blocks.lambda_handler", [EVENTS[0], EVENTS[0]], layer_env(app, tmp_path))
    assert results[0] == {"result": {"total": 8.33, "outside": "large"}}
    lines = recorded(outbox_files(tmp_path)[-1], app, tmp_path).executed_lines()
    assert 19 not in lines["shop/orders.py"] and 20 not in lines["shop/orders.py"], "classify ran outside the block"
    assert {7, 8, 9, 11} <= set(lines["shop/orders.py"])
    meta = json.loads(outbox_files(tmp_path)[-1].with_suffix(".json").read_text())
    assert meta["invocations"] == 2, "one count per outermost block"


def test_health_check_reports_status_and_configuration(tmp_path):
    app = copy_app(tmp_path)
    (app / "health.py").write_text(
        "from coverage_wrapper import coverage_handler, health_check_handler\n"
        "@coverage_handler\n"
        "def lambda_handler(event, context):\n"
        "    return health_check_handler()\n"
    )
    env = layer_env(app, tmp_path, COVERAGE_S3_BUCKET="my-coverage-bucket")
    env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # nothing listens: uploads fail, the handler does not
    result = run_function("health.lambda_handler", [{}], env)[0]["result"]
    assert result["status"] == "healthy" and result["coverage_enabled"] is True
    assert result["s3_config"] == {"bucket": "my-coverage-bucket", "prefix": "coverage/", "configured": True}
    assert result["layer_version"] and result["core"] in ("ctrace", "sysmon")
    assert result["outbox"] == {"files": 0, "bytes": 0} and result["errors"] == []


def test_an_invalid_setting_is_logged_even_when_the_log_level_hides_warnings(tmp_path):
    app = copy_app(tmp_path)
    env = layer_env(app, tmp_path, COVERAGE_LOG_LEVEL="ERROR", COVERAGE_SAMPLE_RATE="2.5")
    done = subprocess.run(
        [sys.executable, str(FIXTURES / "run_function.py"), "handler.lambda_handler", json.dumps(EVENTS[:1])],
        env=env, cwd=app, capture_output=True, text=True, check=True,
    )
    records = log_lines(done.stdout)
    problems = [r["problem"] for r in records if r["message"] == "Invalid coverage configuration"]
    assert len(problems) == 1 and problems[0].startswith("COVERAGE_SAMPLE_RATE='2.5' is invalid")
    assert not [r for r in records if r["level"] in ("DEBUG", "INFO")], "the level still holds for everything else"


def _init_error(tmp_path, handler: str, with_layer: bool) -> dict:
    """What the runtime reports when the function's init fails, with or without the layer's exec wrapper."""
    from lambda_coverage.execution_environment import ExecutionEnvironment, stage_layer

    app = copy_app(tmp_path / ("with" if with_layer else "without"))
    (app / "broken.py").write_text("def lambda_handler(event, context)\n    return 1\n")
    environment = ExecutionEnvironment(
        "errors-fn", handler, app, stage_layer(tmp_path / "opt") if with_layer else None, exec_wrapper=with_layer,
        env={"COVERAGE_SOURCE_ROOT": str(app), "COVERAGE_OUTBOX_DIR": str(tmp_path / "outbox")},
    )
    try:
        with pytest.raises(RuntimeError):
            environment.start()
    finally:
        environment.shutdown()
    assert environment.init_error, "the runtime reported an init error"
    return environment.init_error


@pytest.mark.parametrize(
    "handler, error_type",
    [
        ("no_such_module.lambda_handler", "Runtime.ImportModuleError"),
        ("handler.no_such_function", "Runtime.HandlerNotFound"),
        ("broken.lambda_handler", "Runtime.UserCodeSyntaxError"),
        ("no-dot-in-it", "Runtime.MalformedHandlerName"),
    ],
)
def test_zero_code_mode_gives_the_runtimes_own_init_errors(tmp_path, handler, error_type):
    without = _init_error(tmp_path, handler, with_layer=False)
    with_layer = _init_error(tmp_path, handler, with_layer=True)
    assert without["errorType"] == error_type
    assert (with_layer["errorType"], with_layer["errorMessage"]) == (without["errorType"], without["errorMessage"])
    assert "coverage_wrapper" not in with_layer["errorMessage"]


# SIGTERM reaches the function process in the middle of a flush, between two steps of copying its data.
SIGTERM_MID_FLUSH = (
    "import os, signal\n"
    "import coverage_wrapper.outbox as outbox\n"
    "from coverage_wrapper import coverage_handler\n"
    "from shop.orders import price\n"
    "\n"
    "copy = outbox._copy_file\n"
    "signalled = []\n"
    "\n"
    "def copy_while_sigterm_arrives(source, target):\n"
    "    if not signalled:\n"
    "        signalled.append(True)\n"
    "        os.kill(os.getpid(), signal.SIGTERM)  # handled at the next bytecode: inside this flush\n"
    "    copy(source, target)\n"
    "\n"
    "outbox._copy_file = copy_while_sigterm_arrives\n"
    "\n"
    "@coverage_handler\n"
    "def lambda_handler(event, context):\n"
    "    return price(event['items'], 'de')\n"
)


def test_sigterm_during_a_flush_lets_it_finish_then_shuts_down_once(tmp_path):
    app = copy_app(tmp_path)
    (app / "interrupted.py").write_text(SIGTERM_MID_FLUSH)
    env = layer_env(app, tmp_path, COVERAGE_FLUSH_INVOCATIONS="1")
    done = subprocess.run(
        [sys.executable, str(FIXTURES / "run_function.py"), "interrupted.lambda_handler", json.dumps(EVENTS[:1])],
        env=env, cwd=app, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == -signal.SIGTERM, done.stderr
    pending = sorted((tmp_path / "outbox" / "pending").iterdir())
    assert [p.suffix for p in pending] == [".coverage", ".json"] * 2, "complete entries, nothing half-written"
    metas = [json.loads(p.read_text()) for p in pending if p.suffix == ".json"]
    # The interrupted policy flush first; then the final flush, with the lines that ran during the first.
    assert [(m["seq"], m["invocations"]) for m in metas] == [(1, 1), (2, 1)]
    records = log_lines(done.stdout)
    flushes = {r["seq"]: r["flush_reason"] for r in records if r.get("operation") == "coverage_flush"}
    assert flushes == {1: "policy", 2: "sigterm"}
    assert len([r for r in records if r.get("operation") == "coverage_shutdown"]) == 1, "exactly one final flush"


FORKING = (
    "import multiprocessing\n"
    "from coverage_wrapper import coverage_handler\n"
    "from shop.orders import classify, price\n"
    "\n"
    "def work(queue):\n"
    "    queue.put(classify(5))\n"
    "\n"
    "@coverage_handler\n"
    "def lambda_handler(event, context):\n"
    "    fork = multiprocessing.get_context('fork')\n"
    "    queue = fork.Queue()\n"
    "    child = fork.Process(target=work, args=(queue,))\n"
    "    child.start()\n"
    "    size = queue.get(timeout=60)\n"
    "    child.join(60)\n"
    "    return {'size': size, 'child_exit': child.exitcode, 'total': price(event['items'], 'de')}\n"
)


def test_a_forked_child_ships_its_own_data_under_its_own_environment_id(tmp_path, s3, bucket, moto_endpoint):
    app = copy_app(tmp_path)
    (app / "forking.py").write_text(FORKING)
    env = layer_env(app, tmp_path, COVERAGE_S3_BUCKET=bucket, AWS_ENDPOINT_URL=moto_endpoint)
    [result] = run_function("forking.lambda_handler", EVENTS[:1], env)
    assert result == {"result": {"size": "small", "child_exit": 0, "total": 8.33}}
    raw = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="coverage/raw/")["Contents"]]
    assert len(raw) == 2 and len({keys.parse_raw_key(k).env for k in raw}) == 2, "two processes, two identities"
    by_invocations = {}
    for key in raw:
        local = tmp_path / key.rsplit("/", 1)[1]
        s3.download_file(bucket, key, str(local))
        invocations = s3.head_object(Bucket=bucket, Key=key)["Metadata"]["invocations"]
        by_invocations[invocations] = recorded(local, app, tmp_path).executed_lines()
    parent, child = by_invocations["1"], by_invocations["0"]
    assert {19, 21, 23} <= set(child["shop/orders.py"]), "classify ran in the child only"
    assert not {19, 21, 23} & set(parent["shop/orders.py"]), "the child's data never lands in the parent's file"
    assert {7, 8, 12, 15} <= set(parent["shop/orders.py"])
    assert list((tmp_path / "outbox" / "live").iterdir()) == []
