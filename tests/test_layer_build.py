"""The layer build: zip layout per runtime and architecture, identical bytes on rebuild, validation, deploy without AWS."""

from __future__ import annotations

import ast
import dataclasses
import fcntl
import json
import marshal
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from lambda_coverage import layer
from lambda_coverage.cdk import CoverageInstrumentation
from lambda_coverage.cdk.layer import CoverageLayer, declared_runtime
from lambda_coverage.layer.__main__ import main as layer_cli
from lambda_coverage.layer.build import ZIP_DATE_TIME, build
from lambda_coverage.layer.interpreters import find_interpreter, host_architecture
from lambda_coverage.layer.runtime_checks import check_runtime, extract_as_opt
from lambda_coverage.layer.slim_sources import slim_source
from lambda_coverage.layer.structure import check_structure
from lambda_coverage.layer.wheels import ensure_wheel

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> layer.BuildResult:
    """One build per test run, shared by the xdist workers, into a temporary dist/ with the repository's wheel cache."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if worker_id != "master" else base  # the parent is this run's, common to all workers
    record = shared / "layer-build.json"
    with open(shared / "layer-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            result = build(shared / "layer-dist", layer.DEFAULT_WHEEL_CACHE)
            record.write_text(json.dumps(dataclasses.asdict(result), default=str))
    saved = json.loads(record.read_text())
    zips = [layer.BuiltZip(z["architecture"], Path(z["path"]), z["size"], z["sha256"]) for z in saved["zips"]]
    return layer.BuildResult(saved["version"], zips, saved["without_bytecode"])


def zip_of(built: layer.BuildResult, architecture: str) -> Path:
    return next(z.path for z in built.zips if z.architecture == architecture)


def rewrite_zip(source: Path, target: Path, drop: str = "", mode: dict[str, int] | None = None, replace: dict[str, bytes] | None = None) -> Path:
    """A copy of a layer zip with entries dropped (by prefix), permissions changed or contents replaced."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            if drop and info.filename.startswith(drop):
                continue
            if mode and info.filename in mode:
                info.external_attr = (stat.S_IFREG | mode[info.filename]) << 16
            copy.writestr(info, (replace or {}).get(info.filename, original.read(info)))
    return target


def test_build_writes_one_zip_per_architecture_named_by_version(built):
    version = layer.layer_version()
    assert sorted(z.architecture for z in built.zips) == ["arm64", "x86_64"]
    for z in built.zips:
        assert z.path.name == f"lambda-coverage-layer-{version}-{z.architecture}.zip"
        latest = z.path.with_name(f"lambda-coverage-layer-latest-{z.architecture}.zip")
        assert latest.read_bytes() == z.path.read_bytes()


@pytest.mark.parametrize("architecture, machine", [("x86_64", "x86_64"), ("arm64", "aarch64")])
def test_each_runtime_gets_coverage_from_its_own_wheel_for_the_architecture(built, architecture, machine):
    with zipfile.ZipFile(zip_of(built, architecture)) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("layer-manifest.json"))
    assert manifest["architecture"] == architecture
    assert manifest["compatible_runtimes"] == [f"python{r}" for r in layer.RUNTIMES]
    for runtime in layer.RUNTIMES:
        tag = runtime.replace(".", "")
        site = f"python/lib/python{runtime}/site-packages"
        entry = manifest["runtimes"][f"python{runtime}"]
        assert entry["coverage"] == layer.COVERAGE_PINS[runtime]
        assert f"cp{tag}-cp{tag}-" in entry["wheel"] and machine in entry["wheel"]
        assert f"{site}/coverage/tracer.cpython-{tag}-{machine}-linux-gnu.so" in names
        assert f"{site}/coverage-{entry['coverage']}.dist-info/METADATA" in names
        assert f"{site}/coverage/htmlfiles/style.css" in names  # the HTML reporter keeps its assets
        module = "control.pyc" if entry["coverage_modules"] == "bytecode" else "control.py"
        assert f"{site}/coverage/{module}" in names
    assert manifest["runtimes"]["python3.9"]["coverage"].startswith("7.10.")
    assert manifest["html_reporter_assets"] == "complete"


