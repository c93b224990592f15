"""The layer inside a function process: warm invocations, cold start, RSS and flush cost, one worker process per run."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
WORKER = BENCH_DIR / "worker.py"
INSTRUMENT = REPO / "layer_src" / "coverage-instrument"
VENVS = REPO / "build" / "bench-venvs"
# The built layer ships pycs, and site-packages has them: the benchmark's layer sources get theirs
# here (outside the tree) so no variant pays for compiling at cold start.
PYCACHE = REPO / "build" / "bench-pycache"
SHAPES = ("cpu", "io", "tiny", "powertools")
HANDLER_SPECS = {"cpu": "handlers.cpu", "io": "handlers.io", "tiny": "handlers.tiny", "powertools": "rest_api.handler", "package": "app.handler"}


@dataclass(frozen=True)
class Plan:
    """How much to run: processes per variant, invocations per process, and the cold-start package's size."""

    repeats: int
    invocations: dict[str, int]
    seed_invocations: int
    flushes: int
    package_repeats: int
    package_modules: int = 40
    contexts_repeats: int = 3
    contexts_invocations: dict[str, int] = field(default_factory=lambda: {"cpu": 500, "powertools": 2000})

    @classmethod
    def for_run(cls, quick: bool) -> Plan:
        if quick:
            return cls(2, {"cpu": 300, "io": 100, "tiny": 3000, "powertools": 1500, "package": 10}, 8, 6, 2,  # about 2 minutes
                       contexts_repeats=1, contexts_invocations={"cpu": 200, "powertools": 600})
        return cls(4, {"cpu": 1000, "io": 150, "tiny": 10000, "powertools": 4000, "package": 30}, 30, 15, 5,
                   contexts_repeats=3, contexts_invocations={"cpu": 500, "powertools": 2000})


def venv_requirements(version: str) -> list[str]:
    """What a bench venv holds: the coverage.py the layer ships for that Python, and this venv's Powertools and
    runtime interface client (the worker loads and runs handlers with awslambdaric's own loop)."""
    from importlib.metadata import version as installed

    from lambda_coverage.layer.layout import COVERAGE_PINS

    return [f"coverage=={COVERAGE_PINS[version]}", f"aws-lambda-powertools=={installed('aws-lambda-powertools')}",
            f"awslambdaric=={installed('awslambdaric')}"]


def interpreters() -> dict[str, str]:
    """The venv's Python plus pyenv's 3.12 and 3.13, each in a small venv with coverage.py and Powertools (made once)."""
    found = {"%d.%d" % sys.version_info[:2]: sys.executable}
    root = ""
    with contextlib.suppress(OSError):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    for version in ("3.12", "3.13"):
        venv = VENVS / f"py{version}"
        python = venv / "bin" / "python"
        requirements = venv_requirements(version)
        stamp = venv / "bench-requirements.txt"
        if not python.exists():
            candidates = sorted(Path(root, "versions").glob(f"{version}.*")) if root else []
            if not candidates:
                continue
            subprocess.run([str(candidates[-1] / "bin" / "python"), "-m", "venv", str(venv)], check=True)
        if not stamp.exists() or stamp.read_text().split() != requirements:
            subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
            stamp.write_text("\n".join(requirements) + "\n")
        found[version] = str(python)
    return found


def sysmon_python(version: str) -> bool:
    return tuple(map(int, version.split("."))) >= (3, 12)


def markers_python(version: str) -> bool:
    """Where the layer's default for branch coverage is its `markers` core (see config.best_core)."""
    return (3, 12) <= tuple(map(int, version.split("."))) < (3, 14)


def precompile(pythons: dict[str, str], *paths: Path) -> None:
    """Bytecode for the layer, the handlers and `paths` in every interpreter, as a built layer and a deployment package ship it."""
    targets = [REPO / "layer_src" / "coverage_wrapper", BENCH_DIR / "handlers.py", BENCH_DIR / "rest_api.py", BENCH_DIR / "traffic.py",
               BENCH_DIR / "decorated.py", *paths]
    for python in pythons.values():
        subprocess.run([python, "-m", "compileall", "-q", *map(str, targets)],
                       env=dict(os.environ, PYTHONPYCACHEPREFIX=str(PYCACHE)), check=True, capture_output=True)


