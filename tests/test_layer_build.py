"""The layer build: zip layout per runtime and architecture, identical bytes on rebuild, validation, deploy without AWS."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infrastructure import layer
from infrastructure.layer.build import ZIP_DATE_TIME, build
from infrastructure.layer.validate import validate
from infrastructure.layer.interpreters import find_interpreter, host_architecture
from infrastructure.layer.runtime_checks import check_runtime, extract_as_opt
from infrastructure.layer.structure import check_structure

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
    assert "python/coverage_wrapper/boot/sitecustomize.py" in infos
    for script in ("coverage-instrument", "extensions/lambda-coverage-shipper"):
        mode = infos[script].external_attr >> 16
        assert stat.S_ISREG(mode) and mode & 0o777 == 0o755, script
    compiled = [r for r in layer.RUNTIMES if r not in built.without_bytecode]
    assert "%d.%d" % sys.version_info[:2] in compiled
    for runtime in compiled:
        tag = runtime.replace(".", "")
        assert f"python/coverage_wrapper/__pycache__/session.cpython-{tag}.pyc" in infos
        assert f"python/coverage_wrapper/boot/__pycache__/sitecustomize.cpython-{tag}.pyc" in infos
        assert manifest["runtimes"][f"python{runtime}"]["bytecode"] is True
    # unchecked-hash pycs: no mtime inside, nothing to re-validate against a read-only /opt
    assert {header[4:8] for header in pyc_headers.values()} == {b"\x01\x00\x00\x00"}


def test_entries_are_sorted_with_fixed_timestamps_and_permissions(built):
    with zipfile.ZipFile(zip_of(built, "arm64")) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {ZIP_DATE_TIME}
    assert {(i.external_attr >> 16) & 0o777 for i in infos} <= {0o644, 0o755}


def test_every_zip_is_within_the_size_budget(built):
    for z in built.zips:
        assert z.size == z.path.stat().st_size <= layer.MAX_ZIP_BYTES


def test_rebuilding_gives_byte_identical_zips(built, tmp_path):
    again = build(tmp_path / "dist", layer.DEFAULT_WHEEL_CACHE, write_latest=False)
    for first, second in zip(sorted(built.zips, key=lambda z: z.architecture), sorted(again.zips, key=lambda z: z.architecture)):
        assert first.path.read_bytes() == second.path.read_bytes(), first.architecture


def test_validate_passes_the_built_layer_in_every_local_interpreter(built):
    report = validate([z.path for z in built.zips])
    assert report.structure == {str(z.path): [] for z in built.zips}
    assert report.runtime_checks, "the running interpreter at least must have run the layer"
    assert [(c.runtime, c.problems) for c in report.runtime_checks if c.problems] == []
    assert {c.runtime for c in report.runtime_checks} | set(report.missing_interpreters) == set(layer.RUNTIMES)
    assert report.ok


def test_validate_fails_when_the_exec_wrapper_lost_its_exec_bit(built, tmp_path):
    broken = rewrite_zip(zip_of(built, "x86_64"), tmp_path / "layer.zip", mode={"coverage-instrument": 0o644})
    done = subprocess.run(
        [sys.executable, "-m", "infrastructure.layer", "validate", str(broken)],
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
        [sys.executable, "-m", "infrastructure.layer", "deploy", "--region", "eu-west-1", "--dist", str(tmp_path / "dist")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "no AWS credentials" in done.stderr
    assert not (tmp_path / "dist").exists()  # nothing was built or published


def test_make_deploy_passes_the_region_override():
    done = subprocess.run(["make", "-n", "deploy", "REGION=eu-central-1"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "infrastructure.layer deploy --region eu-central-1" in done.stdout
