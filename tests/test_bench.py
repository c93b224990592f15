"""The benchmark's pure pieces: cost model arithmetic, pipeline counts, statistics and table formatting."""

import math

import pytest

from bench import cost, report


def test_dollars_prices_each_line_item_at_the_stated_us_east_1_price():
    work = cost.Workload(s3_put=1000, s3_get=1000, events=1e6, express_requests=1e6, express_gb_s=1,
                         transitions=1000, lambda_requests=1e6, lambda_gb_s=1)
    items = cost.dollars(work)
    assert items["S3 PUT/LIST"] == pytest.approx(0.005)
    assert items["S3 GET/HEAD"] == pytest.approx(0.0004)
    assert items["EventBridge events"] == pytest.approx(1.0)
    assert items["Step Functions Express"] == pytest.approx(1.0 + 0.00001667)
    assert items["Step Functions Standard"] == pytest.approx(0.025)
    assert items["Lambda requests"] == pytest.approx(0.20)
    assert items["Lambda GB-s"] == pytest.approx(0.0000133334)
    assert items["total"] == pytest.approx(sum(v for k, v in items.items() if k != "total"))


def test_express_duration_is_billed_in_100_ms_steps_of_64_mb():
    assert cost.express_gb_s(0.01) == pytest.approx(0.1 * 64 / 1024)
    assert cost.express_gb_s(0.25) == pytest.approx(0.3 * 64 / 1024)
    assert cost.express_gb_s(0.25, memory_mb=100) == pytest.approx(0.3 * 128 / 1024)


def test_combines_per_day_never_exceed_files_or_windows():
    assert cost.combines_per_day(0, 60) == 0
    assert cost.combines_per_day(1, 60) == pytest.approx(1, rel=1e-3)
    assert cost.combines_per_day(1e9, 60) == pytest.approx(1440)
    assert cost.combines_per_day(3000, 60) == pytest.approx(1440 * (1 - math.exp(-3000 / 1440)))


def test_layer_cost_counts_raw_files_manifest_claims_and_combines():
    counts = cost.PipelineCounts(per_raw_file=cost.Workload(s3_get=2, lambda_requests=1), per_combine=cost.Workload(transitions=10, s3_put=20))
    scenario = cost.Scenario("t", environments=100, files_per_environment=3, window_seconds=86400, upload_seconds=0)
    found = cost.layer_cost(scenario, counts)
    assert found["raw_files"] == 300
    assert found["combines"] == pytest.approx(1 * (1 - math.exp(-300)) + 1)  # one window a day + the daily sweep
    puts = 300 + 100 + 20 * found["combines"]
    assert found["items"]["S3 PUT/LIST"] == pytest.approx(puts / 1000 * 0.005)
    assert found["items"]["Step Functions Standard"] == pytest.approx(10 * found["combines"] / 1000 * 0.025)
    assert found["items"]["EventBridge events"] == pytest.approx(300 / 1e6)


def test_seed_cost_is_two_puts_per_invocation_plus_response_path_time():
    found = cost.seed_cost(1e6, added_ms_per_invocation=100, function_memory_mb=1024)
    assert found["items"]["S3 PUT/LIST"] == pytest.approx((2e6 + 1000) / 1000 * 0.005)
    assert found["items"]["Lambda GB-s"] == pytest.approx(1e6 * 0.1 * 0.0000133334)


def test_pipeline_counts_split_intake_from_combine_and_average_them():
    burst = {
        "raw_files": 10, "combines": 2,
        "calls": {"validate|s3|GetObject": 10, "validate|s3|HeadObject": 20, "report|s3|PutObject": 8, "plan|s3|ListObjectsV2": 2},
        "lambda_invocations": {"validate": 10, "report": 2},
        "intake_seconds": [0.05] * 10,
        "combine_history": [{"state_transitions": 11}, {"state_transitions": 13}],
    }
    counts = report.pipeline_counts([burst], {"validate": 500, "report": 1000}, {"validate": 512, "report": 1024}, "validate")
    assert counts.per_raw_file.s3_get == 3
    assert counts.per_raw_file.lambda_gb_s == pytest.approx(0.5 * 0.5)
    assert counts.per_raw_file.express_requests == 1
    assert counts.per_combine.transitions == 12
    assert counts.per_combine.s3_put == 5 and counts.per_combine.events == 4
    assert counts.per_combine.lambda_gb_s == pytest.approx(1.0)


def test_spread_uses_percentiles_from_ten_values_and_min_max_below():
    assert report.spread([3, 1, 2]) == {"median": 2, "low": 1, "high": 3, "n": 3}
    found = report.spread(range(100))
    assert (found["low"], found["high"]) == (10, 90)
    assert report.fmt_spread([1.0, 2.0, 4.0]) == "2.0 (1.0–4.0)"


def test_table_is_github_markdown_with_pipes_escaped():
    text = report.table(("a", "b"), [(1, "x|y")])
    assert text.splitlines() == ["| a | b |", "| --- | --- |", "| 1 | x\\|y |"]


def test_verdict_says_met_or_by_how_much_it_missed():
    assert report.verdict(1.04, 1.05) == "met"
    assert report.verdict(1.26, 1.05) == "MISSED by 20%"
    assert report.verdict(2.0, 1.0, higher_is_better=True) == "met"
    assert report.verdict(0.5, 1.0, higher_is_better=True) == "MISSED by 100%"
    assert report.verdict(float("nan"), 1.0) == "not measured"