def variants_for(version: str) -> list[tuple[str, str, dict[str, str]]]:
    """(label, worker variant, extra environment) of the warm comparison on one Python.

    `default` sets nothing, as a new user would: branch coverage on, the core the layer picks; with
    the decorator (the handler's module was imported before measuring began) and in zero-code mode
    (measuring began before the handler's module was imported).
    """
    chosen: list[tuple[str, str, dict[str, str]]] = [("bare", "bare", {}), ("default", "layer", {}), ("zero-default", "zero", {})]
    if markers_python(version):  # elsewhere ctrace is the default already
        chosen.append(("ctrace-branch", "layer", {"COVERAGE_CORE": "ctrace"}))
    if sysmon_python(version):
        chosen.append(("sysmon-line", "layer", {"COVERAGE_BRANCH_COVERAGE": "false", "COVERAGE_CORE": "sysmon"}))
    return chosen


# Also measured in one process against an unmeasured copy of the handler (3.12+: markers and sysmon).
IN_PROCESS = ("default", "zero-default", "sysmon-line")

# Cold start and RSS of the tiny handler: the floor beside the default; the seed for the cost model.
TINY_EXTRAS: list[tuple[str, str, dict[str, str]]] = [("floor", "plain", {}), ("seed", "seed", {})]

# Cold start with the generated package as the function's own code, measured as a whole (no include patterns).
PACKAGE_VARIANTS: list[tuple[str, str, dict[str, str]]] = [
    ("bare", "bare", {}),
    ("bare-no-pyc", "bare", {}),
    ("floor", "plain", {}),
    ("default", "layer", {}),
    ("zero-default", "zero", {}),
    ("marked", "layer", {}),  # the package built with `lambda-coverage mark`
    ("zero-marked", "zero", {}),
    ("ctrace-branch", "layer", {"COVERAGE_CORE": "ctrace"}),
    ("zero-ctrace-branch", "zero", {"COVERAGE_CORE": "ctrace"}),
]


def worker_environment(outbox: str, extra: dict[str, str], code_dir: Path = BENCH_DIR, include: str = "handlers.py,rest_api.py") -> dict[str, str]:
    """A worker's environment: this layer on the path, an outbox an extension drains, the source root `code_dir`.

    `include` names the measured files as COVERAGE_INCLUDE_PATTERNS; empty measures all of `code_dir`.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "AWS_", "_HANDLER", "PYTHONDONTWRITEBYTECODE", "BENCH_"))}
    env.update(
        PYTHONPATH=str(REPO / "layer_src"),
        PYTHONPYCACHEPREFIX=str(PYCACHE),
        BENCH_CODE_DIR=str(code_dir),
        COVERAGE_SOURCE_ROOT=str(code_dir),
        COVERAGE_OUTBOX_DIR=outbox,
        COVERAGE_S3_BUCKET="bench-bucket",
        COVERAGE_LOG_LEVEL="ERROR",
    )
    if include:
        env["COVERAGE_INCLUDE_PATTERNS"] = include  # the handler only, like plain coverage.py's include
    env.update(extra)
    return env


def run_worker(python: str, variant: str, shape: str, invocations: int, env: dict[str, str], flushes: int = 0) -> dict:
    """One process; adds `cold_ms`: from spawn to the end of the first invocation, on the shared monotonic clock."""
    command = [python, str(WORKER), variant, shape, str(invocations), str(flushes)]
    if variant == "zero":
        # As Lambda runs it: the exec wrapper in front of the runtime, the layer on the path as /opt/python is.
        env = dict(env, _HANDLER=HANDLER_SPECS[shape], PYTHONPATH=os.pathsep.join([env["BENCH_CODE_DIR"], str(REPO / "layer_src")]))
        command = [str(INSTRUMENT), *command]
    spawned = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=env["BENCH_CODE_DIR"])
    if done.returncode != 0:
        raise RuntimeError(f"bench worker {variant}/{shape} failed: {done.stderr[-2000:]}")
    # The layer's own JSON log lines (at exit, say) may share stdout: take the worker's line.
    record = json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith('{"samples_us"')))
    record["cold_ms"] = (record.pop("first_done") - spawned) * 1000
    samples = record.pop("samples_us")
    record["median_us"] = statistics.median(samples)
    record["mean_us"] = statistics.fmean(samples)  # with the invocations that flushed by policy
    record["between_us"] = statistics.median(record["between_us"])  # asking for the next invocation, after the response
    return record


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def moto_s3() -> Iterator[dict[str, str]]:
    """A moto S3 server on a free loopback port with a bucket; the environment that points a worker at it."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access-log line per upload
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "COVERAGE_S3_BUCKET": "bench-fallback",
    }
    try:
        import boto3

        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket="bench-fallback")
        yield env
    finally:
        server.stop()


