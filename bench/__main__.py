"""`make bench` / `make bench-quick`: run every benchmark side by side and write BENCHMARKS.md.

Every figure is a ratio to a baseline measured in the same run (the bare handler, the coverage.py
floor, `coverage combine`), on the same machine, so load from other work mostly cancels out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import cost, merge_throughput, pipeline, report, runtime, traffic
from .report import GOALS, fmt_spread, table, verdict

REPO = runtime.REPO
RAW_RUNS = REPO / "build" / "bench-runs.json"  # every process's record, for a closer look at a figure


def _runs(runs: list[dict], **match: str) -> list[dict]:
    return [r for r in runs if all(r.get(k) == v for k, v in match.items())]


def _median(runs: list[dict], field: str) -> float:
    values = [r[field] for r in runs]
    return statistics.median(values) if values else float("nan")


CONFIGURATIONS = ("default", "zero-default", "ctrace-branch", "sysmon-line")


def _by_round(runs: list[dict], field: str = "median_us") -> dict[int, float]:
    found: dict[int, list[float]] = {}
    for run in runs:
        found.setdefault(run["round"], []).append(run[field])
    return {key: statistics.median(values) for key, values in found.items()}


def _cores(runs: list[dict]) -> str:
    return "/".join(sorted({r["core"] for r in runs})) or "—"


def warm_section(runs: list[dict], goals: list[tuple]) -> str:
    """Two tables: each configuration's processes against bare processes, and in one process against a bare copy."""
    rows, in_process = [], []
    for version in sorted({r["python"] for r in runs}):
        for shape in runtime.SHAPES:
            group = _runs(runs, python=version, shape=shape, flush_mode="extension")
            bare_runs = _runs(group, variant="bare")
            bare, bare_mean = _by_round(bare_runs), _by_round(bare_runs, "mean_us")
            cells, means, copies = {}, {}, {}
            for label in CONFIGURATIONS:
                chosen = _runs(group, variant=label)
                cells[label] = report.paired_ratios(_by_round(chosen), bare) if chosen else []
                means[label] = report.paired_ratios(_by_round(chosen, "mean_us"), bare_mean) if chosen else []
                copies[label] = [statistics.median(r["ab_ratios"]) for r in chosen if r.get("ab_ratios")]
            added = {label: _median(_runs(group, variant=label), "median_us") - _median(bare_runs, "median_us") for label in ("default", "zero-default")}
            after = {label: _median(_runs(group, variant=label), "between_us") - _median(bare_runs, "between_us") for label in ("default", "zero-default")}
            core = _cores(_runs(group, variant="default"))
            rows.append((version, shape, fmt_spread([r["median_us"] for r in bare_runs]), core,
                         *(f"**{report.fmt_ratio(cells[label])}**" if cells[label] else "—" for label in ("default", "zero-default")),
                         " / ".join(f"{added[label]:+.1f}" if added[label] == added[label] else "—" for label in ("default", "zero-default")),
                         " / ".join(f"{after[label]:+.1f}" if after[label] == after[label] else "—" for label in ("default", "zero-default")),
                         " / ".join(f"{statistics.median(means[label]):.2f}×" if means[label] else "—" for label in ("default", "zero-default")),
                         *(report.fmt_ratio(cells[label]) if cells[label] else "—" for label in ("ctrace-branch", "sysmon-line"))))
            if any(copies.values()):
                in_process.append((version, shape, core, *(f"**{report.fmt_ratio(copies[label])}**" if copies[label] else "—" for label in ("default", "zero-default")),
                                   report.fmt_ratio(copies["sysmon-line"]) if copies["sysmon-line"] else "—"))
            if runtime.markers_python(version):
                for label, mode in (("default", "decorator"), ("zero-default", "zero-code")):
                    judged = copies[label] or cells[label]
                    if not judged:
                        continue
                    measured = (f"{report.fmt_ratio(copies[label])} in one process; " if copies[label] else "") + f"separate processes {report.fmt_ratio(cells[label])}"
                    goals.append((f"Warm, default configuration (branch coverage, `{core}`), {mode}, Python {version}, {shape} handler", measured,
                                  verdict(statistics.median(judged), GOALS["warm"]), f"≤ {GOALS['warm']}×"))
    separate = table(("Python", "handler", "bare: µs per invocation", "default core", "**default**, decorator ÷ bare", "**default**, zero-code ÷ bare",
                      "default: µs added, decorator / zero-code", "default: µs added after the response, decorator / zero-code",
                      "default: means ÷ bare, decorator / zero-code (policy flushes included)",
                      "`ctrace`, branch ÷ bare", "`sysmon`, line ÷ bare"), rows)
    together = table(("Python", "handler", "default core", "**default**, decorator ÷ bare copy", "**default**, zero-code ÷ bare copy", "`sysmon`, line ÷ bare copy"), in_process)
    return separate + "\n\n" + IN_PROCESS_TEXT + "\n\n" + together


IN_PROCESS_TEXT = """**In one process.** The same processes then serve alternating blocks of 50 invocations: the
measured handler, then an unmeasured copy of its module loaded from outside the source root, a few
ms apart, so a burst of load from other work hits both alike. A block's ratio is its median
invocation against the copy's (so an invocation that flushed by policy or was paused by the machine
is left out, as above); a process's figure is the median of its block ratios, and the table gives
the median over rounds with its min–max. Only for
cores that leave unmeasured code alone (`markers` and `sysmon` put `sys.monitoring` events on the
measured code objects); with a tracer (`ctrace`) the copy's frames would be traced too. The goals
are judged on this figure where it exists."""


