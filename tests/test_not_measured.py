"""What ran unseen at an import before measuring began (decorator mode): recorded by the layer, carried through the
pipeline, and named in the reports instead of being passed off as not executed."""

from __future__ import annotations

import ast
import json
import os
import socket
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from coverage_wrapper import datafile, keys
from coverage_wrapper.config import parse_config
from coverage_wrapper.imported import IMPORTED_BEFORE, not_measured_at_import, ran_at_import
from coverage_wrapper.merge import Measurements, merge_data_files
from coverage_wrapper.outbox import Outbox
from coverage_wrapper.shipper import drain
from exactness import harness
from layer_harness import LAYER_SRC, layer_env, run_function

FUNCTION = "inits-fn"
# Setup inside module-level compound statements, and a decorated handler.
APP = '''"""A decorated handler whose module does its setup inside module-level compound statements."""
import os

from coverage_wrapper import coverage_handler

try:
    import json
except ImportError:
    json = None

FLAG = os.environ.get("FLAG") == "1"
if FLAG:
    MODE = "on"
else:
    MODE = "off"


@coverage_handler
def lambda_handler(event, context):
    return {"mode": MODE, "json": json is not None}
'''
INSIDE_COMPOUND = {7, 8, 9, 13, 15}  # import json, except, json = None, MODE = "on", MODE = "off"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "inits.py").write_text(APP)
    return app