def measure(plan: Plan, progress=print) -> list[dict]:
    """Every warm run as a record: python, shape, variant, core, per-process median µs, cold ms, RSS, flush costs.

    Repeats are the outer loop so a burst of load from other work on the machine hits every variant
    alike instead of one variant's processes; within a round a shape's variants run back to back.
    """
    runs: list[dict] = []
    pythons = interpreters()
    own = "%d.%d" % sys.version_info[:2]
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as scratch, moto_s3() as s3_env:
        extension_outbox = extension_present(os.path.join(scratch, "extension"))
        bare_copy = copy_handlers(pythons, Path(scratch, "bare-copy"))
        first = -1 if needs_warm_up(pythons, "runtime") else 0
        for repeat in range(first, plan.repeats):
            warm_up = repeat < 0  # every process once, discarded: bytecode for what each variant imports
            progress("  runtime: warm-up" if warm_up else f"  runtime: round {repeat + 1} of {plan.repeats}")
            for version, python in pythons.items():
                for shape in SHAPES:
                    chosen = variants_for(version) + (TINY_EXTRAS if shape == "tiny" else [])
                    for label, variant, extra in chosen:
                        count = 1 if warm_up else plan.seed_invocations if variant == "seed" else plan.invocations[shape]
                        flushes = plan.flushes if (label == "default" and shape == "cpu") else 0
                        env = worker_environment(extension_outbox, extra)
                        if label in IN_PROCESS and sysmon_python(version):  # cores that leave unmeasured code alone
                            env["BENCH_BARE_COPY"] = str(bare_copy)
                        record = run_worker(python, variant, shape, count, env, min(flushes, count))
                        record.update(python=version, shape=shape, variant=label, flush_mode="extension", round=repeat)
                        runs.append(record)
                if version == own:
                    # No extension: the in-process fallback thread uploads to a real (moto) S3 endpoint.
                    # Only this venv has botocore; the fallback is the local-run path anyway.
                    env = worker_environment(os.path.join(scratch, f"fallback-{repeat}"), s3_env)
                    count = 1 if warm_up else plan.invocations["cpu"]
                    record = run_worker(python, "layer", "cpu", count, env, min(plan.flushes, count))
                    record.update(python=version, shape="cpu", variant="default", flush_mode="fallback", round=repeat)
                    runs.append(record)
        shutil.rmtree(PYCACHE / bare_copy.relative_to(bare_copy.anchor), ignore_errors=True)  # a new temp path each run
    warmed(pythons, "runtime")
    return [r for r in runs if r["round"] >= 0]


def copy_handlers(pythons: dict[str, str], bare_copy: Path) -> Path:
    """An unmeasured copy of the handler modules in `bare_copy` (outside the source root), precompiled."""
    bare_copy.mkdir()
    for name in ("handlers.py", "rest_api.py"):
        shutil.copyfile(BENCH_DIR / name, bare_copy / name)
    precompile(pythons, bare_copy)
    return bare_copy


# COVERAGE_CONTEXTS on the default core with the decorator, on the handlers that serve a mix of REST routes.
CONTEXT_SHAPES = ("powertools", "cpu")
CONTEXTS_SAMPLE_RATE = 0.1
CONTEXT_VARIANTS: list[tuple[str, dict[str, str]]] = [
    ("off", {}),
    ("route", {"COVERAGE_CONTEXTS": "route"}),
    ("route-sampled", {"COVERAGE_CONTEXTS": "route", "COVERAGE_CONTEXTS_SAMPLE_RATE": str(CONTEXTS_SAMPLE_RATE)}),
]
TRAFFIC_REQUESTS = 1000  # distinct requests (bench/traffic.py), taken in turn


