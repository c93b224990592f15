"""The emulation's cost per upload: intake, window combines and reports of a burst, in CPU time (not wall time, which
the machine's other work decides). moto parsed the combine definition with ANTLR at every execution and built a
client per task: a second of CPU per upload, so 2,000 uploads took 711 s to drain."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from coverage_wrapper import keys

from lambda_coverage.local import LocalAws
from pipeline_corpus import measured_run

UPLOADS = 60


def test_a_burst_of_uploads_costs_the_emulation_a_fraction_of_a_cpu_second_each(tmp_path):
    body = measured_run(tmp_path / "run.coverage", "v1", seed=42).read_bytes()
    with LocalAws(window_seconds=2) as aws:
        s3 = aws.client("s3")
        # Warm: handlers imported and definitions met once, as in a running emulation.
        aws.wait_for_execution(aws.start_rebuild("warm-up", datetime.now(timezone.utc).strftime("%Y-%m-%d")), timeout=60)
        now = datetime.now(timezone.utc)
        cpu = time.process_time()
        for seq in range(UPLOADS):
            key = keys.raw_key(aws.prefix, f"burst-{seq % 3}", now - timedelta(seconds=seq), "v1", "b0a710ad", seq)
            s3.put_object(Bucket=aws.bucket, Key=key, Body=body)

        aws.wait_until_idle(timeout=300)

        per_upload = (time.process_time() - cpu) / UPLOADS
        assert aws.unmerged_raw_keys() == []
    assert per_upload < 0.35, f"{per_upload * 1000:.0f} ms of CPU per upload"
