"""`make bench`: run the layer benchmarks side by side and write BENCHMARKS.md.

Every figure is a ratio to the bare handler (or to the coverage.py floor) measured in the same run,
on the same machine, so machine noise mostly cancels out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "worker.py"
VENVS = REPO / "build" / "bench-venvs"
SHAPES = ("cpu", "io", "tiny")
GOALS = {"warm_line_312": 1.05, "cold_vs_floor": 1.2, "rss_mb": 15.0, "flush_ms": 5.0}


def interpreters() -> dict[str, str]:
    """The venv's Python plus pyenv's 3.12 and 3.13 (each in a small venv with coverage.py)."""
    found = {"%d.%d" % sys.version_info[:2]: sys.executable}
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip() if _has("pyenv") else ""
    for version in ("3.12", "3.13"):
        candidates = sorted(Path(root, "versions").glob(f"{version}.*")) if root else []
        if not candidates:
            continue
        venv = VENVS / f"py{version}"
        python = venv / "bin" / "python"
        if not python.exists():
            subprocess.run([str(candidates[-1] / "bin" / "python"), "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "coverage"], check=True)
        found[version] = str(python)
    return found


def _has(command: str) -> bool:
    return subprocess.run(["sh", "-c", f"command -v {command}"], capture_output=True).returncode == 0


def run_worker(python: str, variant: str, shape: str, invocations: int, env_extra: dict[str, str], outbox: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env.update(
        PYTHONPATH=str(REPO / "layer_src"),
        COVERAGE_SOURCE_ROOT=str(WORKER.parent),
        COVERAGE_OUTBOX_DIR=outbox,
        COVERAGE_S3_BUCKET="bench-bucket",
        COVERAGE_LOG_LEVEL="ERROR",
    )
    env.update(env_extra)
    done = subprocess.run([python, str(WORKER), variant, shape, str(invocations)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"median": statistics.median(ordered), "p10": ordered[len(ordered) // 10], "p90": ordered[(len(ordered) * 9) // 10]}


def measure(quick: bool) -> dict:
    repeats, invocations = (3, 300) if quick else (7, 2000)
    results: dict = {"runs": []}
    with tempfile.TemporaryDirectory() as scratch:
        outbox = os.path.join(scratch, "outbox")
        os.makedirs(outbox)
        # An extension is "running" (this process): flushes only write the outbox, as on Lambda.
        Path(outbox, "extension.json").write_text(json.dumps({"pid": os.getpid()}))
        for version, python in interpreters().items():
            layer_variants = {"layer-branch": {}, "layer-line": {"COVERAGE_BRANCH_COVERAGE": "false"}}
            for shape in SHAPES:
                # plain coverage.py gets the core the layer picks for line coverage: the fair floor
                plain_core = "sysmon" if tuple(map(int, version.split("."))) >= (3, 12) else "ctrace"
                plain = {"COVERAGE_BRANCH_COVERAGE": "false", "COVERAGE_CORE": plain_core}
                for variant, extra in [("bare", {}), *[("layer", e) for e in layer_variants.values()], ("seed", {}), ("plain", plain)]:
                    label = variant if variant != "layer" else ("layer-line" if extra else "layer-branch")
                    count = min(invocations, 40) if variant == "seed" else invocations  # 10-25 ms each
                    for _ in range(repeats):
                        record = run_worker(python, variant, shape, count, extra, outbox)
                        record.update(python=version, shape=shape, variant=label)
                        record["median_us"] = statistics.median(record.pop("samples_us"))
                        results["runs"].append(record)
    return results


def table(results: dict) -> tuple[str, dict]:
    runs = results["runs"]
    findings: dict = {}
    lines = ["| Python | handler | variant | core | median µs/invocation (p10–p90 of runs) | ratio to bare |", "| --- | --- | --- | --- | --- | --- |"]
    for version in sorted({r["python"] for r in runs}):
        for shape in SHAPES:
            group = [r for r in runs if r["python"] == version and r["shape"] == shape]
            bare = statistics.median(r["median_us"] for r in group if r["variant"] == "bare")
            for variant in ("bare", "layer-line", "layer-branch", "plain", "seed"):
                chosen = [r for r in group if r["variant"] == variant]
                stats = summarize([r["median_us"] for r in chosen])
                ratio = stats["median"] / bare
                core = chosen[0]["core"] if variant in ("layer-line", "layer-branch", "plain") else ""
                findings[(version, shape, variant)] = ratio
                lines.append(f"| {version} | {shape} | {variant} | {core} | {stats['median']:.1f} ({stats['p10']:.1f}–{stats['p90']:.1f}) | {ratio:.3f}× |")
            findings[(version, shape, "layer-over-plain")] = findings[(version, shape, "layer-line")] / findings[(version, shape, "plain")]
    return "\n".join(lines), findings


def cold_and_memory(results: dict) -> tuple[str, dict]:
    runs = results["runs"]
    lines = ["| Python | bare import + 1st call (ms) | floor: + import coverage + start (ms) | layer (ms) | layer added ÷ floor added | RSS added by the layer (MB) | flush with new data (ms, median / p90) | AWS SDK loaded in function |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    findings = {}
    for version in sorted({r["python"] for r in runs}):
        tiny = [r for r in runs if r["python"] == version and r["shape"] == "tiny"]
        cold = {v: statistics.median(r["cold_ms"] for r in tiny if r["variant"] == v) for v in ("bare", "plain", "layer-line")}
        ratio = (cold["layer-line"] - cold["bare"]) / max(0.001, cold["plain"] - cold["bare"])
        rss = (statistics.median(r["maxrss_kb"] for r in tiny if r["variant"] == "layer-line") - statistics.median(r["maxrss_kb"] for r in tiny if r["variant"] == "bare")) / 1024
        flushes = [f for r in runs if r["python"] == version and r["variant"].startswith("layer") for f in r["flush_ms"]]
        flush = summarize(flushes)
        sdk = any(r["aws_sdk_loaded"] for r in runs if r["python"] == version)
        findings[version] = {"cold_ratio": ratio, "rss_mb": rss, "flush_ms": flush["median"], "flush_p90": flush["p90"], "sdk": sdk}
        lines.append(f"| {version} | {cold['bare']:.1f} | {cold['plain']:.1f} | {cold['layer-line']:.1f} | {ratio:.2f}× | {rss:.1f} | {flush['median']:.2f} / {flush['p90']:.2f} | {'yes' if sdk else 'no'} |")
    return "\n".join(lines), findings


def verdicts(warm: dict, cold: dict) -> str:
    out = []
    for version in ("3.12", "3.13"):
        for shape in SHAPES:
            if (version, shape, "layer-line") in warm:
                ratio = warm[(version, shape, "layer-line")]
                over_plain = warm[(version, shape, "layer-over-plain")]
                verdict = "met" if ratio <= GOALS["warm_line_312"] else "MISSED by %.1f%%" % ((ratio / GOALS["warm_line_312"] - 1) * 100)
                out.append(f"- Warm, line coverage, Python {version}, {shape}: {ratio:.3f}× bare (goal ≤ {GOALS['warm_line_312']}×) — {verdict}; {over_plain:.3f}× plain coverage.py with the same core")
    for version, found in sorted(cold.items()):
        out.append(f"- Cold start added, Python {version}: {found['cold_ratio']:.2f}× the coverage.py floor (goal ≤ {GOALS['cold_vs_floor']}×) — {'met' if found['cold_ratio'] <= GOALS['cold_vs_floor'] else 'MISSED'}")
        out.append(f"- RSS added, Python {version}: {found['rss_mb']:.1f} MB (goal ≤ {GOALS['rss_mb']:.0f} MB) — {'met' if found['rss_mb'] <= GOALS['rss_mb'] else 'MISSED'}")
        out.append(f"- Flush on the response path with the extension, Python {version}: {found['flush_ms']:.2f} ms median, {found['flush_p90']:.2f} ms p90 (goal ≤ {GOALS['flush_ms']:.0f} ms) — {'met' if found['flush_ms'] <= GOALS['flush_ms'] else 'MISSED'}")
        out.append(f"- AWS SDK imported in the function process, Python {version}: {'yes — DEFECT' if found['sdk'] else 'never'}")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer processes and invocations (about 2 minutes)")
    parser.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    args = parser.parse_args()
    began = time.time()
    results = measure(args.quick)
    warm_table, warm = table(results)
    cold_table, cold = cold_and_memory(results)
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), platform.processor())
    document = f"""# Benchmarks

Written by `make bench` ({'quick' if args.quick else 'full'} run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {time.time() - began:.0f} s).
Machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}. Pythons: {', '.join(sorted({r['python'] for r in results['runs']}))}.
Each row is the median over several processes of each process's median warm invocation time; the
spread is the 10th–90th percentile across processes. Ratios are to the bare handler measured in the
same run. This machine is shared and noisy: read ratios, not absolutes.

Variants: **bare** (no coverage), **layer-line** / **layer-branch** (`@coverage_handler`, default flush
policy, extension present), **plain** (coverage.py started once and left on, line coverage), **seed**
(the seed's pattern: a new `Coverage` per invocation with start, stop, save and JSON report; its S3
upload is left out, which only flatters it).

## Goals

{verdicts(warm, cold)}

## Warm invocations

{warm_table}

## Cold start, memory and flush cost

"Floor" is what any in-process coverage must pay: `import coverage` plus `Coverage.start()`. The
layer's cold start is compared by the time it adds over bare against the time the floor adds. The
flush is what a warm invocation pays when a flush is due: save, count, copy to the outbox (the
extension uploads off the response path).

{cold_table}
"""
    Path(args.out).write_text(document)
    print(document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
