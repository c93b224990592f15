"""The pipeline a running `lambda-coverage serve` keeps up, found from its endpoint alone and driven like `LocalAws`."""

from __future__ import annotations

import json
from typing import Any

from coverage_wrapper import keys

from .. import pipeline
from ..errors import CommandError
from .emulation import REGION, Endpoints, LocalAws

# Never real credentials for a server on this machine: the emulation accepts any.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def local_client(service: str, endpoint: str) -> Any:
    """A boto3 client for the emulation at `endpoint`: its region and dummy credentials, whatever the environment holds."""
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, **LOCAL_CREDENTIALS)


class ServedPipeline(LocalAws):
    """The pipeline of another process's `serve`: `wait_until_idle`, `unmerged_raw_keys`, `stuck_groups` and the
    starters work as on an embedded `LocalAws`, through the AWS APIs only (its event bridge is not visible here:
    a raw file waiting for its event is outside every manifest, which the wait already counts)."""

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(bucket=endpoints.bucket, prefix=endpoints.prefix)
        self._endpoint = endpoints.endpoint
        self.intake_state_machine_arn = endpoints.intake_state_machine_arn
        self.combine_state_machine_arn = endpoints.combine_state_machine_arn

    @property
    def endpoint(self) -> str:
        return self._endpoint

    def start(self) -> Endpoints:
        return self.endpoints

    def stop(self) -> None:
        """The serving process owns the emulation: nothing to stop here."""

    def client(self, service: str) -> Any:
        return local_client(service, self._endpoint)


def find_served_pipeline(endpoint: str) -> ServedPipeline:
    """The pipeline at `endpoint`: the EventBridge rule that starts intake names the bucket and the raw prefix,
    and the state machines are the project's by name. One line saying what to do when none is there."""
    events, sfn = local_client("events", endpoint), local_client("stepfunctions", endpoint)
    found: list[tuple[str, str]] = []
    for page in events.get_paginator("list_rules").paginate():
        for rule in page["Rules"]:
            watched = _raw_prefix_watched(rule.get("EventPattern"))
            if watched:
                found.append(watched)
    machines = [m for page in sfn.get_paginator("list_state_machines").paginate() for m in page["stateMachines"]]
    combine = [m["stateMachineArn"] for m in machines if m["name"].startswith(pipeline.COMBINE.state_machine_name)]
    intake = [m["stateMachineArn"] for m in machines if m["name"].startswith(pipeline.INTAKE.state_machine_name)]
    if len(found) != 1 or len(combine) != 1 or len(intake) != 1:
        what = "no" if not (found or combine) else "more than one"
        raise CommandError(
            f"{what} lambda-coverage pipeline at {endpoint}: start one with `lambda-coverage serve` and pass the endpoint it prints"
        )
    bucket, prefix = found[0]
    return ServedPipeline(Endpoints(endpoint, bucket, prefix, intake[0], combine[0]))


def _raw_prefix_watched(event_pattern: str | None) -> tuple[str, str] | None:
    """(bucket, prefix) of a rule with the pipeline's pattern (S3 Object Created under `{p}raw/`), else None."""
    try:
        pattern = json.loads(event_pattern or "null")
        bucket = pattern["detail"]["bucket"]["name"][0]
        raw_prefix = pattern["detail"]["object"]["key"][0]["prefix"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if pattern.get("source") != ["aws.s3"] or not raw_prefix.endswith("raw/"):
        return None
    prefix = raw_prefix[: -len("raw/")]
    return (bucket, prefix) if keys.raw_root(prefix) == raw_prefix else None
