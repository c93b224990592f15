"""The README's recipe for Codecov and Coveralls, run as written: a group's reports downloaded with `lambda-coverage
reports`, uploaded by codecov-cli (dry run) as the `production` flag, every path naming a file of the repository."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from coverage_wrapper import keys
from coverage_wrapper.datafile import relativize
from coverage_wrapper.outbox import Outbox
from coverage_wrapper.shipper import Destination, upload_snapshot
from coverage_wrapper.sources import scan_config, scan_sources
from layer_harness import FIXTURES, layer_env

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
SECTION = "## Send production coverage to Codecov or Coveralls"
PREFIX = "coverage/"
FUNCTION = "orders-fn"
DATE = "2026-11-24"
FUNCTION_FOLDER = "src/orders/"

ORDERS = '''\
from coverage_wrapper import coverage_handler

from pricing import price


@coverage_handler
def lambda_handler(event, context):
    total = price(event["items"])
    if total > 100:
        return {"total": total, "size": "big"}
    return {"total": total, "size": "small"}
'''
PRICING = '''\
def price(items):
    total = 0
    for item in items:
        total += item["qty"] * item["unit"]
    return total
'''
UNUSED = '''\
def refund(order):
    return -order["total"]
'''
EVENTS = [{"items": [{"qty": 2, "unit": 3}]}, {"items": [{"qty": 1, "unit": 3}]}]


def recipe_blocks() -> dict[str, list[str]]:
    """The fenced code blocks of the README's recipe section, by language."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    blocks: dict[str, list[str]] = {}
    for language, body in re.findall(r"```(\w+)\n(.*?)```", text[start : end if end != -1 else None], re.DOTALL):
        blocks.setdefault(language, []).append(body)
    return blocks


def git(repository: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repository), *args], check=True, capture_output=True, text=True).stdout


def repository_checkout(tmp_path: Path) -> tuple[Path, str]:
    """A repository whose function lives in src/orders/, committed: the checkout the recipe runs in."""
    repository = tmp_path / "repository"
    function = repository / FUNCTION_FOLDER
    function.mkdir(parents=True)
    (repository / "README.md").write_text("orders service\n")
    (repository / "tests").mkdir()
    (repository / "tests" / "test_pricing.py").write_text("def test_nothing():\n    pass\n")
    (function / "orders.py").write_text(ORDERS)
    (function / "pricing.py").write_text(PRICING)
    (function / "unused.py").write_text(UNUSED)
    git(repository, "init", "-q")
    git(repository, "add", ".")
    git(repository, "-c", "user.name=ci", "-c", "user.email=ci@example.com", "commit", "-q", "-m", "orders")
    return repository, git(repository, "rev-parse", "HEAD").strip()


def publish_group(s3, bucket: str, repository: Path, sha: str, tmp_path: Path) -> None:
    """What the pipeline holds after a day of traffic on the deployed commit: the layer's snapshot of the
    function (as deployed from src/orders/) and combined coverage.py data of its invocations."""
    function = repository / FUNCTION_FOLDER
    data = tmp_path / "combined.coverage"
    subprocess.run([sys.executable, str(FIXTURES / "measure_directly.py"), str(function), "orders.lambda_handler",
                    json.dumps(EVENTS), str(data)], env=layer_env(function, tmp_path, COVERAGE_ENABLED="false"),
                   cwd=function, check=True, capture_output=True)
    relativize(str(data), str(function))
    upload_snapshot(s3, Destination(bucket, PREFIX), Outbox(str(tmp_path / "outbox")), FUNCTION, sha,
                    scan_sources(str(function)), config=tuple(scan_config(str(function))))
    s3.put_object(Bucket=bucket, Key=keys.combined_data_key(PREFIX, FUNCTION, DATE, sha), Body=data.read_bytes())


def report_with_prefix(bucket: str, sha: str, moto_endpoint: str, monkeypatch) -> dict:
    """The pipeline's Report Lambda, configured with the recipe's COVERAGE_REPORT_PATH_PREFIX."""
    from lambda_coverage.services.reporter.handler import report_handler

    monkeypatch.setenv("COVERAGE_S3_BUCKET", bucket)
    monkeypatch.setenv("COVERAGE_REPORT_PATH_PREFIX", FUNCTION_FOLDER)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    return report_handler({"function": FUNCTION, "date": DATE, "version": sha}, None)["summary"]