SAMPLED_RATE = runtime.CONTEXTS_SAMPLE_RATE
CONTEXT_LABELS = {"off": "contexts off (default)", "route": "`route`", "route-sampled": f"`route`, sample rate {SAMPLED_RATE}"}
CONTEXTS_BOUND = 1.05  # the overhead over unlabelled measurement a user can keep with the sample rate


def _process_ratios(runs: list[dict]) -> dict[int, float]:
    """Each round's process figure: the median over its blocks of the measured block's mean ÷ the bare copy's."""
    return {r["round"]: statistics.median(r["ab_mean_ratios"]) for r in runs if r.get("ab_mean_ratios")}


def _contexts_over_off(runs: list[dict]) -> dict[tuple[str, str], dict[str, list[float]]]:
    """Per (Python, handler): each labelled configuration ÷ contexts off, round by round."""
    found: dict[tuple[str, str], dict[str, list[float]]] = {}
    for version in sorted({r["python"] for r in runs}):
        for shape in runtime.CONTEXT_SHAPES:
            group = _runs(runs, python=version, shape=shape)
            off = _process_ratios(_runs(group, variant="off"))
            paired = {label: report.paired_ratios(_process_ratios(_runs(group, variant=label)), off) for label in ("route", "route-sampled")}
            if any(paired.values()):
                found[(version, shape)] = paired
    return found


def traffic_mix() -> str:
    return ", ".join(f"{weight:.0%} `{route}`" for route, weight in traffic.ROUTE_WEIGHTS.items())


def changing_label() -> float:
    """The share of invocations whose route differs from the previous one's, for independent draws."""
    return 1 - sum(weight * weight for weight in traffic.ROUTE_WEIGHTS.values())


def contexts_section(runs: list[dict]) -> str:
    """The table of COVERAGE_CONTEXTS' warm cost against the bare copy and against contexts off, and what it means."""
    rows = []
    over_off = _contexts_over_off(runs)
    for version in sorted({r["python"] for r in runs}):
        for shape in runtime.CONTEXT_SHAPES:
            group = _runs(runs, python=version, shape=shape)
            if not group:
                continue
            ratios = {label: _process_ratios(_runs(group, variant=label)) for label in CONTEXT_LABELS}
            paired = over_off.get((version, shape), {})
            rows.append((version, shape, _cores(group), fmt_spread([r["median_us"] for r in _runs(group, variant="off")]),
                         *(report.fmt_ratio(ratios[label].values()) if ratios[label] else "—" for label in CONTEXT_LABELS),
                         *(f"**{report.fmt_ratio(paired[label])}**" if paired.get(label) else "—" for label in ("route", "route-sampled"))))
    headers = ("Python", "handler", "core", "contexts off: µs per invocation", *(f"{name} ÷ bare copy" for name in CONTEXT_LABELS.values()),
               *(f"**{CONTEXT_LABELS[label]} ÷ off**" for label in ("route", "route-sampled")))
    return table(headers, rows) + "\n\n" + contexts_meaning(over_off)


def contexts_meaning(over_off: dict[tuple[str, str], dict[str, list[float]]]) -> str:
    """One sentence per core family from the figures: what route labels add to plain measurement, and whether the sampled rate keeps it within CONTEXTS_BOUND."""
    def worst(label: str, markers: bool, shape: str) -> float:
        found = [statistics.median(p[label]) for (version, s), p in over_off.items()
                 if s == shape and p.get(label) and runtime.markers_python(version) == markers]
        return max(found) if found else float("nan")

    lines = []
    for markers, where in ((True, "On Python 3.12/3.13 (`markers`)"), (False, "Before 3.12 (`ctrace`)")):
        route = {shape: worst("route", markers, shape) for shape in runtime.CONTEXT_SHAPES}
        sampled = {shape: worst("route-sampled", markers, shape) for shape in runtime.CONTEXT_SHAPES}
        if all(v != v for v in route.values()):
            continue
        why = ("each change of label turns the measured code's events back on, so the invocations after it report their lines again"
               if markers else "coverage.py writes the tracer's data collected so far at every change of context")
        above = [shape for shape, ratio in sampled.items() if ratio > CONTEXTS_BOUND]
        bound = (f"still over {CONTEXTS_BOUND}× contexts off on the {' and '.join(above)} handler{'s' if len(above) > 1 else ''}"
                 if above else f"within {CONTEXTS_BOUND}× of contexts off")
        lines.append(f"{where}, labelling every request with its route makes a warm invocation "
                     + " and ".join(f"{route[shape]:.2f}× ({shape})" for shape in runtime.CONTEXT_SHAPES)
                     + f" as long as with contexts off ({why}); a sample rate of {SAMPLED_RATE} brings that to "
                     + " and ".join(f"{sampled[shape]:.2f}×" for shape in runtime.CONTEXT_SHAPES) + f", {bound}.")
    return "**What it means.** " + " ".join(lines) if lines else ""


def seed_line(runs: list[dict]) -> str:
    found = []
    for version in sorted({r["python"] for r in runs}):
        tiny = _runs(runs, python=version, shape="tiny", flush_mode="extension")
        seed, bare = _median(_runs(tiny, variant="seed"), "median_us"), _median(_runs(tiny, variant="bare"), "median_us")
        found.append(f"{version}: {seed / 1000:.1f} ms per invocation ({seed / bare:,.0f}× bare)")
    return "; ".join(found)


TINY_LABELS = {
    "bare": "bare",
    "floor": "floor: + `import coverage` + start (branch)",
    "default": "**default**, decorator",
    "zero-default": "**default**, zero-code",
}