def measure_contexts(plan: Plan, progress=print) -> list[dict]:
    """The warm cost of COVERAGE_CONTEXTS: each configuration in its own process, against an unmeasured copy of
    the handler in that process (worker.py's alternating blocks), every request one of a seeded mix of routes.

    On a Python whose default core is a tracer (`ctrace` before 3.12, some 2–8× slower on these handlers),
    a quarter of the invocations keeps the section's time.
    """
    runs: list[dict] = []
    pythons = interpreters()
    with tempfile.TemporaryDirectory(prefix="bench-contexts-") as scratch:
        outbox = extension_present(os.path.join(scratch, "extension"))
        bare_copy = copy_handlers(pythons, Path(scratch, "bare-copy"))
        for repeat in range(-1 if needs_warm_up(pythons, "contexts") else 0, plan.contexts_repeats):
            warm_up = repeat < 0
            progress("  contexts: warm-up" if warm_up else f"  contexts: round {repeat + 1} of {plan.contexts_repeats}")
            for version, python in pythons.items():
                for shape in CONTEXT_SHAPES:
                    count = plan.contexts_invocations[shape] // (1 if markers_python(version) else 4)
                    for label, extra in CONTEXT_VARIANTS:
                        env = worker_environment(outbox, dict(extra, BENCH_TRAFFIC=str(TRAFFIC_REQUESTS), BENCH_BARE_COPY=str(bare_copy)))
                        record = run_worker(python, "layer", shape, 1 if warm_up else count, env)
                        record.update(python=version, shape=shape, variant=label, round=repeat)
                        runs.append(record)
        shutil.rmtree(PYCACHE / bare_copy.relative_to(bare_copy.anchor), ignore_errors=True)  # a new temp path each run
    warmed(pythons, "contexts")
    return [r for r in runs if r["round"] >= 0]


def _warm_stamp(python: str, section: str) -> Path:
    return PYCACHE / f".warmed-{section}-{hashlib.sha256(python.encode()).hexdigest()[:12]}"


def needs_warm_up(pythons: dict[str, str], section: str) -> bool:
    """Whether a section's processes have not yet run once with these interpreters (so the bytecode cache
    under PYCACHE lacks what they import: the standard library, Powertools, coverage.py)."""
    return not all(_warm_stamp(python, section).exists() for python in pythons.values())


def warmed(pythons: dict[str, str], section: str) -> None:
    for python in pythons.values():
        _warm_stamp(python, section).touch()


def extension_present(outbox: str) -> str:
    """An outbox an extension (this process) drains: flushes only write the outbox, as on Lambda."""
    os.makedirs(outbox, exist_ok=True)
    Path(outbox, "extension.json").write_text(json.dumps({"pid": os.getpid()}))
    return outbox


def measure_package(plan: Plan, progress=print) -> tuple[dict, list[dict]]:
    """Cold start, first flush and RSS with a generated package as the function's own code, on the markers Pythons.

    The package is written once per run (deterministic) and precompiled like the handlers; a second
    copy gets no bytecode at all, as a deployment package built without `__pycache__`; a third is also
    marked with `lambda-coverage mark`, as a package built with it.
    """
    from . import codebase

    pythons = {v: p for v, p in interpreters().items() if markers_python(v)}
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-package-") as scratch:
        code_dir, bare_copy, marked_copy = Path(scratch, "function"), Path(scratch, "function-no-pyc"), Path(scratch, "function-marked")
        size = codebase.write(code_dir, plan.package_modules)
        for root in (code_dir, bare_copy, marked_copy):
            if root is not code_dir:
                codebase.write(root, plan.package_modules)
            Path(root, "events.json").write_text(json.dumps(codebase.events(plan.invocations["package"] + 1)))
        precompile(pythons, code_dir, marked_copy)
        cli = Path(sys.executable).with_name("lambda-coverage")
        for python in pythons.values():
            subprocess.run([str(cli), "mark", str(marked_copy), "--python", python],
                           env=dict(os.environ, PYTHONPYCACHEPREFIX=str(PYCACHE)), check=True, capture_output=True)
        outbox = extension_present(os.path.join(scratch, "outbox"))
        for repeat in range(-1 if needs_warm_up(pythons, "package") else 0, plan.package_repeats):
            progress("  package cold start: warm-up" if repeat < 0 else f"  package cold start: round {repeat + 1} of {plan.package_repeats}")
            for version, python in pythons.items():
                for label, variant, extra in PACKAGE_VARIANTS:
                    root = {"bare-no-pyc": bare_copy, "marked": marked_copy, "zero-marked": marked_copy}.get(label, code_dir)
                    env = worker_environment(outbox, extra, code_dir=root, include="")
                    if label == "bare-no-pyc":
                        env["PYTHONDONTWRITEBYTECODE"] = "1"  # the interpreter's own pycs still load
                    flushes = 2 if variant in ("layer", "zero") else 0
                    record = run_worker(python, variant, "package", plan.invocations["package"], env, flushes)
                    record.update(python=version, shape="package", variant=label, round=repeat)
                    runs.append(record)
        shutil.rmtree(PYCACHE / Path(scratch).relative_to(Path(scratch).anchor), ignore_errors=True)  # a new temp path each run
    warmed(pythons, "package")
    return size, [r for r in runs if r["round"] >= 0]
