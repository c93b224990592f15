"""`make test-all` on AWS: invoke the deployed examples, then wait for their raw files and the dashboard."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

# Events that walk different paths through each example (the seed's load-test operations).
EVENTS: dict[str, list[dict[str, Any]]] = {
    "SimpleCoverageExample": [{"name": "TestUser"}, {}, {"name": ""}],
    "ContextManagerExample": [{"action": "check", "items": ["apple"]}, {"action": "update", "items": {"apple": 1}}, {"action": "unknown"}],
    "HealthCheckExample": [{"path": "/health"}, {"httpMethod": "GET", "path": "/items"}, {"httpMethod": "POST", "body": "{}"}],
    "AdvancedUsageExample": [
        {"order": {"lines": [{"sku": "a", "price": 10.0, "quantity": 2}], "country": "DE"}},
        {"order": {"lines": []}},
        {"order": None},
    ],
}


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def invoke_examples(lambda_client: Any, outputs: dict[str, str], rounds: int) -> dict[str, dict[str, int]]:
    """Invoke every example `rounds` times per event; counts of ok and failed invocations per example."""
    results: dict[str, dict[str, int]] = {}
    for example, events in EVENTS.items():
        function_name = outputs[f"{example}FunctionName"]
        tally = results.setdefault(function_name, {"ok": 0, "failed": 0})
        for _ in range(rounds):
            for event in events:
                response = lambda_client.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
                tally["failed" if response.get("FunctionError") else "ok"] += 1
    return results


def wait_for_keys(s3: Any, bucket: str, prefix: str, timeout_s: float) -> list[str]:
    """Keys under `prefix`, polling until at least one appears or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lambda_coverage.cdk.smoke", description=__doc__)
    parser.add_argument("--stack", default="LambdaCoverageLayerTestStack")
    parser.add_argument("--rounds", type=int, default=2, help="invocations per event and example")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for raw files and the dashboard")
    args = parser.parse_args(argv)
    import boto3

    outputs = stack_outputs(boto3.client("cloudformation"), args.stack)
    bucket, prefix = outputs["CoverageBucketName"], outputs["CoveragePrefix"]
    invoked = invoke_examples(boto3.client("lambda"), outputs, args.rounds)
    for function_name, tally in invoked.items():
        print(f"{function_name}: {tally['ok']} ok, {tally['failed']} function errors")
    s3 = boto3.client("s3")
    raw = wait_for_keys(s3, bucket, f"{prefix}raw/", args.timeout)
    print(f"raw files: {len(raw)} under s3://{bucket}/{prefix}raw/")
    dashboard = wait_for_keys(s3, bucket, outputs["DashboardKey"], args.timeout) if raw else []
    print(f"dashboard: {'s3://' + bucket + '/' + outputs['DashboardKey'] if dashboard else 'not written yet'}")
    return 0 if raw and dashboard else 1


if __name__ == "__main__":
    sys.exit(main())