PACKAGE_LABELS = {
    "bare": "bare (bytecode shipped)",
    "bare-no-pyc": "bare, no bytecode shipped",
    "floor": "floor: + `import coverage` + start (branch)",
    "default": "**default**, decorator",
    "zero-default": "**default**, zero-code",
    "marked": "default, decorator, package built with `lambda-coverage mark`",
    "zero-marked": "default, zero-code, package built with `lambda-coverage mark`",
    "ctrace-branch": "`ctrace`, branch, decorator",
    "zero-ctrace-branch": "`ctrace`, branch, zero-code",
}


GOAL_VARIANTS = {"default": "decorator", "zero-default": "zero-code",
                 "marked": "decorator, built with `mark`", "zero-marked": "zero-code, built with `mark`"}


def cold_rows(group: list[dict], labels: dict[str, str], version: str, what: str, goals: list[tuple]) -> list[tuple]:
    """One row per variant: CPU and wall time to the first response, what it adds against the floor, flushes, RSS.

    Ratios use CPU time (the worker's own CPU up to its first response): on a shared machine, wall
    time also counts the time a process waited for a core.
    """
    bare_runs, floor_runs = _runs(group, variant="bare"), _runs(group, variant="floor")
    bare_cpu, floor_cpu = _median(bare_runs, "first_cpu_ms"), _median(floor_runs, "first_cpu_ms")
    bare_wall, floor_wall = _median(bare_runs, "cold_ms"), _median(floor_runs, "cold_ms")
    bare_rss = _median(bare_runs, "maxrss_end_kb") / 1024
    rows = []
    for label, name in labels.items():
        chosen = _runs(group, variant=label)
        if not chosen:
            continue
        cpu, wall = _median(chosen, "first_cpu_ms"), _median(chosen, "cold_ms")
        over_floor, over_floor_wall = report.added_ratio(cpu, bare_cpu, floor_cpu), report.added_ratio(wall, bare_wall, floor_wall)
        first = [r["flush_cpu_ms"][0] for r in chosen if r["flush_cpu_ms"]]
        first_wall = [r["flush_ms"][0] for r in chosen if r["flush_ms"]]
        later = [f for r in chosen for f in r["flush_cpu_ms"][1:]]
        before, peak = _median(chosen, "maxrss_kb") / 1024 - bare_rss, _median(chosen, "maxrss_end_kb") / 1024 - bare_rss
        judged = label not in ("bare", "floor")
        rows.append((version, name, _cores(chosen), fmt_spread([r["first_cpu_ms"] for r in chosen], 0), fmt_spread([r["cold_ms"] for r in chosen], 0),
                     f"{cpu - bare_cpu:+.0f}" if label != "bare" else "", f"{over_floor:.2f}×" if judged else "", f"{cpu / floor_cpu:.2f}×",
                     f"{fmt_spread(first, 0)}; wall {statistics.median(first_wall):.0f}" if first else "", fmt_spread(later, 1) if later else "",
                     f"{before:+.1f}" if label != "bare" else "", f"{peak:+.1f}" if label != "bare" else ""))
        if label in GOAL_VARIANTS:
            mode = GOAL_VARIANTS[label]
            core = _cores(chosen)
            goals.append((f"Cold start added, {what}, default (`{core}`) {mode}, Python {version}",
                          f"{over_floor:.2f}× the floor's added CPU time ({cpu - bare_cpu:+.0f} ms against {floor_cpu - bare_cpu:+.0f} ms; wall time {over_floor_wall:.2f}×)",
                          verdict(over_floor, GOALS["cold_vs_floor"]), f"≤ {GOALS['cold_vs_floor']}×"))
            goals.append((f"RSS added, {what}, default (`{core}`) {mode}, Python {version}",
                          f"{peak:.1f} MB at peak" + (f", after the first flush ({before:.1f} MB before it)" if first else "") + f" (floor: {_median(floor_runs, 'maxrss_end_kb') / 1024 - bare_rss:.1f} MB)",
                          verdict(peak, GOALS["rss_mb"]), f"≤ {GOALS['rss_mb']:.0f} MB"))
    return rows


COLD_HEADERS = ("Python", "variant", "core", "CPU ms to the first response", "wall ms to the first response", "CPU added over bare, ms",
                "added ÷ floor added (CPU)", "÷ floor (CPU, total)", "first flush CPU ms", "later flushes CPU ms", "RSS added before the first flush, MB",
                "RSS added at peak, MB")


def cold_section(runs: list[dict], goals: list[tuple]) -> str:
    rows = []
    for version in sorted({r["python"] for r in runs}):
        rows += cold_rows(_runs(runs, python=version, shape="tiny", flush_mode="extension"), TINY_LABELS, version, "tiny handler", goals)
    return table(COLD_HEADERS[:8] + COLD_HEADERS[-1:], [row[:8] + row[-1:] for row in rows])


def sdk_line(runs: list[dict]) -> str:
    """Whether the layer loaded the AWS SDK into the function process (a handler that imports it itself does not count)."""
    loaded = sorted({f"{r['python']} {r['shape']}" for r in runs if r["aws_sdk_loaded"] and r["variant"] != "bare" and r["flush_mode"] == "extension"
                     and not any(b["aws_sdk_loaded"] for b in _runs(runs, python=r["python"], shape=r["shape"], variant="bare"))})
    return "never" if not loaded else "in these runs: " + ", ".join(loaded)


def package_section(runs: list[dict], goals: list[tuple]) -> str:
    rows = []
    for version in sorted({r["python"] for r in runs}):
        rows += cold_rows(_runs(runs, python=version), PACKAGE_LABELS, version, "generated package", goals)
    return table(COLD_HEADERS, rows)


