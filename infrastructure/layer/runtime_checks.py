"""Running an extracted layer in one local interpreter: the decorator, zero-code mode and the extension's start."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .interpreters import last_line
from .layout import EXEC_WRAPPER, EXTENSION, MANIFEST_NAME, site_packages

CHECK_DECORATED_SCRIPT = Path(__file__).with_name("scripts") / "check_decorated.py"

_FUNCTION_ZERO_CODE = '''"""Imitates user code that knows nothing of the layer."""
import os

GREETING = "hello from " + os.path.basename(__file__)


def handler(event, context):
    return {"greeting": GREETING, "n": event["n"]}
'''
_ZERO_CODE_MODULE_LINES = {2, 4, 7}  # import, assignment, def: they run only at import time
_ZERO_CODE_BODY_LINES = {8}

_FUNCTION_DECORATED = '''"""Imitates a function that uses the seed's decorator."""
from coverage_wrapper import coverage_handler


@coverage_handler
def handler(event, context):
    if event.get("fail"):
        raise LookupError(event["fail"])
    return event["payload"]
'''
_DECORATED_BODY_LINES = {7, 9}

# Stand-ins that make "was boto3 imported?" a real question inside an interpreter without site-packages.
_STUBS = {
    "boto3/__init__.py": '"""Validation stand-in: importing it is what the check looks for."""\n',
    "botocore/__init__.py": '"""Validation stand-in: importing it is what the check looks for."""\n',
    "botocore/session.py": (
        '"""Validation stand-in: no AWS here."""\n\n\ndef get_session():\n'
        '    raise RuntimeError("validation stand-in: no AWS")\n'
    ),
    "botocore/config.py": '"""Validation stand-in."""\n\n\nclass Config:\n    def __init__(self, **kwargs):\n        pass\n',
}

# The Lambda runtime's bootstrap, reduced to what matters here: import _HANDLER's module, call it once.
_BOOTSTRAP_IMITATION = (
    "import importlib, json, os; "
    "module, _, name = os.environ['_HANDLER'].rpartition('.'); "
    "handler = getattr(importlib.import_module(module), name); "
    "print('LAYER-VALIDATION ' + json.dumps({'result': handler({'n': 1}, None), '_HANDLER': os.environ['_HANDLER']}))"
)


@dataclass
class RuntimeCheck:
    """How the layer behaved in one local interpreter."""

    runtime: str
    interpreter: str
    problems: list[str] = field(default_factory=list)
    coverage: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def extract_as_opt(zip_path: Path, opt: Path) -> None:
    """Unpack a layer zip the way Lambda does into /opt: with the permission bits the zip records."""
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = opt / info.filename
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            os.chmod(target, (info.external_attr >> 16) & 0o777 or 0o644)


def check_runtime(opt: Path, runtime: str, interpreter: Path, work: Path) -> RuntimeCheck:
    """Run the extracted layer in one interpreter: decorator, zero-code mode and the extension's start."""
    check = RuntimeCheck(runtime, str(interpreter))
    work.mkdir(parents=True, exist_ok=True)
    _check_decorated(opt, runtime, interpreter, work, check)
    _check_zero_code(opt, runtime, interpreter, work, check)
    _check_extension(opt, interpreter, work, check)
    return check


def _report_line(stdout: str) -> dict | None:
    for line in stdout.splitlines():
        if line.startswith("LAYER-VALIDATION "):
            return json.loads(line[len("LAYER-VALIDATION ") :])
    return None


def _measured_lines(data_files: Sequence[str], module_file: str) -> set[int]:
    import coverage

    lines: set[int] = set()
    for data_file in data_files:
        data = coverage.CoverageData(basename=data_file)
        try:
            data.read()
        except coverage.CoverageException:
            continue  # an unreadable file measured nothing; the caller reports the missing lines
        for measured in data.measured_files():
            if measured.endswith("/" + module_file):
                lines |= set(data.lines(measured) or ())
    return lines


def _base_env(**extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/")}
    env.update(extra)
    return env


def _run(command: Sequence[str], work: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=work, env=env, check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, -1, "", "timed out after 120 s")


def _check_decorated(opt: Path, runtime: str, interpreter: Path, work: Path, check: RuntimeCheck) -> None:
    """`@coverage_handler` in an interpreter without site-packages: passthrough, no boto3, a flush, reports."""
    manifest = json.loads((opt / MANIFEST_NAME).read_text(encoding="utf-8"))
    bytecode = "bytecode" if manifest["runtimes"][f"python{runtime}"].get("bytecode") else "source"
    function_dir, stubs, outbox = work / "decorated", work / "stubs", work / "outbox-decorated"
    function_dir.mkdir(parents=True, exist_ok=True)
    (function_dir / "fn_decorated.py").write_text(_FUNCTION_DECORATED)
    for relative, text in _STUBS.items():
        (stubs / relative).parent.mkdir(parents=True, exist_ok=True)
        (stubs / relative).write_text(text)
    done = _run(
        [str(interpreter), "-I", "-S", str(CHECK_DECORATED_SCRIPT), str(opt), str(function_dir), str(stubs), str(outbox), bytecode],
        work,
        _base_env(
            COVERAGE_SOURCE_ROOT=str(function_dir), COVERAGE_OUTBOX_DIR=str(outbox),
            COVERAGE_FLUSH_INVOCATIONS="2", COVERAGE_S3_BUCKET="layer-validation-bucket",
            AWS_LAMBDA_FUNCTION_NAME="layer-validation",
        ),
    )  # fmt: skip
    report = _report_line(done.stdout)
    if report is None:
        check.problems.append(f"decorator run crashed (exit {done.returncode}): {last_line(done.stderr)}")
        return
    check.coverage = report.get("coverage", "")
    check.problems += [f"decorator: {problem}" for problem in report["problems"]]
    if report["flush_files"]:
        lines = _measured_lines(report["flush_files"], "fn_decorated.py")
        if not _DECORATED_BODY_LINES <= lines:
            check.problems.append(f"decorator: handler lines {sorted(_DECORATED_BODY_LINES)} not measured (got {sorted(lines)})")


def _check_zero_code(opt: Path, runtime: str, interpreter: Path, work: Path, check: RuntimeCheck) -> None:
    """The exec wrapper around an imitation of the runtime's bootstrap: the handler module's init is measured."""
    function_dir, outbox = work / "zero_code", work / "outbox-zero-code"
    function_dir.mkdir(parents=True, exist_ok=True)
    (function_dir / "fn.py").write_text(_FUNCTION_ZERO_CODE)
    lambda_path = [function_dir, opt / site_packages(runtime), opt / "python"]  # what Lambda puts on PYTHONPATH
    done = _run(
        [str(opt / EXEC_WRAPPER), str(interpreter), "-s", "-c", _BOOTSTRAP_IMITATION],
        work,
        _base_env(
            _HANDLER="fn.handler", LAMBDA_TASK_ROOT=str(function_dir),
            PYTHONPATH=os.pathsep.join(str(p) for p in lambda_path),
            COVERAGE_SOURCE_ROOT=str(function_dir), COVERAGE_OUTBOX_DIR=str(outbox),
            COVERAGE_FLUSH_INVOCATIONS="1", AWS_LAMBDA_FUNCTION_NAME="layer-validation-zero-code",
        ),
    )  # fmt: skip
    report = _report_line(done.stdout)
    if done.returncode != 0 or report is None:
        check.problems.append(f"zero-code run failed (exit {done.returncode}): {last_line(done.stderr)}")
        return
    if report["result"] != {"greeting": "hello from fn.py", "n": 1}:
        check.problems.append(f"zero-code: unexpected handler result {report['result']!r}")
    if report["_HANDLER"] != "coverage_wrapper.instrument.handler":
        check.problems.append("zero-code: the exec wrapper did not take over _HANDLER")
    lines = _measured_lines([str(p) for p in sorted((outbox / "pending").glob("*.coverage"))], "fn.py")
    if not _ZERO_CODE_MODULE_LINES | _ZERO_CODE_BODY_LINES <= lines:
        check.problems.append(
            f"zero-code: module-level lines {sorted(_ZERO_CODE_MODULE_LINES)} and handler line "
            f"{sorted(_ZERO_CODE_BODY_LINES)} of fn.py should be measured (got {sorted(lines)})"
        )


def _check_extension(opt: Path, interpreter: Path, work: Path, check: RuntimeCheck) -> None:
    """The extension finds coverage_wrapper from the layer and explains that it needs the Extensions API."""
    done = _run([str(interpreter), "-I", "-S", str(opt / EXTENSION)], work, _base_env())
    if done.returncode != 1 or "AWS_LAMBDA_RUNTIME_API is not set" not in done.stdout:
        check.problems.append(
            f"extension did not start from the layer (exit {done.returncode}): {last_line(done.stderr or done.stdout)}"
        )