def test_shared_package_scripts_and_bytecode_for_every_local_runtime(built):
    with zipfile.ZipFile(zip_of(built, "x86_64")) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        manifest = json.loads(archive.read("layer-manifest.json"))
        version_file = archive.read("python/coverage_wrapper/_version.py").decode()
        pyc_headers = {name: archive.read(name)[:8] for name in infos if name.endswith(".pyc")}
    assert f'"{built.version}"' in version_file and manifest["layer_version"] == built.version
    assert "python/coverage_wrapper/instrument.py" in infos
    for script in ("coverage-instrument", "extensions/lambda-coverage-shipper"):
        mode = infos[script].external_attr >> 16
        assert stat.S_ISREG(mode) and mode & 0o777 == 0o755, script
    compiled = [r for r in layer.RUNTIMES if r not in built.without_bytecode]
    assert "%d.%d" % sys.version_info[:2] in compiled
    for runtime in compiled:
        tag = runtime.replace(".", "")
        assert f"python/coverage_wrapper/__pycache__/session.cpython-{tag}.pyc" in infos
        assert f"python/coverage_wrapper/__pycache__/instrument.cpython-{tag}.pyc" in infos
        assert manifest["runtimes"][f"python{runtime}"]["bytecode"] is True
        # the markers core's bytecode only where it measures; elsewhere its source is all there is
        for module in ("markers", "marking"):
            markers_pyc = f"python/coverage_wrapper/__pycache__/{module}.cpython-{tag}.pyc"
            assert (markers_pyc in infos) == (runtime in ("3.12", "3.13")), markers_pyc
    # unchecked-hash pycs: no mtime inside, nothing to re-validate against a read-only /opt
    assert {header[4:8] for header in pyc_headers.values()} == {b"\x01\x00\x00\x00"}
    # the package's bytecode leaves its docstrings out (its sources beside it keep them)
    with zipfile.ZipFile(zip_of(built, "x86_64")) as archive:
        tag = sys.implementation.cache_tag
        session_code = marshal.loads(archive.read(f"python/coverage_wrapper/__pycache__/session.{tag}.pyc")[16:])
        session_source = archive.read("python/coverage_wrapper/session.py").decode()
    docstring = ast.get_docstring(ast.parse(session_source), clean=False)
    assert docstring and docstring not in session_code.co_consts and session_code.co_filename == "/opt/python/coverage_wrapper/session.py"


def test_entries_are_sorted_with_fixed_timestamps_and_permissions(built):
    with zipfile.ZipFile(zip_of(built, "arm64")) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {ZIP_DATE_TIME}
    assert {(i.external_attr >> 16) & 0o777 for i in infos} <= {0o644, 0o755}


def test_every_zip_is_within_the_size_budget(built):
    for z in built.zips:
        assert z.size == z.path.stat().st_size <= layer.MAX_ZIP_BYTES


def test_rebuilding_gives_byte_identical_zips_even_where_a_python314_is_installed(built, tmp_path, monkeypatch):
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "python3.14").symlink_to(sys.executable)  # a `python3.14` on PATH: 3.14 still ships slim sources
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    assert find_interpreter("3.14") == shims / "python3.14"
    again = build(tmp_path / "dist", layer.DEFAULT_WHEEL_CACHE, write_latest=False)
    for first, second in zip(sorted(built.zips, key=lambda z: z.architecture), sorted(again.zips, key=lambda z: z.architecture)):
        assert first.path.read_bytes() == second.path.read_bytes(), first.architecture


