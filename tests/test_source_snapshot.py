"""The source snapshot of a code version: blobs before the manifest, so a manifest never names a missing blob."""

from __future__ import annotations

import json
import time

from coverage_wrapper import keys
from coverage_wrapper.outbox import Outbox
from coverage_wrapper.shipper import Destination, upload_snapshot
from coverage_wrapper.sources import scan_sources


def _app(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    for n in range(3):
        (app / f"mod{n}.py").write_text(f"VALUE = {n}\n")
    return scan_sources(str(app))


def test_a_snapshot_cut_short_leaves_no_manifest_and_the_next_environment_completes_it(tmp_path, s3, bucket):
    files = _app(tmp_path)
    destination = Destination(bucket, "coverage/")
    manifest_key = keys.sources_manifest_key("coverage/", "fn", "v1")
    # The first environment runs out of time before any upload (its SHUTDOWN deadline has passed).
    first = Outbox(str(tmp_path / "env-1"))
    assert upload_snapshot(s3, destination, first, "fn", "v1", files, deadline=time.monotonic() - 1) == "postponed"
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    # The next environment of the same code version uploads everything, manifest last.
    second = Outbox(str(tmp_path / "env-2"))
    assert upload_snapshot(s3, destination, second, "fn", "v1", files) == "uploaded"
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    for entry in manifest["files"].values():
        s3.head_object(Bucket=bucket, Key=keys.source_blob_key("coverage/", entry["sha256"]))
    # A third finds it all there and changes nothing.
    assert upload_snapshot(s3, destination, Outbox(str(tmp_path / "env-3")), "fn", "v1", files) == "exists"
    assert upload_snapshot(s3, destination, second, "fn", "v1", files) == "known"


class _KilledAfter:
    """The S3 client of a process killed after `puts` uploads (the rest of its calls never happen)."""

    def __init__(self, client, puts: int) -> None:
        self._client, self._left = client, puts

    def put_object(self, **kwargs):
        if self._left == 0:
            raise SystemExit("killed")
        self._left -= 1
        return self._client.put_object(**kwargs)


def test_a_process_killed_mid_snapshot_never_leaves_a_manifest_naming_missing_blobs(tmp_path, s3, bucket):
    files = _app(tmp_path)
    destination = Destination(bucket, "coverage/")
    for puts in range(len(files) + 1):
        version = f"v{puts}"
        try:
            upload_snapshot(_KilledAfter(s3, puts), destination, Outbox(str(tmp_path / f"k{puts}")), "fn", version, files)
        except SystemExit:
            pass
        listed = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
        manifest_key = keys.sources_manifest_key("coverage/", "fn", version)
        if manifest_key in listed:
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
            missing = [p for p, e in manifest["files"].items() if keys.source_blob_key("coverage/", e["sha256"]) not in listed]
            assert not missing, f"killed after {puts} uploads: the manifest names missing blobs {missing}"