def flush_section(runs: list[dict]) -> str:
    rows = []
    for version in sorted({r["python"] for r in runs}):
        for mode in ("extension", "fallback"):
            chosen = [r for r in _runs(runs, python=version, flush_mode=mode) if r["flush_ms"]]
            if not chosen:
                continue
            flushes = [f for r in chosen for f in r["flush_ms"]]
            cpu = [f for r in chosen for f in r["flush_cpu_ms"]]
            uploads = [u for r in chosen for u in r["upload_ms"]]
            warm = statistics.median(r["median_us"] for r in chosen)
            contended = [c for r in chosen for c in r["contended_us"]]
            slowdown = f"{statistics.median(contended) / warm:.2f}× ({len(contended)} invocations)" if contended else "none (nothing runs in the function process)"
            rows.append((version, _cores(chosen), "extension (outbox only)" if mode == "extension" else "no extension: in-process thread → S3 (moto)",
                         fmt_spread(flushes, 2), fmt_spread(cpu, 2), fmt_spread(uploads, 0) if uploads else "off the process", slowdown))
    return table(("Python", "core", "shipping", "flush on the response path, wall ms", "the same, CPU ms", "upload in the background, ms",
                  "invocations served during the upload, ÷ warm median"), rows)


def merge_section(merge: dict, goals: list[tuple]) -> str:
    rows = []
    for size, found in sorted(merge["sizes"].items()):
        combine = statistics.median(found["seconds"]["coverage combine"])
        for tool, seconds in found["seconds"].items():
            median = statistics.median(seconds)
            rows.append((size, tool, fmt_spread(seconds, 2), f"{size / median:.0f}", f"{combine / median:.2f}×", "yes" if found["same_result"] else "NO"))
        validated = combine / statistics.median(found["seconds"]["merge_data_files (validated)"])
        goals.append((f"Merge throughput, {size} files", f"{validated:.2f}× `coverage combine` (validated, as the pipeline runs it)", verdict(validated, GOALS["merge_vs_combine"], higher_is_better=True), "≥ 1×"))
    return f"""The same files for every tool. Corpus: a generated codebase of {merge['modules']} modules with branches,
loops, early returns and exceptions (`bench/corpus.py`), {merge['real_runs']} real coverage.py runs with
branch coverage in 2 processes (each run re-imports the package with a different input, so module
and function lines run again; {merge['real_runs_seconds']:.0f} s), paths made relative as the layer ships
them. The 1k/10k distinct files are SQLite rewrites of those runs: each keeps its real run's schema,
meta and file table; per measured file it keeps ~90% of the run's arcs and adds ~5% of the arcs other
real runs took in that file, so every arc exists in the code and no two files are alike.
`coverage combine --keep -q DIR` runs in an empty directory (no configuration file);
`merge_data_files` runs with validation (what the pipeline does) and without. Each tool is a fresh
process; order alternates between repeats.

""" + table(("files", "tool", "seconds (spread)", "files/s", "speed ÷ coverage combine", "same executed lines"), rows)


def pipeline_section(found: dict) -> str:
    fleet = found["fleet"]
    lines = [
        f"- Fleet (`lambda_coverage.demo.run_fleet`): {fleet['environments']} simulated execution environments (awslambdaric processes, the layer's extension, the five examples), "
        f"{fleet['invocations']} invocations in {fleet['invoke_seconds']:.1f} s = **{fleet['invocations_per_s']:.1f} invocations/s** through the local Runtime API "
        f"(median cold start {fleet['cold_start_ms']:.0f} ms, function errors: {fleet['errors']}); from the last shutdown to an idle pipeline: {fleet['shutdown_to_idle_s']:.1f} s.",
    ]
    latency = [b["last_upload_to_summary_s"] for b in found["bursts"]]
    rate = [b["raw_files_per_s"] for b in found["bursts"]]
    transitions = [h["state_transitions"] for b in found["bursts"] for h in b["combine_history"]]
    lines.append(
        f"- Upload bursts of {found['bursts'][0]['raw_files']} raw files into one group, {len(found['bursts'])} bursts: last raw upload → the group's `summary.json` counts them: "
        f"**{fmt_spread(latency, 2)} s** (the local combine window is {found['window_seconds']} s and is part of it; on AWS the window is "
        f"{pipeline_default_window()} s, so expect that plus the same processing time); raw files per second from first upload to report: {fmt_spread(rate, 1)}; "
        f"combine executions per burst: {[b['combines'] for b in found['bursts']]}; state transitions per combine execution (from `get_execution_history`): {transitions}.")
    rows = [(name, f"{ms:.0f}", found["lambda_memory_mb"].get(name, "")) for name, ms in sorted(found["lambda_ms"].items())]
    return "\n".join(lines) + "\n\nPipeline Lambda durations measured here (median, in-process on this shared machine):\n\n" + table(("Lambda", "median ms", "memory MB (CDK)"), rows)


def pipeline_default_window() -> int:
    from lambda_coverage.pipeline import DEFAULT_WINDOW_SECONDS

    return DEFAULT_WINDOW_SECONDS


