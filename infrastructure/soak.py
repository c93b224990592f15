"""`make soak`: the demo and a load test, round after round, while CPU hogs saturate the machine; every failure reported.

Each round starts `--demos` demos and one load test at once, each its own `lambda-coverage` process
with its own emulation, as on a CI runner or a laptop that also runs tests. A run fails when its
process fails: a demo whose pipeline does not go idle (the message names the stuck group), a load
test that finds a raw file outside a manifest or combined data that differs from its raw files.
Everything each run wrote (reports, pipeline log) stays under `--out` for a look afterwards.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

RUN_TIMEOUT_SECONDS = 900


@dataclass
class SoakRun:
    kind: str
    round: int
    seconds: float
    ok: bool
    detail: str
    folder: str


def _hog(stop: Any) -> None:
    """Burn one core until told to stop."""
    while not stop.is_set():
        for _ in range(200_000):
            pass


def _run(kind: str, number: int, round_number: int, out: Path) -> SoakRun:
    folder = out / f"round-{round_number}" / f"{kind}-{number}"
    folder.mkdir(parents=True, exist_ok=True)
    verb = ["demo", "--out", str(folder / "coverage-reports")] if kind == "demo" else ["load-test", "--tier", "quick"]
    began = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "lambda_coverage.cli", *verb], cwd=folder, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_SECONDS)
        ok, output = done.returncode == 0, done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        # TimeoutExpired keeps what was read as bytes, even with text=True
        partial = b"".join(part if isinstance(part, bytes) else (part or "").encode() for part in (expired.stdout, expired.stderr))
        ok, output = False, f"no answer after {RUN_TIMEOUT_SECONDS} s\n{partial.decode(errors='replace')}"
    (folder / "output.txt").write_text(output)
    detail = "" if ok else "\n".join(output.strip().splitlines()[-12:])
    return SoakRun(kind, round_number, round(time.monotonic() - began, 1), ok, detail, str(folder))


def soak(rounds: int, demos: int, hogs: int, out: Path, progress: Callable[[str], None] = print) -> list[SoakRun]:
    """Run the rounds with `hogs` busy processes beside them; every run's outcome."""
    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=_hog, args=(stop,), daemon=True) for _ in range(hogs)]
    for burner in burners:
        burner.start()
    runs: list[SoakRun] = []
    try:
        for round_number in range(1, rounds + 1):
            progress(f"round {round_number}/{rounds}: {demos} demos and a load test at once, {hogs} CPU hogs, load average {os.getloadavg()[0]:.1f}")
            jobs = [("demo", n, round_number) for n in range(1, demos + 1)] + [("load-test", 1, round_number)]
            with ThreadPoolExecutor(len(jobs)) as pool:
                finished = list(pool.map(lambda job: _run(job[0], job[1], job[2], out), jobs))
            for run in finished:
                progress(f"  {run.kind} {'passed' if run.ok else 'FAILED'} in {run.seconds:.0f} s ({run.folder})")
                if not run.ok:
                    progress("    " + run.detail.replace("\n", "\n    "))
            runs += finished
    finally:
        stop.set()
        for burner in burners:
            burner.join(timeout=5)
            if burner.is_alive():
                burner.terminate()
    return runs


def summary(runs: list[SoakRun]) -> dict[str, Any]:
    """Runs and failures, overall and per kind, with median and longest durations."""
    by_kind = {}
    for kind in sorted({run.kind for run in runs}):
        mine = [run for run in runs if run.kind == kind]
        seconds = [run.seconds for run in mine]
        by_kind[kind] = {"runs": len(mine), "failed": sum(not run.ok for run in mine),
                         "median_s": round(statistics.median(seconds), 1), "max_s": max(seconds)}
    return {"runs": len(runs), "failed": sum(not run.ok for run in runs), "by_kind": by_kind}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make soak", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("SOAK_ROUNDS", "3")))
    parser.add_argument("--demos", type=int, default=int(os.environ.get("SOAK_DEMOS", "2")), help="demos at once per round")
    parser.add_argument("--hogs", type=int, default=int(os.environ.get("SOAK_HOGS", str(os.cpu_count() or 2))),
                        help="busy processes beside the runs (default: one per core)")
    parser.add_argument("--out", default="soak-results", help="where each run's reports, pipeline log and output stay")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    runs = soak(args.rounds, args.demos, args.hogs, out, progress=lambda message: print(f"[soak] {message}", flush=True))
    result = {**summary(runs), "rounds": args.rounds, "demos_at_once": args.demos, "cpu_hogs": args.hogs,
              "seconds": round(time.monotonic() - began), "failures": [asdict(run) for run in runs if not run.ok]}
    (out / "summary.json").write_text(json.dumps({**result, "all": [asdict(run) for run in runs]}, indent=1))
    print(json.dumps(result, indent=1))
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