def run_recipe(repository: Path, bucket: str, moto_endpoint: str) -> str:
    """The README's shell block in the checkout, with codecov-cli in dry-run mode (nothing leaves the machine).

    Installing codecov-cli is the one line left out: the dev environment has it.
    """
    (block,) = recipe_blocks()["bash"]
    script = "\n".join(line for line in block.splitlines() if not line.startswith("pip install"))
    script = script.replace("codecovcli ", "codecovcli -v ", 1).replace(" do-upload ", " do-upload --dry-run ", 1)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               AWS_ENDPOINT_URL=moto_endpoint, COVERAGE_BUCKET=bucket, FUNCTION=FUNCTION, DATE=DATE,
               CODECOV_TOKEN="00000000-0000-0000-0000-000000000000")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=repository, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def lcov_records(text: str) -> dict[str, list[int]]:
    """lcov.info as Coveralls' lcov parser reads it: SF opens a record, DA lines, end_of_record closes it."""
    records: dict[str, list[int]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("SF:"):
            assert current is None, f"record of {current} not closed"
            current = line[3:]
            records[current] = []
        elif line.startswith("DA:"):
            assert current is not None, "DA outside a record"
            records[current].append(int(line[3:].split(",")[0]))
        elif line == "end_of_record":
            assert current is not None, "end_of_record outside a record"
            current = None
    assert current is None, f"record of {current} not closed"
    return records


def test_the_readme_block_uploads_the_groups_report_as_the_production_flag(s3, bucket, moto_endpoint, tmp_path, monkeypatch):
    repository, sha = repository_checkout(tmp_path)
    publish_group(s3, bucket, repository, sha, tmp_path)
    report_with_prefix(bucket, sha, moto_endpoint, monkeypatch)

    output = run_recipe(repository, bucket, moto_endpoint)

    started = next(line for line in output.splitlines() if "Starting upload processing" in line)
    upload = json.loads(started.split("--- ", 1)[1])
    assert upload["dry_run"] is True and upload["command"] == "do-upload"
    assert upload["flags"] == ["production"]
    assert upload["commit_sha"] == sha
    assert upload["name"] == f"production {FUNCTION} {DATE}"
    assert upload["network_root_folder"] == str(repository)
    group = repository / "prod-coverage" / "combined" / FUNCTION / DATE / sha
    assert "Found 1 coverage files to report" in output
    assert f"> {group / 'coverage.xml'}" in output
    assert "Data NOT sent to Codecov because of dry-run option" in output


def test_every_path_in_lcov_and_cobertura_names_a_file_of_the_repository(s3, bucket, moto_endpoint, tmp_path, monkeypatch):
    repository, sha = repository_checkout(tmp_path)
    publish_group(s3, bucket, repository, sha, tmp_path)
    summary = report_with_prefix(bucket, sha, moto_endpoint, monkeypatch)
    run_recipe(repository, bucket, moto_endpoint)
    group = repository / "prod-coverage" / "combined" / FUNCTION / DATE / sha
    tracked = set(git(repository, "ls-files").split())
    function_files = {path for path in tracked if path.startswith(FUNCTION_FOLDER) and path.endswith(".py")}

    lcov = lcov_records((group / "lcov.info").read_text())
    cobertura = ET.parse(group / "coverage.xml").getroot()
    classes = {c.get("filename"): [int(line.get("number")) for line in c.iter("line")] for c in cobertura.iter("class")}

    assert summary["path_prefix"] == FUNCTION_FOLDER
    # Every file of the function, the one nothing imported included; only files the repository tracks.
    assert set(lcov) == set(classes) == function_files
    assert [s.text for s in cobertura.iter("source")] == ["."]
    for path, lines in [*lcov.items(), *classes.items()]:
        # Numbered as the repository's file: each line a report names holds a statement there.
        source = (repository / path).read_text().splitlines()
        assert lines and all(1 <= number <= len(source) and source[number - 1].strip() for number in lines), (path, lines)

    # Coveralls' step names the same group's lcov.info and the same flag.
    coveralls = next(yaml.safe_load(b)[0] for b in recipe_blocks()["yaml"] if "coverallsapp" in b)
    assert coveralls["uses"].startswith("coverallsapp/github-action@")
    assert coveralls["with"]["flag-name"] == "production" and coveralls["with"]["format"] == "lcov"
    named = (coveralls["with"]["file"].replace("${{ env.FUNCTION }}", FUNCTION).replace("${{ env.DATE }}", DATE)
             .replace("${{ github.sha }}", sha))
    assert (repository / named) == group / "lcov.info"
    codecov_yml = next(yaml.safe_load(b) for b in recipe_blocks()["yaml"] if "flag_management" in b)
    assert codecov_yml["flag_management"]["individual_flags"] == [{"name": "production", "carryforward": True}]
