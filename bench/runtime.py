"""The layer inside a function process: warm invocations, cold start, RSS and flush cost, one worker process per run."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
WORKER = BENCH_DIR / "worker.py"
INSTRUMENT = REPO / "layer_src" / "coverage-instrument"
VENVS = REPO / "build" / "bench-venvs"
# The built layer ships pycs, and site-packages has them: the benchmark's layer sources get theirs
# here (outside the tree) so no variant pays for compiling at cold start.
PYCACHE = REPO / "build" / "bench-pycache"
SHAPES = ("cpu", "io", "tiny")


@dataclass(frozen=True)
class Plan:
    """How much to run: processes per variant and invocations per process."""

    repeats: int
    invocations: dict[str, int]
    seed_invocations: int
    flushes: int
    branch_on_sysmon_pythons: bool

    @classmethod
    def for_run(cls, quick: bool) -> "Plan":
        if quick:
            return cls(2, {"cpu": 300, "io": 100, "tiny": 3000}, 8, 8, False)
        return cls(4, {"cpu": 1500, "io": 400, "tiny": 20000}, 30, 15, True)


def interpreters() -> dict[str, str]:
    """The venv's Python plus pyenv's 3.12 and 3.13, each in a small venv with coverage.py (made once)."""
    found = {"%d.%d" % sys.version_info[:2]: sys.executable}
    root = ""
    with contextlib.suppress(OSError):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    for version in ("3.12", "3.13"):
        venv = VENVS / f"py{version}"
        python = venv / "bin" / "python"
        if not python.exists():
            candidates = sorted(Path(root, "versions").glob(f"{version}.*")) if root else []
            if not candidates:
                continue
            subprocess.run([str(candidates[-1] / "bin" / "python"), "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "coverage"], check=True)
        found[version] = str(python)
    return found


def sysmon_python(version: str) -> bool:
    return tuple(map(int, version.split("."))) >= (3, 12)


def precompile(pythons: dict[str, str]) -> None:
    """Bytecode for the layer and the handlers in every interpreter, as the built layer ships it."""
    for python in pythons.values():
        subprocess.run([python, "-m", "compileall", "-q", str(REPO / "layer_src" / "coverage_wrapper"), str(BENCH_DIR / "handlers.py")],
                       env=dict(os.environ, PYTHONPYCACHEPREFIX=str(PYCACHE)), check=True, capture_output=True)


def variants_for(version: str, plan: Plan) -> list[tuple[str, str, dict[str, str]]]:
    """(label, worker variant, extra environment) for one Python: what is measured and with which core."""
    line_core = "sysmon" if sysmon_python(version) else "ctrace"
    chosen = [
        ("bare", "bare", {}),
        ("layer-line", "layer", {"COVERAGE_BRANCH_COVERAGE": "false"}),
        ("plain", "plain", {"COVERAGE_BRANCH_COVERAGE": "false", "COVERAGE_CORE": line_core}),
        ("seed", "seed", {}),
    ]
    # Branch coverage before 3.14 always runs on the C tracer; on 3.12+ it repeats the 3.11 story.
    if not sysmon_python(version) or plan.branch_on_sysmon_pythons:
        chosen.insert(2, ("layer-branch", "layer", {"COVERAGE_BRANCH_COVERAGE": "true"}))
    return chosen


def worker_environment(outbox: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "AWS_", "_HANDLER", "PYTHONDONTWRITEBYTECODE"))}
    env.update(
        PYTHONPATH=str(REPO / "layer_src"),
        PYTHONPYCACHEPREFIX=str(PYCACHE),
        COVERAGE_SOURCE_ROOT=str(BENCH_DIR),
        COVERAGE_INCLUDE_PATTERNS="handlers.py",  # the handler only, like plain coverage.py's include
        COVERAGE_OUTBOX_DIR=outbox,
        COVERAGE_S3_BUCKET="bench-bucket",
        COVERAGE_LOG_LEVEL="ERROR",
    )
    env.update(extra)
    return env


def run_worker(python: str, variant: str, shape: str, invocations: int, env: dict[str, str], flushes: int = 0) -> dict:
    """One process; adds `cold_ms`: from spawn to the end of the first invocation, on the shared monotonic clock."""
    command = [python, str(WORKER), variant, shape, str(invocations), str(flushes)]
    if variant == "zero":
        # As Lambda runs it: the exec wrapper in front of the runtime, the layer found by the wrapper.
        env = dict(env, _HANDLER=f"handlers.{shape}", PYTHONPATH=str(BENCH_DIR))
        command = [str(INSTRUMENT), *command]
    spawned = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=str(BENCH_DIR))
    if done.returncode != 0:
        raise RuntimeError(f"bench worker {variant}/{shape} failed: {done.stderr[-2000:]}")
    # The layer's own JSON log lines (at exit, say) may share stdout: take the worker's line.
    record = json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith('{"samples_us"')))
    record["cold_ms"] = (record.pop("first_done") - spawned) * 1000
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
    """Every run as a record: python, shape, variant, per-process median µs, cold ms, RSS, flush costs.

    Repeats are the outer loop so a burst of load from other work on the machine hits every variant
    alike instead of one variant's processes.
    """
    import statistics

    runs: list[dict] = []
    pythons = interpreters()
    precompile(pythons)
    own = "%d.%d" % sys.version_info[:2]
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as scratch, moto_s3() as s3_env:
        extension_outbox = os.path.join(scratch, "extension")
        os.makedirs(extension_outbox)
        # An extension is "running" (this process): flushes only write the outbox, as on Lambda.
        Path(extension_outbox, "extension.json").write_text(json.dumps({"pid": os.getpid()}))
        for repeat in range(plan.repeats):
            progress(f"  runtime: round {repeat + 1} of {plan.repeats}")
            for version, python in pythons.items():
                for shape in SHAPES:
                    chosen = variants_for(version, plan)
                    if shape == "tiny":  # cold start and RSS: zero-code mode beside the decorator
                        chosen.append(("zero-line", "zero", {"COVERAGE_BRANCH_COVERAGE": "false"}))
                    for label, variant, extra in chosen:
                        count = plan.seed_invocations if variant == "seed" else plan.invocations[shape]
                        flushes = plan.flushes if (label == "layer-line" and shape == "cpu") else 0
                        record = run_worker(python, variant, shape, count, worker_environment(extension_outbox, extra), flushes)
                        record.update(python=version, shape=shape, variant=label, flush_mode="extension")
                        record["median_us"] = statistics.median(record.pop("samples_us"))
                        runs.append(record)
                if version == own:
                    # No extension: the in-process fallback thread uploads to a real (moto) S3 endpoint.
                    # Only this venv has botocore; the fallback is the local-run path anyway.
                    outbox = os.path.join(scratch, f"fallback-{repeat}")
                    env = worker_environment(outbox, {"COVERAGE_BRANCH_COVERAGE": "false", **s3_env})
                    record = run_worker(python, "layer", "cpu", plan.invocations["cpu"], env, plan.flushes)
                    record.update(python=version, shape="cpu", variant="layer-line", flush_mode="fallback")
                    record["median_us"] = statistics.median(record.pop("samples_us"))
                    runs.append(record)
    return runs
