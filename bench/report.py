"""Pure pieces of BENCHMARKS.md: statistics, markdown tables, goal verdicts, and pipeline counts for the cost model."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from .cost import GET_CLASS, PUT_CLASS, PipelineCounts, Workload, express_gb_s

Round = TypeVar("Round")

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


def fmt_ratio(ratios: Iterable[float]) -> str:
    """A ratio's median with its spread, e.g. `1.012× (0.998–1.030)`."""
    found = spread(ratios)
    return f"{found['median']:.3f}× ({found['low']:.3f}–{found['high']:.3f})"


def paired_ratios(values: Mapping[Round, float], baselines: Mapping[Round, float]) -> list[float]:
    """value ÷ baseline for each key (a round) both have: each ratio is between figures measured side by side."""
    return [values[key] / baselines[key] for key in sorted(values, key=str) if baselines.get(key, 0) > 0]


def added_ratio(value: float, bare: float, floor: float) -> float:
    """(value − bare) ÷ (floor − bare): the time a variant adds over bare against the time the floor adds."""
    if floor - bare <= 0:
        return float("nan")  # the floor added nothing measurable: no ratio to give
    return (value - bare) / (floor - bare)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub markdown table; cells are str()'d, pipes escaped."""
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, headers)) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def sections(markdown: str) -> list[tuple[str, str]]:
    """A document's `## ` sections as (title, text with its heading), in order; text before the first is left out."""
    found: list[tuple[str, str]] = []
    for line in markdown.splitlines(keepends=True):
        if line.startswith("## "):
            found.append((line[3:].strip(), line))
        elif found:
            found[-1] = (found[-1][0], found[-1][1] + line)
    return found


OWN_SECTIONS_MARK = "<!-- sections written by make bench: "


def mark_own_sections(generated: str) -> str:
    """`generated` with a comment after its first line naming its sections, so a later run knows which are its own."""
    titles = " | ".join(title for title, _ in sections(generated))
    first, _, rest = generated.partition("\n")
    return f"{first}\n{OWN_SECTIONS_MARK}{titles} -->\n{rest}"


def own_titles(markdown: str) -> set[str]:
    """The sections a previous run of the benchmark wrote (before the mark existed: the numbered ones, Goals, How to run)."""
    for line in markdown.splitlines():
        if line.startswith(OWN_SECTIONS_MARK):
            return {title.strip() for title in line[len(OWN_SECTIONS_MARK):].removesuffix("-->").split(" | ")}
    return {title for title, _ in sections(markdown) if title[:1].isdigit() or title in ("Goals", "How to run")}


def keep_other_sections(previous: str, generated: str, before: str = "How to run") -> str:
    """`generated` with every section of `previous` that no run of the benchmark wrote (other tools add those), placed before `before`."""
    ours = {title for title, _ in sections(generated)} | own_titles(previous)
    kept = [text.rstrip("\n") + "\n\n" for title, text in sections(previous) if title not in ours]
    if not kept:
        return generated
    marker = f"## {before}\n"
    at = generated.find(marker)
    if at < 0:
        return generated.rstrip("\n") + "\n\n" + "".join(kept).rstrip("\n") + "\n"
    return generated[:at] + "".join(kept) + generated[at:]


def verdict(value: float, goal: float, higher_is_better: bool = False) -> str:
    """'met', or 'MISSED by N%' relative to the goal."""
    if value != value:  # NaN: nothing was measured
        return "not measured"
    if (value >= goal) if higher_is_better else (value <= goal):
        return "met"
    missed = (goal / value - 1) if higher_is_better else (value / goal - 1)
    return f"MISSED by {missed * 100:.1f}%" if missed < 0.01 else f"MISSED by {missed * 100:.0f}%"


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
