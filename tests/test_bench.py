"""The benchmark's pure pieces: cost model arithmetic, pipeline counts, statistics and table formatting."""

import math

import pytest

from bench import cost, report, runtime


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
    assert report.verdict(1.2046, 1.2) == "MISSED by 0.4%"  # never "MISSED by 0%"


def test_paired_ratios_divide_each_round_by_the_same_rounds_baseline():
    assert report.paired_ratios({0: 110.0, 1: 300.0, 2: 50.0}, {0: 100.0, 1: 200.0}) == [1.1, 1.5]
    assert report.paired_ratios({0: 1.0}, {0: 0.0}) == []
    assert report.fmt_ratio([1.1, 1.5, 1.2]) == "1.200× (1.100–1.500)"


def test_added_ratio_compares_time_added_over_bare_with_the_floors():
    assert report.added_ratio(130.0, 100.0, 150.0) == pytest.approx(0.6)
    assert report.added_ratio(190.0, 100.0, 150.0) == pytest.approx(1.8)
    assert math.isnan(report.added_ratio(120.0, 100.0, 100.0))


def _run(python, shape, variant, round_, median_us, core="", **extra):
    return {"python": python, "shape": shape, "variant": variant, "round": round_, "median_us": median_us, "mean_us": median_us,
            "between_us": 0.1 if variant == "bare" else 0.5, "core": core, "flush_mode": "extension", **extra}


def test_warm_table_puts_the_default_first_and_judges_it_on_per_round_ratios():
    from bench.__main__ import warm_section

    runs = []
    for round_, bare in enumerate((100.0, 200.0, 100.0)):
        for shape in runtime.SHAPES:
            runs += [_run("3.12", shape, "bare", round_, bare), _run("3.12", shape, "default", round_, bare * 1.02, "markers"),
                     _run("3.12", shape, "zero-default", round_, bare * 1.04, "markers"),
                     _run("3.12", shape, "ctrace-branch", round_, bare * 8, "ctrace"), _run("3.12", shape, "sysmon-line", round_, bare, "sysmon")]
    goals: list = []
    text = warm_section(runs, goals)
    header, _, first = text.splitlines()[:3]
    assert header.index("**default**, decorator") < header.index("**default**, zero-code") < header.index("`ctrace`, branch") < header.index("`sysmon`, line")
    # A slow round moves bare and the default alike: the ratio stays 1.02 in every round.
    assert "**1.020× (1.020–1.020)**" in first and "**1.040× (1.040–1.040)**" in first and "8.000× (8.000–8.000)" in first
    assert "markers" in first and "| +0.4 / +0.4 |" in first  # asking for the next invocation, after the response
    assert [g[2] for g in goals] == ["met"] * 2 * len(runtime.SHAPES)
    assert goals[0][0] == "Warm, default configuration (branch coverage, `markers`), decorator, Python 3.12, cpu handler"
    assert goals[1][0] == "Warm, default configuration (branch coverage, `markers`), zero-code, Python 3.12, cpu handler"


def test_warm_goal_is_missed_when_the_default_costs_more_than_five_percent():
    from bench.__main__ import warm_section

    runs = [r for round_ in range(2) for shape in runtime.SHAPES
            for r in (_run("3.13", shape, "bare", round_, 10.0), _run("3.13", shape, "default", round_, 11.0, "markers"))]
    goals: list = []
    text = warm_section(runs, goals)
    assert {g[2] for g in goals} == {"MISSED by 5%"}
    assert text.splitlines()[2].count("—") >= 3  # zero-code, ctrace and sysmon were not measured: no figure is made up


def test_variants_compare_the_default_with_ctrace_branch_and_sysmon_line_where_they_exist():
    assert [v[0] for v in runtime.variants_for("3.11")] == ["bare", "default", "zero-default"]
    assert [v[0] for v in runtime.variants_for("3.12")] == ["bare", "default", "zero-default", "ctrace-branch", "sysmon-line"]
    assert [v[0] for v in runtime.variants_for("3.14")] == ["bare", "default", "zero-default", "sysmon-line"]
    assert dict((v[0], v[2]) for v in runtime.variants_for("3.13"))["default"] == {}  # nothing set, as a new user