def cost_section(found: dict, runs: list[dict], goals: list[tuple]) -> str:
    counts = report.pipeline_counts(found["bursts"], found["lambda_ms"], found["lambda_memory_mb"], "lambda-coverage-validate")
    window = pipeline_default_window()
    scenarios = [
        cost.Scenario("1M invocations a day, 1,000 environments (headline)", environments=1000, window_seconds=window),
        cost.Scenario("1M a day, 100 long-lived environments", environments=100, window_seconds=window),
        cost.Scenario("1M a day, 10,000 short-lived environments", environments=10000, files_per_environment=2, window_seconds=window),
        cost.Scenario("1M over 30 days (33k a day), 1,000 environments", days=30, environments=1000, window_seconds=window),
        cost.Scenario("10M a day, 5,000 environments (per 1M)", invocations=1e7, environments=5000, window_seconds=window),
        cost.Scenario("headline with a 1-minute combine window (fresher reports)", environments=1000, window_seconds=60),
    ]
    seed_runs = _runs(runs, variant="seed", flush_mode="extension", shape="tiny")
    bare_tiny = _median(_runs(runs, variant="bare", flush_mode="extension", shape="tiny"), "median_us")
    seed_added_ms = (_median(seed_runs, "median_us") - bare_tiny) / 1000 + 2 * 30  # + two synchronous PUTs, ~30 ms each in-region
    seed = cost.seed_cost(1e6, seed_added_ms)
    item_names = [k for k in seed["items"] if k != "total"]
    rows = []
    headline = cost.layer_cost(scenarios[0], counts)
    for scenario in scenarios:
        found_cost = cost.layer_cost(scenario, counts)
        rows.append((scenario.name, f"{found_cost['raw_files'] * 1e6 / scenario.invocations:,.0f}", f"{found_cost['combines'] * 1e6 / scenario.invocations:,.0f}",
                     *[f"{found_cost['items'][k]:.4f}" for k in item_names], f"**{found_cost['items']['total']:.3f}**"))
    rows.append(("seed: file + JSON report per invocation", "1,000,000", "1", *[f"{seed['items'][k]:.4f}" for k in item_names], f"**{seed['items']['total']:.2f}**"))
    goals.append(("AWS cost per 1M invocations (headline scenario)", f"${headline['items']['total']:.3f} (seed: ${seed['items']['total']:.2f})", verdict(headline["items"]["total"], GOALS["dollars_per_m"]), f"≤ ${GOALS['dollars_per_m']}"))
    per_file, per_combine = counts.per_raw_file, counts.per_combine
    prices = cost.Prices()
    counts_text = (
        f"Measured counts. Per raw file (intake): {per_file.s3_get:.1f} S3 GET/HEAD, {per_file.s3_put:.1f} S3 PUT/LIST, {per_file.lambda_requests:.1f} Validate invocations "
        f"({per_file.lambda_gb_s:.3f} GB-s), {per_file.express_requests:.1f} Express executions ({per_file.express_gb_s:.4f} GB-s billed: duration rounded up to 100 ms, 64 MB). "
        f"Per combine execution: {per_combine.transitions:.1f} state transitions, {per_combine.s3_get:.1f} S3 GET/HEAD, {per_combine.s3_put:.1f} S3 PUT/LIST "
        f"({per_combine.events:.1f} of them create objects, each an EventBridge event), {per_combine.lambda_requests:.1f} Lambda invocations ({per_combine.lambda_gb_s:.2f} GB-s). "
        f"Seed: {seed_added_ms:.1f} ms added per invocation (measured per-invocation coverage work on the tiny handler + two ~30 ms synchronous PUTs), billed at 512 MB.")
    price_text = (
        f"Prices (us-east-1, first tier, checked 2026-11): S3 PUT/COPY/POST/LIST ${prices.s3_put_per_1k}/1k, GET/HEAD ${prices.s3_get_per_1k}/1k; EventBridge ${prices.eventbridge_per_m}/M events; "
        f"Step Functions Standard ${prices.sfn_standard_per_1k_transitions}/1k state transitions, Express ${prices.sfn_express_per_m_requests}/M requests + ${prices.sfn_express_per_gb_s}/GB-s; "
        f"Lambda arm64 ${prices.lambda_per_m_requests}/M requests + ${prices.lambda_per_gb_s_arm64}/GB-s. Free tiers are ignored. S3 events to EventBridge are AWS service events, "
        f"free on the default bus today; they are charged here at $1/M anyway, as the safe side.")
    return "\n\n".join([price_text, counts_text, table(("scenario", "raw files", "combines", *item_names, "total $"), rows)])


def machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def versions() -> str:
    found = []
    for python in runtime.interpreters().values():
        full = subprocess.run([python, "-c", "import sys, coverage; print(sys.version.split()[0], coverage.__version__)"], capture_output=True, text=True).stdout.split()
        found.append(f"{full[0]} (coverage.py {full[1]})")
    return ", ".join(found)


