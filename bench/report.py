"""Pure pieces of BENCHMARKS.md: statistics, markdown tables, goal verdicts, and pipeline counts for the cost model."""

from __future__ import annotations

import statistics
from typing import Iterable, Sequence

from .cost import GET_CLASS, PUT_CLASS, PipelineCounts, Workload, express_gb_s

GOALS = {"warm": 1.05, "cold_vs_floor": 1.2, "rss_mb": 15.0, "merge_vs_combine": 1.0, "dollars_per_m": 0.25}


def spread(values: Iterable[float]) -> dict[str, float]:
    """Median and spread: 10th–90th percentile with ten or more values, else min–max (stated as such)."""
    ordered = sorted(values)
    if not ordered:
        return {"median": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    if len(ordered) >= 10:
        low, high = ordered[len(ordered) // 10], ordered[(len(ordered) * 9) // 10]
    else:
        low, high = ordered[0], ordered[-1]
    return {"median": statistics.median(ordered), "low": low, "high": high, "n": len(ordered)}


def fmt_spread(values: Iterable[float], digits: int = 1) -> str:
    found = spread(values)
    return f"{found['median']:.{digits}f} ({found['low']:.{digits}f}–{found['high']:.{digits}f})"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub markdown table; cells are str()'d, pipes escaped."""
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, headers)) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def verdict(value: float, goal: float, higher_is_better: bool = False) -> str:
    """'met', or 'MISSED by N%' relative to the goal."""
    if value != value:  # NaN: nothing was measured
        return "not measured"
    if (value >= goal) if higher_is_better else (value <= goal):
        return "met"
    missed = (goal / value - 1) if higher_is_better else (value / goal - 1)
    return f"MISSED by {missed * 100:.0f}%"


def pipeline_counts(bursts: list[dict], lambda_ms: dict[str, float], memory_mb: dict[str, int], validate_function: str) -> PipelineCounts:
    """Per raw file (intake: Validate Lambda, Express execution) and per combine execution, from measured bursts."""
    files = sum(b["raw_files"] for b in bursts)
    combines = sum(b["combines"] for b in bursts) or 1
    per_file, per_combine = Workload(), Workload()
    for burst in bursts:
        for joined, count in burst["calls"].items():
            function, service, operation = joined.split("|")
            target = per_file if function == validate_function else per_combine
            if service == "s3" and operation in PUT_CLASS:
                target.s3_put += count
                if operation in ("PutObject", "CopyObject", "CompleteMultipartUpload"):
                    target.events += count  # the bucket sends every Object Created to EventBridge
            elif service == "s3" and operation in GET_CLASS:
                target.s3_get += count
        for function, invocations in burst["lambda_invocations"].items():
            target = per_file if function == validate_function else per_combine
            target.lambda_requests += invocations
            target.lambda_gb_s += invocations * lambda_ms.get(function, 0) / 1000 * memory_mb.get(function, 1024) / 1024
        for seconds in burst["intake_seconds"]:
            per_file.express_requests += 1
            per_file.express_gb_s += express_gb_s(seconds)
        for history in burst["combine_history"]:
            per_combine.transitions += history["state_transitions"]
    return PipelineCounts(per_raw_file=per_file.scaled(1 / files), per_combine=per_combine.scaled(1 / combines))
