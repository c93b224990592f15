"""What one raw file may claim is bounded by something real, and merging is linear in what it holds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from coverage_wrapper import datafile, keys
from coverage_wrapper.merge import Measurements, merge_data_files
from coverage_wrapper.validation import MAX_LINE_NUMBER, MAX_MEASURED_POINTS, source_line_limits, validate_data_file

from pipeline_corpus import DATE
from lambda_coverage.services.settings import PipelineSettings
from lambda_coverage.services.uploader import intake_object

PREFIX = "coverage/"


def _lines_file(path: Path, paths: int, top: int) -> Path:
    datafile.write_data_file(str(path), lines={f"pkg/m{i}.py": range(1, top + 1) for i in range(paths)})
    return path


def test_a_file_claiming_every_line_up_to_a_million_is_quarantined_at_intake(s3, bucket, tmp_path):
    key = f"{PREFIX}raw/orders/{DATE}/v1/101500Z-0a1b2c3d-000001.coverage"
    s3.upload_file(str(_lines_file(tmp_path / "absurd.coverage", 1, 1_000_007)), bucket, key)

    result = intake_object(s3, PipelineSettings(bucket=bucket, prefix=PREFIX), bucket, key)

    assert result.status == "quarantined" and result.quarantine["reason"] == "absurd_line_numbers"
    reason = json.loads(s3.get_object(Bucket=bucket, Key=keys.quarantine_reason_key(PREFIX, key))["Body"].read())
    assert "pkg/m0.py claims line 1000007" in reason["message"]


def test_the_line_cap_is_exact_at_its_boundary(tmp_path):
    assert validate_data_file(str(_lines_file(tmp_path / "at.coverage", 1, MAX_LINE_NUMBER))) is None
    above = validate_data_file(str(_lines_file(tmp_path / "above.coverage", 1, MAX_LINE_NUMBER + 1)))
    assert above.code == "absurd_line_numbers"
    arcs = tmp_path / "arcs.coverage"
    datafile.write_data_file(str(arcs), arcs={"pkg/a.py": [(-1, 1), (1, MAX_LINE_NUMBER + 1)]})
    assert validate_data_file(str(arcs)).code == "absurd_line_numbers"


def test_a_known_source_bounds_line_numbers_by_its_length(tmp_path):
    source = b"def f(x):\n    return x\n"  # two lines
    limits = source_line_limits({"pkg/m0.py": {"sha256": "0" * 64, "size": len(source)}, "odd.py": "not an entry"})
    assert limits == {"pkg/m0.py": len(source) + 1}

    assert validate_data_file(str(_lines_file(tmp_path / "two.coverage", 1, 2)), line_limits={"pkg/m0.py": 3}) is None
    beyond = validate_data_file(str(_lines_file(tmp_path / "beyond.coverage", 1, 40)), line_limits=limits)
    assert beyond.code == "absurd_line_numbers" and "its source's length" in beyond.message
    merged = merge_data_files([str(tmp_path / "beyond.coverage"), str(tmp_path / "two.coverage")], line_limits=limits)
    assert [Path(p).name for p in merged.merged] == ["two.coverage"]
    assert merged.measurements.executed_lines() == {"pkg/m0.py": [1, 2]}


def test_a_file_claiming_more_points_than_the_cap_is_refused(tmp_path):
    per_file = MAX_LINE_NUMBER
    files = MAX_MEASURED_POINTS // per_file
    assert validate_data_file(str(_lines_file(tmp_path / "at.coverage", files, per_file))) is None
    over = validate_data_file(str(_lines_file(tmp_path / "over.coverage", files + 1, per_file)))
    assert over.code == "too_many_points" and str(MAX_MEASURED_POINTS) in over.message


def _merge_seconds(path: Path) -> float:
    """CPU seconds of merging one file and listing its lines, best of three (CPU time: other load does not count)."""
    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        measurements = Measurements()
        measurements.add_file(str(path))
        measurements.executed_lines()
        best = min(best, time.process_time() - began)
    return best


def test_merging_grows_linearly_with_the_lines_a_file_claims(tmp_path):
    small = _merge_seconds(_lines_file(tmp_path / "small.coverage", 1, 10_000))
    large = _merge_seconds(_lines_file(tmp_path / "large.coverage", 1, 160_000))

    # Sixteen times the lines: about 16-22 times the work here when linear (sorting adds a little),
    # 120 times with the per-line shifts merging used to do.
    assert large / small < 48, (small, large)


@pytest.mark.parametrize("paths", [1, 12])
def test_a_file_at_the_caps_merges_to_exactly_its_lines(paths, tmp_path):
    source = _lines_file(tmp_path / "capped.coverage", paths, MAX_LINE_NUMBER)

    result = merge_data_files([str(source)], str(tmp_path / "merged.sqlite"))

    assert result.rejected == []
    contents = datafile.read_contents(str(tmp_path / "merged.sqlite"))
    assert contents.paths == sorted(f"pkg/m{i}.py" for i in range(paths))
    assert all(contents.lines(p) == list(range(1, MAX_LINE_NUMBER + 1)) for p in contents.paths)