def _zero_code(app: Path, env: dict[str, str], python: str = sys.executable) -> None:
    """The handler run as Lambda runs it in zero-code mode: the layer's wrapper starts measuring, then imports it."""
    env = dict(env, _HANDLER="inits.lambda_handler", PYTHONPATH=os.pathsep.join([str(app), str(LAYER_SRC)]))  # /opt/python is on the path in Lambda
    bootstrap = (
        "import importlib, json, os; module, _, name = os.environ['_HANDLER'].rpartition('.'); "
        "print(json.dumps(getattr(importlib.import_module(module), name)({}, None)))"
    )
    done = subprocess.run([str(LAYER_SRC / "coverage-instrument"), python, "-c", bootstrap],
                          env=env, cwd=app, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _uploaded(tmp_path: Path, app: Path, bucket: str, moto_endpoint: str, python: str, zero_code: bool) -> Path:
    """Run the function once in its own process, ship its outbox with the layer's shipper, return the raw file uploaded."""
    outbox = tmp_path / ("outbox-zero-code" if zero_code else "outbox-decorator")
    env = layer_env(app, tmp_path, AWS_LAMBDA_FUNCTION_NAME=FUNCTION, COVERAGE_OUTBOX_DIR=str(outbox), FLAG="1",
                    COVERAGE_S3_BUCKET=bucket, COVERAGE_UPLOAD_TIMEOUT="2",
                    # Nothing leaves the function process (the 3.12 venv has no boto3 anyway): the drain below ships it.
                    AWS_ENDPOINT_URL=f"http://127.0.0.1:{_closed_port()}")
    if zero_code:
        _zero_code(app, env, python)
    else:
        done = subprocess.run([python, str(Path(__file__).parent / "fixtures" / "run_function.py"), "inits.lambda_handler", "[{}]"],
                              env=env, cwd=app, capture_output=True, text=True, timeout=120)
        assert '{"result": {"mode": "on", "json": true}}' in done.stdout, done.stderr
    os.environ["AWS_ENDPOINT_URL"] = moto_endpoint
    try:
        config = parse_config({"COVERAGE_S3_BUCKET": bucket, "COVERAGE_OUTBOX_DIR": str(outbox)})
        shipped = drain(Outbox(config.outbox_dir), config, everything=True)
    finally:
        del os.environ["AWS_ENDPOINT_URL"]
    assert shipped["remaining"] == 0 and len(shipped["uploaded"]) == 1, shipped
    return Path(shipped["uploaded"][0])


def test_the_inner_lines_of_module_level_compound_statements_are_what_is_unknown():
    tree = ast.parse(APP)
    assert not_measured_at_import(tree) == INSIDE_COMPOUND
    assert not ran_at_import(tree) & INSIDE_COMPOUND
    nested = ast.parse(
        "class Settings:\n"          # 1: ran
        "    if True:\n"             # 2: ran (a statement of the class body)
        "        debug = 1\n"        # 3: unknown
        "    def load(self):\n"      # 4: ran
        "        if self:\n"         # 5: a function body: measured when called
        "            return 1\n"
        "match 1:\n"                 # 7: ran
        "    case 1:\n"              # 8: unknown
        "        @staticmethod\n"    # 9: unknown
        "        def f(): return 2\n"  # 10: unknown
    )
    assert not_measured_at_import(nested) == {3, 8, 9, 10}


@pytest.mark.parametrize("python", ["dev", "3.12"], ids=["ctrace-3.11", "markers-3.12"])
def test_decorator_mode_records_the_modules_imported_before_measuring_and_zero_code_none(python, tmp_path, s3, bucket, moto_endpoint):
    interpreter = sys.executable if python == "dev" else str(harness.venv_python(python))
    app = _app(tmp_path)
    decorated = _uploaded(tmp_path, app, bucket, moto_endpoint, interpreter, zero_code=False)
    local = tmp_path / "decorated.coverage"
    s3.download_file(bucket, str(decorated), str(local))
    assert s3.head_object(Bucket=bucket, Key=str(decorated))["Metadata"]["core"] == ("ctrace" if python == "dev" else "markers")
    assert json.loads(datafile.read_meta(str(local), [IMPORTED_BEFORE])[IMPORTED_BEFORE]) == ["inits.py"]
    data = Measurements()
    data.add_file(str(local))
    executed = set(data.executed_lines()["inits.py"])
    # The inner lines are shown as not executed, and the data says why: derived from the source, they are
    # exactly those of the module-level `try` and `if`.
    unknown = not_measured_at_import(ast.parse((app / "inits.py").read_text()))
    assert unknown == INSIDE_COMPOUND and not executed & unknown
    assert {2, 4, 6, 11, 12, 18, 20} <= executed

    zero_code = _uploaded(tmp_path, app, bucket, moto_endpoint, interpreter, zero_code=True)
    s3.download_file(bucket, str(zero_code), str(local))
    assert datafile.read_meta(str(local), [IMPORTED_BEFORE]) == {}
    data = Measurements()
    data.add_file(str(local))
    assert {7, 13} <= set(data.executed_lines()["inits.py"]), "zero-code mode measured the import itself"


@pytest.mark.parametrize("value, why", [
    ("not json", "it is not JSON"),
    ('{"inits.py": [7]}', "it is not a list of paths"),
    ('["inits.py", 7]', "it is not a list of paths"),
    ('["/var/task/inits.py"]', "absolute file path"),
    ('["<script>alert(1)</script>.py"]', "unexpected characters"),
    (json.dumps([f"m{n}.py" for n in range(20001)]), "20001 paths is over 20000"),
    (b'["inits.py"]', "it is not text"),
])
def test_a_forged_record_is_refused_with_its_reason_and_the_other_files_still_merge(value, why, tmp_path):
    good, forged = tmp_path / "good.coverage", tmp_path / "forged.coverage"
    datafile.write_data_file(str(good), arcs={"inits.py": [(2, 2), (7, 7)]})
    datafile.write_data_file(str(forged), arcs={"inits.py": [(15, 15)]})
    with sqlite3.connect(forged) as connection:
        connection.execute("insert into meta (key, value) values (?, ?)", (IMPORTED_BEFORE, value))
    connection.close()
    result = merge_data_files([str(good), str(forged)], str(tmp_path / "combined.coverage"))
    assert result.merged == [str(good)]
    [(_, rejection)] = result.rejected
    assert rejection.code == "bad_imported_before" and why in rejection.message
    assert datafile.read_meta(str(tmp_path / "combined.coverage"), [IMPORTED_BEFORE]) == {}


# -- through the real pipeline -------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws(fake_aws_credentials):
    from lambda_coverage.local import LocalAws

    with LocalAws(window_seconds=2) as emulation:
        yield emulation


def _read(aws, key: str) -> bytes:
    return aws.client("s3").get_object(Bucket=aws.bucket, Key=key)["Body"].read()


def _hostile_copy(aws, raw_key: str, tmp_path: Path, value: str) -> str:
    """A copy of a real raw file under another environment's key, with a forged list of modules imported before."""
    local = tmp_path / "hostile.coverage"
    aws.client("s3").download_file(aws.bucket, raw_key, str(local))
    with sqlite3.connect(local) as connection:
        connection.execute("insert or replace into meta (key, value) values (?, ?)", (IMPORTED_BEFORE, value))
    connection.close()
    raw = keys.parse_raw_key(raw_key, aws.prefix)
    flushed = datetime.now(timezone.utc)
    key = keys.raw_key(aws.prefix, raw.function, flushed, raw.version, "0badc0de", 1)
    aws.client("s3").upload_file(str(local), aws.bucket, key, ExtraArgs={"Metadata": {"function": raw.function}})
    return key


def test_reports_name_the_lines_not_measured_and_what_another_environment_measured_is_not_among_them(aws, tmp_path):
    """A decorated environment (FLAG on) and a zero-code one (FLAG off) of one code version: the report lists as not
    measured only the inner lines no environment measured; a forged record is quarantined with its reason."""
    app = _app(tmp_path)
    s3 = aws.client("s3")
    base = layer_env(app, tmp_path, AWS_LAMBDA_FUNCTION_NAME=FUNCTION, COVERAGE_S3_BUCKET=aws.bucket, COVERAGE_S3_PREFIX=aws.prefix)
    assert run_function("inits.lambda_handler", [{}], dict(base, FLAG="1", COVERAGE_OUTBOX_DIR=str(tmp_path / "a"))) == [
        {"result": {"mode": "on", "json": True}}
    ]
    _zero_code(app, dict(base, FLAG="0", COVERAGE_OUTBOX_DIR=str(tmp_path / "b")))
    raw_keys = [o["Key"] for o in s3.list_objects_v2(Bucket=aws.bucket, Prefix=f"{aws.prefix}raw/{FUNCTION}/")["Contents"]]
    assert len(raw_keys) == 2
    hostile = _hostile_copy(aws, raw_keys[0], tmp_path, json.dumps(["../../secrets.py"]))
    aws.wait_until_idle(timeout=120)

    raw = keys.parse_raw_key(raw_keys[0], aws.prefix)
    reason = json.loads(_read(aws, keys.quarantine_reason_key(aws.prefix, hostile)))
    assert reason["reason"] == "bad_imported_before" and "../../secrets.py" in reason["message"]
    combined = keys.combined_prefix(aws.prefix, FUNCTION, raw.date, raw.version)
    assert json.loads(_read(aws, combined + "manifest.json"))["raw_keys"] == sorted(raw_keys)

    # The decorated environment cannot say whether 7, 8, 9, 13, 15 ran; the zero-code one ran 7 and 15.
    summary = json.loads(_read(aws, combined + "summary.json"))
    assert summary["not_measured"]["files"] == [{"path": "inits.py", "lines": [8, 9, 13]}]
    assert summary["not_measured"]["lines"] == 3
    assert summary["not_measured"]["note"].startswith("3 line(s) in 1 file(s) were not measured")
    report = json.loads(_read(aws, combined + "coverage.json"))
    assert {8, 9, 13} <= set(report["files"]["inits.py"]["missing_lines"])
    assert {7, 15} <= set(report["files"]["inits.py"]["executed_lines"])
    page = _read(aws, combined + "html/index.html").decode()
    assert page.index('class="lc-nav"') < page.index('id="not-measured"') < page.index("inits.py</a>")
    assert "3 line(s) in 1 file(s) were not measured" in page and "zero-code mode" in page
    assert "<code>inits.py</code>: lines 8-9, 13" in page
    # The version's since-deploy data folds the day in, record included.
    since_deploy = json.loads(_read(aws, keys.versions_prefix(aws.prefix, FUNCTION, raw.version) + "summary.json"))
    assert since_deploy["not_measured"]["files"] == [{"path": "inits.py", "lines": [8, 9, 13]}]