def test_validate_passes_the_built_layer_in_every_local_interpreter_and_says_which_it_could_not_run(built, capsys):
    assert layer_cli(["validate", *(str(z.path) for z in built.zips)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert sorted(line for line in printed if line.startswith("structure")) == sorted(
        f"structure  {z.path.name}: ok ({z.size} bytes)" for z in built.zips
    )
    local = [r for r in layer.RUNTIMES if find_interpreter(r) is not None]
    assert "%d.%d" % sys.version_info[:2] in local
    for runtime in layer.RUNTIMES:
        [line] = [line for line in printed if line.startswith(f"  python{runtime}")]
        if runtime in local:
            assert line.endswith(": ok") and f"coverage {layer.COVERAGE_PINS[runtime]}" in line, line
        else:  # python3.14 on these machines: no interpreter can be installed, the zip's structure is what is checked
            assert line == f"  python{runtime}: not run, no local interpreter (its structure is checked above)"
    assert printed[-1] == "make validate: all checks passed"


def test_validate_fails_when_the_exec_wrapper_lost_its_exec_bit(built, tmp_path):
    broken = rewrite_zip(zip_of(built, "x86_64"), tmp_path / "layer.zip", mode={"coverage-instrument": 0o644})
    done = subprocess.run(
        [sys.executable, "-m", "lambda_coverage.layer", "validate", str(broken)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "coverage-instrument is not executable" in done.stdout
    assert "NOT valid" in done.stderr and "Traceback" not in done.stderr


def test_validate_fails_when_a_runtime_has_no_coverage(built, tmp_path):
    broken = rewrite_zip(zip_of(built, "arm64"), tmp_path / "layer.zip", drop="python/lib/python3.11/")
    problems = check_structure(broken)
    assert any(p.startswith("python3.11: coverage.py is missing") for p in problems), problems


def test_validate_fails_when_a_tracer_is_built_for_the_other_architecture(built, tmp_path):
    tracer = "python/lib/python3.12/site-packages/coverage/tracer.cpython-312-{}-linux-gnu.so"
    with zipfile.ZipFile(zip_of(built, "arm64")) as arm:
        arm_tracer = arm.read(tracer.format("aarch64"))
    broken = rewrite_zip(zip_of(built, "x86_64"), tmp_path / "layer.zip", replace={tracer.format("x86_64"): arm_tracer})
    assert any("is not an x86_64 shared object" in p for p in check_structure(broken))


def test_validate_fails_when_a_zip_is_over_budget(built, tmp_path):
    oversized = tmp_path / "layer.zip"
    shutil.copyfile(zip_of(built, "x86_64"), oversized)
    with zipfile.ZipFile(oversized, "a", zipfile.ZIP_STORED) as archive:
        archive.writestr("python/ballast.bin", os.urandom(layer.MAX_ZIP_BYTES))
    assert any("over the budget" in p for p in check_structure(oversized))


def test_runtime_check_reports_a_layer_whose_coverage_cannot_import(built, tmp_path):
    runtime = "%d.%d" % sys.version_info[:2]
    opt = tmp_path / "opt"
    extract_as_opt(zip_of(built, host_architecture() or "x86_64"), opt)
    for name in ("control.pyc", "control.py"):
        (opt / f"python/lib/python{runtime}/site-packages/coverage" / name).unlink(missing_ok=True)
    check = check_runtime(opt, runtime, find_interpreter(runtime), tmp_path / "work")
    assert not check.ok
    assert any("decorator" in p for p in check.problems), check.problems


def test_deploy_without_credentials_says_so_in_one_line_and_fails(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    done = subprocess.run(
        [sys.executable, "-m", "lambda_coverage.layer", "deploy", "--region", "eu-west-1", "--dist", str(tmp_path / "dist")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "no AWS credentials" in done.stderr
    assert not (tmp_path / "dist").exists()  # nothing was built or published


def test_make_deploy_passes_the_region_override():
    done = subprocess.run(["make", "-n", "deploy", "REGION=eu-central-1"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "lambda_coverage.layer deploy --region eu-central-1" in done.stdout


# -- Python 3.14: coverage.py as slim sources, no local interpreter ----------------------------------------


@pytest.mark.parametrize("architecture, machine", [("x86_64", "x86_64"), ("arm64", "aarch64")])
def test_python314_ships_coverage_as_slim_sources_beside_its_cp314_tracer(built, architecture, machine):
    site = "python/lib/python3.14/site-packages"
    with zipfile.ZipFile(zip_of(built, architecture)) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("layer-manifest.json"))
        control = archive.read(f"{site}/coverage/control.py").decode()
        tracer = archive.read(f"{site}/coverage/tracer.cpython-314-{machine}-linux-gnu.so")
    entry = manifest["runtimes"]["python3.14"]
    assert "python3.14" in manifest["compatible_runtimes"]
    assert entry["coverage"] == "7.17.4" == layer.COVERAGE_PINS["3.12"] == layer.COVERAGE_PINS["3.13"]
    assert entry["wheel"].startswith("coverage-7.17.4-cp314-cp314-") and machine in entry["wheel"]
    assert (entry["coverage_modules"], entry["bytecode"]) == ("source", False)
    # what coverage.py's sysmon core needs to measure branches natively on 3.14, importable from sources
    for module in ("__init__", "control", "core", "sysmon", "collector", "sqldata", "parser", "bytecode"):
        assert f"{site}/coverage/{module}.py" in names
    assert not [n for n in names if n.startswith(site + "/") and n.endswith(".pyc")]
    assert "python/coverage_wrapper/__pycache__/session.cpython-314.pyc" not in names
    assert tracer[:4] == b"\x7fELF" and int.from_bytes(tracer[18:20], "little") == layer.ARCHITECTURES[architecture].elf_machine
    # slim: docstrings and comments are gone, every line is where coverage.py has it
    wheel = ensure_wheel(layer.DEFAULT_WHEEL_CACHE, "3.14", layer.ARCHITECTURES[architecture])
    with zipfile.ZipFile(wheel) as original:
        upstream = original.read("coverage/control.py").decode()
    assert len(control) < 0.8 * len(upstream)
    assert control.count("\n") == upstream.count("\n")
    functions, upstream_functions = (
        [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef)] for text in (control, upstream)
    )
    assert [f.lineno for f in functions] == [f.lineno for f in upstream_functions]
    assert ast.get_docstring(ast.parse(control)) is None and {ast.get_docstring(f) for f in functions} == {None}
    assert control.startswith("# Licensed under the Apache License")  # the notice heading each file stays


def test_the_command_line_is_not_shipped_and_every_tracer_has_lost_only_its_debug_sections(built):
    for z in built.zips:
        with zipfile.ZipFile(z.path) as archive:
            names = set(archive.namelist())
            manifest = json.loads(archive.read("layer-manifest.json"))
            tracers = {n: archive.read(n) for n in names if "/coverage/tracer." in n and n.endswith(".so")}
        assert len(tracers) == len(layer.RUNTIMES)
        for runtime in layer.RUNTIMES:
            site = f"python/lib/python{runtime}/site-packages/coverage"
            assert not {f"{site}/cmdline.py", f"{site}/cmdline.pyc", f"{site}/__main__.pyc", f"{site}/execfile.pyc"} & names
            assert "coverage/cmdline.py" in manifest["runtimes"][f"python{runtime}"]["trimmed_from_coverage"]
        for name, data in tracers.items():
            assert b".debug_info" not in data and b".symtab" in data, name  # symbols stay for crash backtraces
            assert data[:4] == b"\x7fELF", name


def test_slim_sources_run_the_layer_in_a_real_interpreter(tmp_path):
    """The path python3.14 takes, taken by this machine's Python: its coverage.py as slim sources, no bytecode."""
    runtime = "%d.%d" % sys.version_info[:2]
    result = build(tmp_path / "dist", layer.DEFAULT_WHEEL_CACHE, write_latest=False, interpreters={runtime: None})
    assert runtime in result.without_bytecode
    host_zip = next(z.path for z in result.zips if z.architecture == (host_architecture() or "x86_64"))
    assert check_structure(host_zip) == []
    opt = tmp_path / "opt"
    extract_as_opt(host_zip, opt)
    assert not list((opt / f"python/lib/python{runtime}/site-packages").rglob("*.pyc"))
    # decorator, zero-code mode and the extension, and HTML/XML/JSON/LCOV reports made with the slim coverage.py
    check = check_runtime(opt, runtime, find_interpreter(runtime), tmp_path / "work")
    assert check.problems == [] and check.coverage == layer.COVERAGE_PINS[runtime]


def test_slimming_keeps_code_and_line_numbers_and_a_syntactically_needed_pass():
    source = (
        '# Licensed under the Apache License\n'
        '"""Module docstring."""\n'
        'import os  # why\n'
        '\n'
        'def only_a_docstring():\n'
        '    """Nothing else."""\n'
        '\n'
        'def one_liner(): """Doc."""; return 1\n'
        '\n'
        'class Spans:\n'
        '    """Two\n'
        '    lines."""  # trailing\n'
        '    value = "# not a comment"\n'
    )
    assert slim_source(source) == (
        '# Licensed under the Apache License\n'
        '\n'
        'import os\n'
        '\n'
        'def only_a_docstring():\n'
        '    pass\n'
        '\n'
        'def one_liner(): pass; return 1\n'
        '\n'
        'class Spans:\n'
        '\n'
        '\n'
        '    value = "# not a comment"\n'
    )


def test_slimming_refuses_what_this_python_cannot_parse():
    with pytest.raises(layer.LayerBuildError, match="broken.py: cannot be slimmed"):
        slim_source("def broken(:\n", "broken.py")


def test_validate_fails_when_a_python314_module_is_damaged_or_its_tracer_missing(built, tmp_path):
    site = "python/lib/python3.14/site-packages/coverage"
    damaged = rewrite_zip(zip_of(built, "arm64"), tmp_path / "damaged.zip", replace={f"{site}/control.py": b"class Coverage(:\n"})
    assert any(p.startswith(f"python3.14: {site}/control.py does not parse") for p in check_structure(damaged))
    no_tracer = rewrite_zip(zip_of(built, "x86_64"), tmp_path / "no-tracer.zip", drop=f"{site}/tracer.cpython-314-")
    assert any("python3.14: coverage.py's C tracer" in p and "is missing" in p for p in check_structure(no_tracer))
    stray = rewrite_zip(zip_of(built, "x86_64"), tmp_path / "stray.zip")
    with zipfile.ZipFile(stray, "a") as archive:
        archive.writestr(f"{site}/control.pyc", b"\x00" * 16)
    assert any("is bytecode of unknown origin" in p for p in check_structure(stray))


# -- CDK: python3.14 functions take the layer ---------------------------------------------------------------


def _python314_function(stack: cdk.Stack, runtime: lambda_.Runtime) -> lambda_.Function:
    return lambda_.Function(
        stack,
        "Orders",
        function_name="orders",
        runtime=runtime,
        architecture=lambda_.Architecture.ARM_64,
        handler="app.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
    )


def test_cdk_attaches_the_layer_to_a_python314_function():
    app = cdk.App()
    stack = cdk.Stack(app, "UserStack")
    coverage_layer = CoverageLayer(stack, "Layer", source="layer_src")
    function = _python314_function(stack, lambda_.Runtime.PYTHON_3_14)
    bucket = s3.Bucket.from_bucket_name(stack, "Coverage", "team-coverage")
    CoverageInstrumentation(stack, "Instrumentation", bucket=bucket, layer=coverage_layer.versions).instrument(function)
    template = Template.from_stack(stack)
    [layer_version] = template.find_resources("AWS::Lambda::LayerVersion").values()
    assert "python3.14" in layer_version["Properties"]["CompatibleRuntimes"]
    [deployed] = template.find_resources("AWS::Lambda::Function").values()
    assert deployed["Properties"]["Runtime"] == "python3.14"
    assert len(deployed["Properties"]["Layers"]) == 1
    assert deployed["Properties"]["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/coverage-instrument"


def test_cdk_without_a_python314_constant_declares_it_as_newer_aws_cdk_lib_does():
    assert declared_runtime("3.14").runtime_equals(lambda_.Runtime.PYTHON_3_14)
    app = cdk.App()
    stack = cdk.Stack(app, "OlderCdk")
    coverage_layer = CoverageLayer(stack, "Layer", source="layer_src")
    # a function declared by hand the same way, as a user of an older aws-cdk-lib would
    function = _python314_function(stack, lambda_.Runtime("python3.14", lambda_.RuntimeFamily.PYTHON, supports_inline_code=True))
    function.add_layers(coverage_layer.versions["arm64"])  # raises IncompatibleLayerRuntime unless the layer lists it
    assert Template.from_stack(stack).find_resources("AWS::Lambda::Function")


def test_instrumenting_a_function_on_a_runtime_the_layer_does_not_serve_is_refused():
    app = cdk.App()
    stack = cdk.Stack(app, "UserStack")
    arn = "arn:aws:lambda:eu-west-1:111122223333:layer:lambda-coverage-layer-arm64:3"
    published = lambda_.LayerVersion.from_layer_version_arn(stack, "Published", arn)  # CDK knows no runtimes of it
    bucket = s3.Bucket.from_bucket_name(stack, "Coverage", "team-coverage")
    instrumentation = CoverageInstrumentation(stack, "Instrumentation", bucket=bucket, layer=published)
    function = _python314_function(stack, lambda_.Runtime.PYTHON_3_8)
    with pytest.raises(ValueError, match=r"UserStack/Orders runs python3\.8; the coverage layer serves python3\.9, .*python3\.14"):
        instrumentation.instrument(function)
