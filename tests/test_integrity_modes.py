"""Line-mode and branch-mode raw files of one group: every line of both is kept, checked against coverage.py's own reports."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import coverage
import pytest
from coverage_wrapper import keys
from coverage_wrapper.merge import LINES_WITHOUT_BRANCHES, merge_data_files

from pipeline_corpus import DATE, TREES, measured_run
from lambda_coverage.services.reporter import Group, render_group

PREFIX = "coverage/"
VERSION = "v2"


def coverage_json(data: Path, out: Path) -> dict:
    """coverage.py's JSON report of `data`, run in the code version's source tree, where its relative paths resolve."""
    settings = out.with_suffix(".rc")
    settings.write_text("[run]\nrelative_files = true\n")
    subprocess.run(
        [sys.executable, "-m", "coverage", "json", f"--data-file={data}", "-o", str(out), f"--rcfile={settings}"],
        cwd=TREES[VERSION], check=True, capture_output=True,
    )  # fmt: skip
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("modes")
    line = measured_run(work / "line.coverage", VERSION, seed=1, branch=False)
    branch = measured_run(work / "branch.coverage", VERSION, seed=2, branch=True)
    return {
        "work": work,
        "line": line,
        "branch": branch,
        "line_report": coverage_json(line, work / "line.json"),
        "branch_report": coverage_json(branch, work / "branch.json"),
    }


def test_coverage_py_itself_refuses_to_combine_the_two_modes(runs, tmp_path):
    copies = []
    for name in ("line", "branch"):
        copies.append(str(shutil.copyfile(runs[name], tmp_path / f".coverage.{name}")))
    with pytest.raises(coverage.exceptions.DataError, match="Can't combine"):
        combined = coverage.Coverage(data_file=str(tmp_path / ".coverage"), config_file=False)
        combined.combine(copies, keep=True)


@pytest.mark.parametrize("order", [("line", "branch"), ("branch", "line")])
def test_merged_data_keeps_the_lines_of_both_and_the_branches_of_the_branch_files(runs, order, tmp_path):
    merged = tmp_path / "merged.sqlite"

    result = merge_data_files([str(runs[name]) for name in order], str(merged))

    assert result.rejected == [] and result.measurements.mixed
    report = coverage_json(merged, tmp_path / "merged.json")
    lines_only, branches = runs["line_report"]["files"], runs["branch_report"]["files"]
    assert report["meta"]["branch_coverage"] is True
    assert set(report["files"]) == set(lines_only) | set(branches)
    gained = 0
    for path, measured in report["files"].items():
        expected = set(lines_only.get(path, {}).get("executed_lines", [])) | set(branches.get(path, {}).get("executed_lines", []))
        assert measured["executed_lines"] == sorted(expected), path
        gained += len(expected - set(branches.get(path, {}).get("executed_lines", [])))
        if path in branches:
            # The line-mode file adds executed lines, never a taken branch.
            assert measured["executed_branches"] == branches[path]["executed_branches"], path
            assert measured["summary"]["num_branches"] == branches[path]["summary"]["num_branches"], path
    assert gained > 0  # the line-mode run executed lines the branch-mode run did not: the case that lost them


def test_a_mixed_group_says_so_in_its_summary_and_reports_the_lines_of_both(runs, s3, bucket, tmp_path):
    merged = tmp_path / "coverage.sqlite"
    merge_data_files([str(runs["line"]), str(runs["branch"])], str(merged))
    files = {}
    for source in sorted(TREES[VERSION].rglob("*.py")):
        content = source.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        s3.put_object(Bucket=bucket, Key=keys.source_blob_key(PREFIX, digest), Body=content)
        files[source.relative_to(TREES[VERSION]).as_posix()] = {"sha256": digest, "size": len(content)}
    manifest = {"function": "orders", "code_version": VERSION, "files": files}
    s3.put_object(Bucket=bucket, Key=keys.sources_manifest_key(PREFIX, "orders", VERSION), Body=json.dumps(manifest))
    base = keys.combined_prefix(PREFIX, "orders", DATE, VERSION)
    s3.upload_file(str(merged), bucket, base + "coverage.sqlite")

    summary = render_group(s3, bucket, PREFIX, Group("orders", DATE, VERSION))

    assert "measured lines only" in summary["branch_note"]
    reported = json.loads(s3.get_object(Bucket=bucket, Key=base + "coverage.json")["Body"].read())["files"]
    for path, measured in runs["line_report"]["files"].items():
        assert set(measured["executed_lines"]) <= set(reported[path]["executed_lines"]), path


def test_data_of_one_mode_carries_no_mixed_mark(runs, tmp_path):
    from coverage_wrapper import datafile

    for name in ("line", "branch"):
        merged = tmp_path / f"{name}.sqlite"
        result = merge_data_files([str(runs[name])], str(merged))
        assert not result.measurements.mixed
        assert datafile.read_meta(str(merged), [LINES_WITHOUT_BRANCHES]) == {}