def explain_missed(goals: list[tuple], runs: list[dict], package_runs: list[dict]) -> str:
    """Why each missed goal is missed, with the figures that show it; nothing when every goal is met."""
    missed = [goal[0] for goal in goals if goal[2].startswith("MISSED")]
    if not missed:
        return "Every goal is met."
    lines = ["Where goals are missed, and why:"]
    warm = [name for name in missed if name.startswith("Warm")]
    if warm:
        details = []
        for version in sorted({r["python"] for r in runs if runtime.markers_python(r["python"])}):
            for shape in runtime.SHAPES:
                group = _runs(runs, python=version, shape=shape, flush_mode="extension")
                bare = _median(_runs(group, variant="bare"), "median_us")
                added = {label: _median(_runs(group, variant=label), "median_us") - bare for label in ("default", "zero-default", "sysmon-line")}
                details.append(f"{version} {shape}: {added['default']:+.1f} / {added['zero-default']:+.1f} µs (`sysmon` line {added['sysmon-line']:+.1f} µs) on {bare:.1f} µs")
        lines.append(
            "- Warm: what the default configuration adds per invocation over bare (decorator / zero-code, median invocation, "
            "separate processes), beside `sysmon` line coverage on the same handler (no branch data, coverage.py's fastest "
            "core): " + "; ".join(details) + ".")
        if any(" tiny " in name for name in warm):
            lines.append(
                "- The tiny handler (a 0.2–0.3 µs call) is as long as a few `perf_counter` reads: a difference of 0.01 µs, "
                "the clock's step here, is already 5 %. Under the Lambda runtime the layer adds nothing to the call "
                "itself (section 1); its count and flush policy run when the runtime asks for the next invocation.")
        if any(" cpu " in name for name in warm):
            lines.append(
                "- Call-heavy code (the cpu handler's recursive call tree): `sys.monitoring` leaves a LINE instrumentation "
                "point in place wherever a line is re-entered by a jump within that same line (the `else` half of "
                "`return n if n < 2 else _fib(n - 1) + _fib(n - 2)`): CPython 3.12/3.13 skip the callback when the line equals "
                "the previous instruction's, so the `DISABLE` that would remove the point never comes (coverage.py's `sysmon` "
                "core pays it on every call). The `markers` core switches a code object's events off once all of its lines and "
                "markers have run; code with a line or an edge that has not run keeps them. The markers' own no-op "
                "instructions cost about 1–2 %; the spreads show how far rounds on this shared machine move the rest.")
    if any(name.startswith("Cold start added, generated package") for name in missed):
        size = {}
        for version in sorted({r["python"] for r in package_runs}):
            group = _runs(package_runs, python=version)
            bare = _median(_runs(group, variant="bare"), "first_cpu_ms")
            size[version] = (_median(_runs(group, variant="bare-no-pyc"), "first_cpu_ms") - bare, _median(_runs(group, variant="zero-default"), "first_cpu_ms") - bare)
        lines.append(
            "- Cold start with a package of realistic size: in zero-code mode the `markers` core marks the bytecode of every "
            "measured module as it is imported (one pass over each code object, rewriting its jumps, exception table and "
            "location table); in decorator mode it marks each function's code at the first invocation, and the lines the "
            "imports ran come from a parse at the first flush. Compiling alone (bare without shipped bytecode) adds "
            + ", ".join(f"{v}: {c:+.0f} ms" for v, (c, _) in size.items()) + " of CPU; the default in zero-code mode adds "
            + ", ".join(f"{v}: {d:+.0f} ms" for v, (_, d) in size.items()) + ". The floor does not depend on the code's size. "
            "A package built with `lambda-coverage mark` ships the marked code, and cold start skips the marking (rows "
            "*built with `lambda-coverage mark`*).")
    if any(name.startswith("RSS added") for name in missed):
        lines.append(
            "- Memory: the `markers` core never imports coverage.py (it writes the data file with sqlite3); the first flush "
            "loads sqlite3 and keeps what resolves markers into arcs for later flushes (the bytecode of each code object that "
            "ran a marker).")
    if any(name.startswith("Cold start added, tiny") for name in missed):
        lines.append("- Cold start, tiny handler: see section 2; the spread columns show how far apart rounds were.")
    return "\n".join(lines)


def measure_all(quick: bool) -> dict:
    """Every measurement of a run, as plain data (saved to RAW_RUNS, so a document can be written again from it)."""
    began = time.time()
    load_before = os.getloadavg()[0]
    plan = runtime.Plan.for_run(quick)
    timings: dict[str, float] = {}
    failed: dict[str, str] = {}

    def timed(name, fn, *a):
        print(f"{name} …", flush=True)
        start = time.perf_counter()
        value = fn(*a)
        timings[name] = time.perf_counter() - start
        return value

    def attempted(name, fn, *a):
        """A measurement that may fail on its own (the pipeline's services change under it): the other sections still get written."""
        try:
            return timed(name, fn, *a)
        except Exception as exc:
            failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            print(f"{name} failed: {exc}", file=sys.stderr, flush=True)
            return None

    runs = timed("runtime", runtime.measure, plan)
    contexts_runs = attempted("contexts", runtime.measure_contexts, plan)
    package_size, package_runs = timed("package", runtime.measure_package, plan)
    merge = attempted("merge", merge_throughput.measure, {1000: 1} if quick else {1000: 2, 10000: 1}, 100 if quick else 300)
    pipe = attempted("pipeline", pipeline.measure, 1 if quick else 2, 1, 1 if quick else 3, 10 if quick else 20)
    return {
        "quick": quick, "plan": dataclasses.asdict(plan), "runs": runs, "contexts_runs": contexts_runs, "package_runs": package_runs, "package_size": package_size,
        "merge": merge, "pipe": pipe, "failed": failed, "timings": timings, "elapsed": time.time() - began,
        "written_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": [load_before, os.getloadavg()[0]],
        "machine": machine(), "versions": versions(),
    }


def load_results(path: Path) -> dict:
    """A saved run, with the merge sizes back to numbers (JSON keeps object keys as strings)."""
    found = json.loads(path.read_text())
    if found.get("merge"):
        found["merge"]["sizes"] = {int(size): value for size, value in found["merge"]["sizes"].items()}
    return found


