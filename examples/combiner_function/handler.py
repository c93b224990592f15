"""Coverage combiner: merges the raw files under a prefix with `combine_coverage_files`."""

import json
import os
from datetime import datetime, timedelta, timezone

from coverage_wrapper import combine_coverage_files, coverage_handler


def default_prefix(event):
    if event.get("prefix"):
        return event["prefix"]
    day = event.get("date") or (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")
    base = os.environ.get("COVERAGE_S3_PREFIX", "coverage/")
    return f"{base}raw/{event.get('function', 'simple-function')}/{day}/"


@coverage_handler
def coverage_combiner_handler(event, context):
    bucket = os.environ.get("COVERAGE_S3_BUCKET")
    if not bucket:
        return {"statusCode": 500, "body": json.dumps({"error": "COVERAGE_S3_BUCKET is not set"})}
    prefix = default_prefix(event)
    output_key = event.get("output_key") or f"{os.environ.get('COVERAGE_S3_PREFIX', 'coverage/')}examples/combined-report.json"
    result = combine_coverage_files(bucket_name=bucket, prefix=prefix, output_key=output_key)
    return {"statusCode": 200, "body": json.dumps(result)}