def test_sections_written_by_other_tools_survive_a_rerun():
    previous = "# B\n\nintro\n\n## 1. Warm\n\nold\n\n## 2. Cold start and 3. memory\n\nold\n\n## Scale\n\nlimits\n\n## How to run\n\nold\n"
    generated = report.mark_own_sections("# B\n\nnew\n\n## 1. Warm\n\nnew\n\n## How to run\n\nrun\n")
    once = report.keep_other_sections(previous, generated)
    assert [t for t, _ in report.sections(once)] == ["1. Warm", "Scale", "How to run"]  # a renamed own section goes
    assert "limits" in once and "old" not in once
    numbered_by_another_tool = once.replace("## Scale", "## 8. Scale")
    assert "## 8. Scale" in report.keep_other_sections(numbered_by_another_tool, generated)
    assert report.keep_other_sections(once, generated) == once


def test_generated_codebase_is_deterministic_valid_python_of_the_asked_size(tmp_path):
    from bench import codebase

    first = codebase.write(tmp_path / "a", 40)
    codebase.write(tmp_path / "b", 40)
    assert first["modules"] == 40 and 7000 <= first["lines"] <= 10000
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.py"))
    assert len(files) == first["files"]
    for relative in files:
        text = (tmp_path / "a" / relative).read_text()
        assert text == (tmp_path / "b" / relative).read_text()
        compile(text, str(relative), "exec")
    assert len({e["seed"] for e in codebase.events(5)}) == 5


def test_powertools_handler_serves_each_of_its_three_routes():
    import json
    import sys

    sys.path.insert(0, str(runtime.BENCH_DIR))
    try:
        import rest_api
    finally:
        sys.path.remove(str(runtime.BENCH_DIR))
    responses = [rest_api.handler(event, None) for event in rest_api.EVENTS]
    assert [r["statusCode"] for r in responses] == [200, 200, 200]
    assert [json.loads(r["body"]) for r in responses] == [{"id": "7", "items": 4, "total": 66.5}, {"id": "50", "total": 9.0}, {"status": "ok"}]


def test_warm_goals_are_judged_in_one_process_where_a_bare_copy_ran_beside_the_handler():
    from bench.__main__ import warm_section

    runs = []
    for round_, bare in enumerate((100.0, 180.0)):  # separate processes disagree with each other under load
        for shape in runtime.SHAPES:
            runs += [_run("3.13", shape, "bare", round_, bare),
                     _run("3.13", shape, "default", round_, 120.0, "markers", ab_ratios=[1.01, 1.02, 1.9, 1.03]),
                     _run("3.13", shape, "zero-default", round_, 120.0, "markers", ab_ratios=[1.08, 1.07, 1.09, 1.06])]
    goals: list = []
    text = warm_section(runs, goals)
    together = text.split("**In one process.**")[1]
    assert "**1.025× (1.025–1.025)**" in together  # the block that flushed (1.9) is left out by the median
    assert [g[2] for g in goals[:2]] == ["met", "MISSED by 2%"]  # 1.075 over 1.05
    assert goals[0][1].startswith("1.025× (1.025–1.025) in one process; separate processes")


def test_missed_goals_are_explained_only_where_they_are_missed():
    from bench.__main__ import explain_missed

    runs = [_run("3.12", shape, variant, 0, us, "markers") for shape in runtime.SHAPES
            for variant, us in (("bare", 10.0), ("default", 11.3), ("zero-default", 11.2), ("sysmon-line", 11.3))]
    assert explain_missed([("Warm, …, Python 3.12, io handler", "1.01×", "met", "≤ 1.05×")], runs, []) == "Every goal is met."
    text = explain_missed([("Warm, default configuration (branch coverage, `markers`), decorator, Python 3.12, tiny handler", "1.13×", "MISSED by 8%", "≤ 1.05×")], runs, [])
    assert "3.12 tiny: +1.3 / +1.2 µs" in text and "the clock's step" in text
    assert "Call-heavy code" not in text and "Cold start with a package" not in text


def test_warm_up_runs_once_per_interpreter_and_section(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "PYCACHE", tmp_path)
    pythons = {"3.12": "/venvs/py3.12/bin/python", "3.13": "/venvs/py3.13/bin/python"}
    assert runtime.needs_warm_up(pythons, "runtime")
    runtime.warmed(pythons, "runtime")
    assert not runtime.needs_warm_up(pythons, "runtime")
    assert runtime.needs_warm_up(pythons, "package")
    assert runtime.needs_warm_up(dict(pythons, **{"3.11": "/usr/bin/python3.11"}), "runtime")


def test_a_saved_run_loads_back_with_numeric_merge_sizes(tmp_path):
    import json

    from bench.__main__ import load_results

    saved = tmp_path / "runs.json"
    saved.write_text(json.dumps({"merge": {"sizes": {1000: {"seconds": {}}, 10000: {"seconds": {}}}}, "pipe": None}))
    assert sorted(load_results(saved)["merge"]["sizes"]) == [1000, 10000]


