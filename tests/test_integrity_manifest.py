"""A crafted source manifest of one code version never fails the reports or the rebuild of the day's other groups."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest
from coverage_wrapper import keys

from lambda_coverage.local import LocalAws
from pipeline_corpus import DATE, TREES, measured_run


@pytest.fixture(scope="module")
def aws(fake_aws_credentials):
    with LocalAws(window_seconds=2) as emulation:
        yield emulation


def _publish_sources(s3, aws, function: str, version: str, extra: dict[str, bytes]) -> None:
    """The layer's snapshot of the version's tree, plus `extra` entries as a crafted manifest would hold them."""
    files = {}
    contents = {p.relative_to(TREES[version]).as_posix(): p.read_bytes() for p in TREES[version].rglob("*.py")}
    for path, content in {**contents, **extra}.items():
        digest = hashlib.sha256(content).hexdigest()
        s3.put_object(Bucket=aws.bucket, Key=keys.source_blob_key(aws.prefix, digest), Body=content)
        files[path] = {"sha256": digest, "size": len(content)}
    manifest = {"function": function, "code_version": version, "files": files}
    s3.put_object(Bucket=aws.bucket, Key=keys.sources_manifest_key(aws.prefix, function, version), Body=json.dumps(manifest))


def test_a_file_and_folder_manifest_of_one_version_fails_neither_its_rebuild_nor_the_other_versions(aws, tmp_path):
    s3 = aws.client("s3")
    _publish_sources(s3, aws, "catalog", "v1", {"shop/cart.py/evil.py": b"planted = True\n"})
    _publish_sources(s3, aws, "catalog", "v2", {})
    for version in ("v1", "v2"):
        for seq in range(2):
            path = measured_run(tmp_path / f"{version}-{seq}.coverage", version, seed=300 + seq)
            flushed = datetime.strptime(f"{DATE} 09:00:{seq:02d}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
            key = keys.raw_key(aws.prefix, "catalog", flushed, version, "0badf00d", seq)
            s3.upload_file(str(path), aws.bucket, key)
    aws.wait_until_idle(timeout=90)

    execution = aws.wait_for_execution(aws.start_rebuild("catalog", DATE), timeout=90)

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    summaries = {
        version: json.loads(s3.get_object(Bucket=aws.bucket, Key=keys.combined_prefix(aws.prefix, "catalog", DATE, version) + "summary.json")["Body"].read())
        for version in ("v1", "v2")
    }
    assert summaries["v1"]["files_without_source"] == 0 and summaries["v2"]["files_without_source"] == 0
    assert summaries["v1"]["skipped_source_entries"] == [
        {"path": "shop/cart.py/evil.py", "reason": "the source manifest has this path both as a file and as a folder"}
    ]
    assert summaries["v2"]["skipped_source_entries"] == []
