"""The layer's branch measurement equals coverage.py's C tracer in branch mode, file by file, on Python 3.12 and 3.13.

A corpus of code covering every construct coverage.py treats as a branch or an arc, the example functions
with the demo's events and the bench handlers and codebase run partially (some paths both ways, some one
way, some never) under both; their JSON reports must agree. See tests/exactness/harness.py for the runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exactness import harness

CORE = harness.layer_core()
SUBJECTS = harness.subjects()
_loaded: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="session")
def shared_base(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    base = tmp_path_factory.getbasetemp()
    return base.parent if worker_id != "master" else base  # the parent is this run's, common to all workers


def runs(python: str, base: Path) -> dict[str, Any]:
    if python not in _loaded:
        _loaded[python] = harness.shared_runs(python, base, CORE)
    return _loaded[python]


def _failure(python: str, subject: harness.Subject, title: str, problems: list[str]) -> str:
    return f"{CORE} on Python {python}, {subject.name}: {title}\n" + "\n".join(problems)


@pytest.mark.parametrize("python", harness.PYTHONS)
def test_layer_measures_with_the_core_under_test(python: str, shared_base: Path) -> None:
    """A layer run that silently fell back to another core would make every comparison vacuous."""
    outcomes = runs(python, shared_base)
    for kind in ("layer", "layer-flushing", "layer-after-import", *harness.MARKED_AHEAD):
        assert outcomes[kind].get("core") == CORE, f"{kind}: measured with {outcomes[kind].get('core')}, not {CORE}\n{outcomes[kind].get('output')}"
        assert outcomes[kind].get("measuring") is True, outcomes[kind].get("output")
        assert outcomes[kind].get("session_errors") == [], outcomes[kind].get("session_errors")
    for kind in ("truth", "truth-after-import"):
        assert "CTracer" in outcomes[kind].get("tracer_during_calls", ""), outcomes[kind].get("output")
    if CORE == "markers":  # an ordinary source tree is instrumented, not handed to the C tracer
        tracer = outcomes["layer"]["tracer_during_calls"]
        assert tracer == "None", f"a trace function ran after the corpus was imported: {tracer}\n{outcomes['layer']['output']}"
        # The marked-ahead runs load what `lambda-coverage mark` built for every module, the others mark at import.
        for kind in ("layer", "layer-after-import", *harness.MARKED_AHEAD):
            marked = outcomes[kind]["modules_marked"]
            ahead = kind in harness.MARKED_AHEAD
            assert (marked["ahead"] > 0, marked["at_import"] > 0) == (ahead, not ahead), f"{kind}: {marked}"


@pytest.mark.parametrize("python", harness.PYTHONS)
def test_layer_totals_equal_ctrace_totals(python: str, shared_base: Path) -> None:
    """The report's totals over every imported file, measuring from before the import."""
    outcomes = runs(python, shared_base)
    truth = outcomes["truth"].get("report", {}).get("totals")
    got = outcomes["layer"].get("report", {}).get("totals")
    assert truth and got, (outcomes["truth"].get("output"), outcomes["layer"].get("output"))
    # Files never imported appear in the truth's report only (coverage.py's `source` option lists them at 0%).
    unimported = {
        name: entry["summary"]
        for name, entry in outcomes["truth"]["report"]["files"].items()
        if name not in outcomes["layer"]["report"]["files"]
    }
    lacking = sorted(name for name, summary in unimported.items() if summary["covered_lines"])
    assert not lacking, f"files the truth measured that the {CORE} core's data lacks: {lacking}"
    for key in ("covered_lines", "covered_branches", "num_partial_branches"):
        assert got[key] == truth[key], f"totals {key}: truth {truth[key]}, {CORE} {got[key]}"
    for key in ("num_statements", "missing_lines", "num_branches", "missing_branches"):
        expected = truth[key] - sum(s[key] for s in unimported.values())
        assert got[key] == expected, f"totals {key}: truth {expected} (imported files), {CORE} {got[key]}"


FLUSHING = {"one-flush": "layer", "flush-per-invocation": "layer-flushing", "marked-ahead": "layer-marked-ahead"}


@pytest.mark.parametrize("subject", SUBJECTS, ids=[s.name for s in SUBJECTS])
@pytest.mark.parametrize("flushing", FLUSHING)
@pytest.mark.parametrize("python", harness.PYTHONS)
def test_layer_reports_what_ctrace_reports(python: str, flushing: str, subject: harness.Subject, shared_base: Path) -> None:
    """Measuring from before the import, as zero-code mode does; saved once at the end, or after every invocation."""
    kind = FLUSHING[flushing]
    outcomes = runs(python, shared_base)
    problems = harness.run_problems(outcomes, ("truth", kind), subject)
    assert not problems, _failure(python, subject, "a run went wrong", problems)
    quoter = harness.Quoter(outcomes["root"])
    differences = []
    for staged in harness.files_of(subject, outcomes):
        found = harness.compare_equal(
            staged,
            harness.file_facts(outcomes["truth"], staged),
            harness.file_facts(outcomes[kind], staged),
            quoter,
            CORE,
        )
        if found:
            differences += [f"{harness.origin_of(staged)} (measuring started before the import, {flushing}):"] + found
    assert not differences, _failure(python, subject, "reports differ", differences)


AFTER_IMPORT = {"marked-at-start": "layer-after-import", "marked-ahead": "layer-marked-ahead-after-import"}


@pytest.mark.parametrize("subject", SUBJECTS, ids=[s.name for s in SUBJECTS])
@pytest.mark.parametrize("marking", AFTER_IMPORT)
@pytest.mark.parametrize("python", harness.PYTHONS)
def test_layer_started_after_import_is_sound_and_exact_in_function_bodies(
    python: str, marking: str, subject: harness.Subject, shared_base: Path
) -> None:
    """Measuring from after the import, as the decorator does: nothing reported that did not run, and inside
    function bodies exactly what coverage.py records when it too starts after the import."""
    kind = AFTER_IMPORT[marking]
    outcomes = runs(python, shared_base)
    problems = harness.run_problems(outcomes, ("truth", "truth-after-import", kind), subject)
    assert not problems, _failure(python, subject, "a run went wrong", problems)
    quoter = harness.Quoter(outcomes["root"])
    bodies = outcomes["truth"]["function_body_lines"]
    differences = []
    for staged in harness.files_of(subject, outcomes):
        found = harness.compare_after_import(
            staged,
            harness.file_facts(outcomes["truth"], staged),
            harness.file_facts(outcomes["truth-after-import"], staged),
            harness.file_facts(outcomes[kind], staged),
            set(bodies.get(staged, [])),
            quoter,
            CORE,
        )
        if found:
            differences += [f"{harness.origin_of(staged)} (corpus imported before measuring started):"] + found
    assert not differences, _failure(python, subject, "reports differ", differences)