def test_traffic_draws_each_route_about_as_often_as_its_weight_and_the_same_requests_every_run():
    from coverage_wrapper.contexts import route

    from bench import traffic

    requests = traffic.mixed(2000)
    assert requests == traffic.mixed(2000)
    labels = [route(event) for event in requests]
    assert set(labels) == set(traffic.ROUTE_WEIGHTS)
    for label, weight in traffic.ROUTE_WEIGHTS.items():
        assert abs(labels.count(label) / len(labels) - weight) < 0.04
    changes = sum(a != b for a, b in zip(labels, labels[1:])) / (len(labels) - 1)
    assert abs(changes - (1 - sum(w * w for w in traffic.ROUTE_WEIGHTS.values()))) < 0.04


def test_powertools_handler_answers_the_mixed_traffic_with_found_missing_and_refused_requests():
    import sys

    from bench import traffic

    sys.path.insert(0, str(runtime.BENCH_DIR))
    try:
        import rest_api
    finally:
        sys.path.remove(str(runtime.BENCH_DIR))
    statuses = {rest_api.handler(event, None)["statusCode"] for event in traffic.mixed(300)}
    assert statuses == {200, 400, 404}


def _contexts_run(python, shape, variant, round_, ratio, core="markers"):
    return {"python": python, "shape": shape, "variant": variant, "round": round_, "median_us": 20.0, "core": core,
            "ab_mean_ratios": [ratio, ratio * 5, ratio]}  # a block with a flush or a pause: left out by the median


def test_contexts_table_divides_each_labelled_round_by_the_same_rounds_contexts_off_and_says_what_it_means():
    from bench.__main__ import contexts_section

    runs = []
    for round_, load in enumerate((1.0, 1.5)):  # a loaded round moves every configuration alike
        for shape in runtime.CONTEXT_SHAPES:
            runs += [_contexts_run("3.12", shape, "off", round_, 1.05 * load), _contexts_run("3.12", shape, "route", round_, 2.1 * load),
                     _contexts_run("3.12", shape, "route-sampled", round_, (1.26 if shape == "powertools" else 1.05) * load)]
    text = contexts_section(runs)
    header, _, powertools, cpu = text.split("\n\n")[0].splitlines()
    assert header.split(" | ")[-2:] == ["**`route` ÷ off**", "**`route`, sample rate 0.1 ÷ off** |"]
    assert powertools.startswith("| 3.12 | powertools | markers |")
    assert powertools.endswith("| **2.000× (2.000–2.000)** | **1.200× (1.200–1.200)** |")
    assert "| 1.312× (1.050–1.575) |" in powertools  # off ÷ bare copy over the two rounds
    assert cpu.endswith("| **2.000× (2.000–2.000)** | **1.000× (1.000–1.000)** |")
    meaning = text.split("\n\n")[1]
    assert "2.00× (powertools) and 2.00× (cpu)" in meaning and "1.20× and 1.00×" in meaning
    assert "still over 1.05× contexts off on the powertools handler." in meaning
    assert "ctrace" not in meaning  # no figures from a tracer's Python, no sentence about it


def test_a_contexts_worker_labels_each_request_with_its_route_and_times_an_unmeasured_copy(tmp_path):
    import sys

    import coverage

    outbox = runtime.extension_present(str(tmp_path / "outbox"))
    copy = runtime.copy_handlers({}, tmp_path / "bare-copy")
    env = runtime.worker_environment(outbox, {"COVERAGE_CONTEXTS": "route", "BENCH_TRAFFIC": "300", "BENCH_BARE_COPY": str(copy)})
    record = runtime.run_worker(sys.executable, "layer", "powertools", 60, env, flushes=1)
    assert len(record["ab_mean_ratios"]) == 4 and all(ratio > 0 for ratio in record["ab_mean_ratios"])
    [written] = (tmp_path / "outbox").rglob("*.coverage")
    data = coverage.CoverageData(str(written))
    data.read()
    assert data.measured_contexts() == {"", "GET /orders/{order_id}", "POST /orders", "GET /health"}
    [measured] = data.measured_files()
    assert measured.endswith("rest_api.py")  # not the copy
    source = (runtime.BENCH_DIR / "rest_api.py").read_text().splitlines()
    health = 1 + source.index('    return {"status": "ok"}')
    data.set_query_contexts(["GET /health"])
    assert health in data.lines(measured)
    data.set_query_contexts(["POST /orders"])
    assert health not in data.lines(measured)