def render(found: dict) -> str:
    """BENCHMARKS.md's own sections from one run's measurements."""
    plan = runtime.Plan(**found["plan"])
    runs, package_runs, package_size = found["runs"], found["package_runs"], found["package_size"]
    merge, pipe, failed = found["merge"], found["pipe"], found["failed"]
    goals: list[tuple] = []
    warm = warm_section(runs, goals)
    cold = cold_section(runs, goals)
    package = package_section(package_runs, goals)
    flush = flush_section(runs)
    contexts = contexts_section(found["contexts_runs"]) if found.get("contexts_runs") else f"Not measured in this run: {failed.get('contexts', 'the run predates this section')}."
    merged = merge_section(merge, goals) if merge else f"Not measured in this run: {failed['merge']}."
    piped = pipeline_section(pipe) if pipe else f"Not measured in this run: {failed['pipeline']}."
    costs = cost_section(pipe, runs, goals) if pipe else "Not measured in this run: it needs the pipeline's measured counts (section 6)."
    return f"""# Benchmarks

Written by `make {'bench-quick' if found['quick'] else 'bench'}` on {found['written_at']} in {found['elapsed']:.0f} s
({', '.join(f'{k} {v:.0f} s' for k, v in found['timings'].items())}).
Machine: {found['machine']}; load average {found['load'][0]:.1f} at the start, {found['load'][1]:.1f} at the end (other work shares the CPU).
Pythons: {found['versions']}.
Every ratio is between figures measured in the same run. Medians, with the spread in brackets: the
10th–90th percentile when there are ten or more values, otherwise min–max. Read ratios, not absolutes.

## Goals

The **default configuration** is what a new user gets: no `COVERAGE_CORE`, branch coverage on
(`COVERAGE_BRANCH_COVERAGE=true`), so the layer picks `markers` on Python 3.12/3.13 and `ctrace`
before 3.12. Its figures come first everywhere and are what the goals judge.

{table(("what", "measured", "verdict", "goal"), goals)}

{explain_missed(goals, runs, package_runs)}

## 1. Warm invocations

Each handler shape runs in fresh processes under each configuration (default flush policy, an
extension present, so nothing but the outbox write happens in the function process): **default**
(nothing set: branch coverage by the core the layer picks) with the decorator (`@coverage_handler`:
the handler's module is imported before measuring begins at the first invocation) and in zero-code
mode (the exec wrapper starts measuring before the runtime imports the handler's module);
**`ctrace`, branch** (`COVERAGE_CORE=ctrace`, decorator: the default before the `markers` core);
**`sysmon`, line** (`COVERAGE_BRANCH_COVERAGE=false`, decorator: lines only, coverage.py's fastest
core). Every process loads its handler as Lambda's runtime does, through awslambdaric's own
`bootstrap.run` with a stand-in for the Runtime API's HTTP calls, and asks the runtime client for
each next invocation before serving it; the figures are the handler call, what the caller waits for.
Loaded there, the layer hands the runtime the user's own function (no context is recorded per
request), and counts invocations and applies the flush policy when the runtime asks for the next
invocation, after the previous response: that work is the column "µs added after the response"
(billed, not waited for). Each round runs a handler's configurations back to back, right after its bare run; a ratio is
a round's process median ÷ the same round's bare process median (the median invocation: the few that
flush by policy are not in it), and the table gives the median ratio over {plan.repeats} rounds with its
min–max. The means column is the same ratio of per-process means, which do include the policy
flushes (every 500 invocations; the `markers` core's first one also loads sqlite3) and every
pause the shared machine inflicts. Per process {plan.invocations['cpu']} (cpu), {plan.invocations['io']} (io), {plan.invocations['tiny']} (tiny),
{plan.invocations['powertools']} (powertools) warm invocations after the first, which is the cold one. Handlers:
`bench/handlers.py` (cpu: a 2,000-step loop with branches plus a recursive call tree; io: a 2 ms
sleep; tiny: return a dict) and `bench/rest_api.py` (powertools: Powertools'
`APIGatewayRestResolver` with three routes, `GET /orders/<id>`, `POST /orders` with a JSON body,
`GET /health`, served in turn; Powertools is installed in every bench venv and is not measured, as a
dependency would not be). The measured files are the handler modules (`COVERAGE_INCLUDE_PATTERNS`).

{warm}

The seed's pattern (a new `Coverage` per invocation with start, stop, save and JSON report, its S3
upload left out) on the tiny handler: {seed_line(runs)}.

### Contexts (`COVERAGE_CONTEXTS`)

What recording which request ran each line costs, warm, with the decorator and each Python's default
core (branch coverage): contexts off (the default), `COVERAGE_CONTEXTS=route`, and `route` with
`COVERAGE_CONTEXTS_SAMPLE_RATE={SAMPLED_RATE}`, each in its own processes. Every request is one of
{runtime.TRAFFIC_REQUESTS:,} API Gateway REST requests drawn with a fixed seed from the Powertools handler's
routes as real traffic would ask for them (`bench/traffic.py`: {traffic_mix()}), so
{changing_label():.0%} of invocations change the label; the cpu handler serves the same requests (its
work does not depend on them, its route is labelled all the same). Each process serves
{plan.contexts_invocations['powertools']:,} (powertools) or {plan.contexts_invocations['cpu']:,} (cpu) invocations (a quarter of those where the
core is `ctrace`), then alternating blocks of 50 invocations of the measured handler and of an
unmeasured copy on the same requests, as in the in-process table above, except that a block's
figure is its mean invocation ÷ the copy's: a context costs the invocations that change label, not
the typical one. A process's figure is the median over its blocks (a block with a policy flush or a
pause of the machine is left out by it); the table gives the median over {plan.contexts_repeats} round(s) with its
min–max. With a tracer (`ctrace`) the copy runs with the tracer taken out of the thread. The bold
columns divide each round's labelled figure by the same round's contexts-off figure: what contexts
add to plain measurement.

{contexts}

## 2. Cold start and memory, tiny handler

Cold start is measured to the end of the first invocation, as the process's own **CPU time**
(`time.process_time()`, which counts interpreter start-up, the runtime's loading and every import) and as
**wall time** from spawn (the parent's clock; on this shared machine it also counts waiting for a
core, so ratios are taken on CPU time). Tiny handler, default configuration. **Floor** = `import
coverage` + `Coverage(branch=True, ...).start()` (coverage.py's own default core) after the
handler's import. The layer is judged by the time it adds over bare against the time the floor adds.
**Zero-code** runs the worker through `layer_src/coverage-instrument` with `_HANDLER` set, so the
runtime loads `coverage_wrapper.instrument`, which starts measuring, then imports the handler module. RSS is the process's peak (`VmHWM`) minus bare's. AWS SDK
(boto3/botocore) loaded into the function process by the layer before any upload: {sdk_line(runs)}.

{cold}

## 3. Cold start, first flush and memory with a function package of realistic size

The function's own code is a generated package (`bench/codebase.py`, deterministic): {package_size['modules']}
modules and a handler, {package_size['files']} files, {package_size['lines']:,} lines ({package_size['bytes'] / 1024:.0f} KiB) of
service-style code (enums, dataclasses, a repository class, if/elif chains, loops with
break/continue/else, try/except/else/finally, `with`, comprehensions, generators, decorators,
`match`). The handler imports the whole package at init and each request runs three of its modules.
Nothing is set but the source root, so everything under it is measured (the default). The package
ships bytecode (precompiled like a built deployment package); **bare, no bytecode shipped** shows a
zip without `__pycache__`, which the interpreter compiles at every cold start; the rows *package built
with `lambda-coverage mark`* run a copy whose modules were marked at build time. **Floor** is bare +
`import coverage` + `Coverage(branch=True).start()` after the package's import. Cold start ends with
the first invocation; then {plan.invocations['package']} more invocations, then two flushes with new data, timed
(the `markers` core never imports coverage.py; its first flush loads sqlite3 and turns the markers that
ran into coverage.py's arcs, and later flushes reuse that). {plan.package_repeats} rounds on
Python {', '.join(sorted({r['python'] for r in package_runs}))} (the `markers` Pythons). Columns as in section 2; flush times
are the main thread's CPU time (`time.thread_time()`), with the first flush's wall time beside it.

{package}

## 4. Flush cost

A flush with new data (the costly case: save, count, copy into the outbox, sidecar), cpu handler,
default configuration with the decorator, timed after the warm invocations (so after the policy's
own flushes: the first flush of a process, which for the `markers` core loads sqlite3, is in
section 3). With the extension, that is all the function process does; the upload happens in the
extension process. Without an extension (local runs), a background thread in the function process
uploads to S3 (a moto server here, so the upload time is not AWS's) and invocations served meanwhile
share the GIL with it; the first upload also imports botocore. Without-extension runs use this
venv's Python only (the bench venvs of 3.12/3.13 carry coverage.py and Powertools alone).

{flush}

## 5. Merge throughput

{merged}

## 6. Upload to report on the local emulation

{piped}

## 7. Cost per 1M instrumented invocations

This design at its default flush policy (`COVERAGE_FLUSH_INVOCATIONS=500`, `COVERAGE_FLUSH_SECONDS=60`,
files only written when coverage grew, a final file at shutdown) against the seed's file per
invocation. Assumptions: each execution environment writes 3 raw files (2 flushes where coverage
grew, 1 at shutdown); the extension spends 0.1 s per upload, billed at 512 MB; each environment
makes one source-manifest claim (a conditional PUT); one function and one code version (one
group); raw files arrive uniformly over the day, so the expected number of combine executions is the
number of {pipeline_default_window()} s windows that receive a file, W·(1 − e^(−files/W)), plus one
daily sweep per day; each combine costs what one measured burst combine cost (requests, state
transitions, Lambda time at the CDK memory sizes, with local durations — likely pessimistic for
AWS's faster cores, optimistic for much larger codebases). The seed's in-function time is billed at 512 MB.

{costs}

The per-combine work is fixed per window, not per invocation: a quiet function pays for every
window in which it uploads something, so the cost per 1M invocations falls as traffic per function
rises (compare the 30-day and 10M-a-day rows). The Standard workflow's state transitions and the
reports each combine rewrites (S3 PUTs) dominate, which is why the default window is
{pipeline_default_window()} s (`COMBINE_WINDOW_SECONDS`, CDK context `combineWindowSeconds`): the
1-minute row shows what fresher reports cost. The layer's own share (raw PUTs, manifest claims,
extension time) is a few cents; the seed's is the whole $10+.

## How to run

`make bench` (full, 6–10 minutes, by the machine's load) or `make bench-quick` (fewer rounds, invocations and files;
about 2 minutes). Both write this file; sections other tools add to it are kept. The first run
with an interpreter adds a discarded warm-up round, so the bytecode cache under `build/bench-pycache/`
holds what every variant imports. The 3.12/3.13
venvs are created once under `build/bench-venvs/` from pyenv's interpreters, with the coverage.py
the layer pins for that Python and this venv's Powertools; missing interpreters are skipped.
"""


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer processes, invocations and files (about 2 minutes)")
    parser.add_argument("--render", action="store_true", help=f"measure nothing: write the document again from the last run ({RAW_RUNS.relative_to(REPO)})")
    parser.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    args = parser.parse_args()
    if args.render:
        found = load_results(RAW_RUNS)
    else:
        found = measure_all(args.quick)
        RAW_RUNS.parent.mkdir(parents=True, exist_ok=True)
        RAW_RUNS.write_text(json.dumps(found, indent=1))
    out = Path(args.out)
    previous = out.read_text() if out.exists() else ""
    document = report.keep_other_sections(previous, report.mark_own_sections(render(found)))
    out.write_text(document)
    print(document)
    print(f"bench finished in {found['elapsed']:.0f} s")
    if found["failed"]:
        print("not measured: " + "; ".join(f"{k} ({v})" for k, v in found["failed"].items()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
