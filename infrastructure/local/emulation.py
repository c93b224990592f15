"""`LocalAws`: the whole pipeline on loopback — moto's server with state machine execution, handlers in-process.

One instance per process: moto's Step Functions interpreter finds Lambda through the process-wide
`MOTO_PORT`, and the handlers read their settings from the process environment, as on Lambda.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass

from typing import Any

from coverage_wrapper import keys
from werkzeug.serving import WSGIRequestHandler, make_server

from .. import pipeline
from . import moto_compat
from .bridge import EventBridgeToStepFunctions
from .faults import FaultPolicy
from .lambda_router import ACCOUNT, LambdaRouter, function_arn

REGION = "us-east-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/lambda-coverage-state-machines"
LOCAL_WINDOW_SECONDS = 2
_FINISHED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request: a combine makes hundreds."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass(frozen=True)
class Endpoints:
    """What a client needs to talk to the emulation (the JSON `lambda-coverage serve` prints)."""

    endpoint: str
    bucket: str
    prefix: str
    intake_state_machine_arn: str
    combine_state_machine_arn: str

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


class LocalAws:
    """Start with `with LocalAws() as aws:` (or `start()`/`stop()`); upload raw files to `aws.bucket`."""

    def __init__(
        self,
        bucket: str | None = None,
        prefix: str = keys.DEFAULT_PREFIX,
        window_seconds: int = LOCAL_WINDOW_SECONDS,
        port: int = 0,
        host: str = "127.0.0.1",
        faults: FaultPolicy | None = None,
    ) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.faults = faults
        self.bucket = bucket or f"lambda-coverage-local-{suffix}"
        self.prefix = keys.normalize_prefix(prefix)
        self.window_seconds = window_seconds
        self._suffix = suffix
        self._host = host
        self._requested_port = port
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._bridge: EventBridgeToStepFunctions | None = None
        self._saved_environ: dict[str, str | None] = {}
        self.router: LambdaRouter | None = None
        self.intake_state_machine_arn = ""
        self.combine_state_machine_arn = ""

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://{self._host}:{self._server.server_port}"

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(self.endpoint, self.bucket, self.prefix, self.intake_state_machine_arn, self.combine_state_machine_arn)

    def __enter__(self) -> LocalAws:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def start(self) -> Endpoints:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        moto_compat.install()
        self.router = LambdaRouter(DomainDispatcherApplication(create_backend_app), pipeline.FUNCTIONS, REGION, self.faults)
        self._server = make_server(self._host, self._requested_port, self.router, threaded=True, request_handler=_QuietHandler)
        self._server_thread = threading.Thread(target=self._server.serve_forever, name="local-aws", daemon=True)
        self._server_thread.start()
        self._set_environ()
        try:
            self._enable_state_machine_execution()
            self._create_resources()
        except BaseException:
            self.stop()
            raise
        return self.endpoints

    def stop(self) -> None:
        if self._bridge is not None:
            self._bridge.stop()
            self._bridge = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._server_thread is not None:
            self._server_thread.join(timeout=5)
            self._server_thread = None
        for name, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environ = {}

    def _set_environ(self) -> None:
        """The handlers' Lambda environment, and the port moto's interpreter calls Lambda on."""
        values = {
            **pipeline.function_environment(self.bucket, self.prefix, self.window_seconds),
            "MOTO_PORT": str(self._server.server_port),
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", REGION),
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        }
        for name, value in values.items():
            self._saved_environ.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    # -- clients and resources -------------------------------------------------------------------

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        )

    def _enable_state_machine_execution(self) -> None:
        import urllib.request

        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/config",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).read()

    def _create_resources(self) -> None:
        s3, sfn, events, sqs = (self.client(s) for s in ("s3", "stepfunctions", "events", "sqs"))
        s3.create_bucket(Bucket=self.bucket)
        s3.put_bucket_notification_configuration(
            Bucket=self.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        function_arns = {f.logical_name: function_arn(REGION, f.function_name) for f in pipeline.FUNCTIONS}
        combine = sfn.create_state_machine(
            name=f"{pipeline.COMBINE.state_machine_name}-{self._suffix}",
            type=pipeline.COMBINE.type,
            roleArn=ROLE_ARN,
            definition=pipeline.render_definition(pipeline.COMBINE, pipeline.definition_substitutions(function_arns, "")),
        )
        self.combine_state_machine_arn = combine["stateMachineArn"]
        substitutions = pipeline.definition_substitutions(function_arns, self.combine_state_machine_arn)
        intake = sfn.create_state_machine(
            name=f"{pipeline.INTAKE.state_machine_name}-{self._suffix}",
            type=pipeline.INTAKE.type,
            roleArn=ROLE_ARN,
            definition=pipeline.render_definition(pipeline.INTAKE, substitutions),
        )
        self.intake_state_machine_arn = intake["stateMachineArn"]
        queue_url = sqs.create_queue(QueueName=f"lambda-coverage-intake-bridge-{self._suffix}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rule = f"lambda-coverage-raw-object-created-{self._suffix}"
        events.put_rule(Name=rule, EventPattern=json.dumps(pipeline.raw_object_created_pattern(self.bucket, self.prefix)))
        events.put_targets(Rule=rule, Targets=[{"Id": "intake-bridge", "Arn": queue_arn}])
        self._bridge = EventBridgeToStepFunctions(sqs, sfn, queue_url, self.intake_state_machine_arn, self.faults.events if self.faults else None)
        self._bridge.start()

    # -- driving the pipeline --------------------------------------------------------------------

    def start_combine(self, execution_input: Any, name: str | None = None) -> str:
        """Start the combine state machine with any input (as from the console); its execution ARN.

        Unnamed, like `aws stepfunctions start-execution` without `--name`: the emulation names it with a UUID as AWS does.
        """
        named = {"name": name} if name else {}
        return self.client("stepfunctions").start_execution(
            stateMachineArn=self.combine_state_machine_arn, input=json.dumps(execution_input), **named
        )["executionArn"]

    def start_rebuild(self, function: str, date: str, version: str | None = None) -> str:
        request = {"function": function, "date": date, "mode": "rebuild"}
        if version:
            request["version"] = version
        return self.start_combine(request)

    def start_daily(self, date: str | None = None) -> str:
        """What the daily schedule sends (no date = yesterday UTC)."""
        return self.start_combine({**pipeline.DAILY_SCHEDULE_INPUT, **({"date": date} if date else {})})

    def wait_for_execution(self, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
        """The finished execution's description (status, output or error and cause).

        `timeout` bounds the time without a new event in the execution's history, not its duration.
        """
        sfn = self.client("stepfunctions")
        last_progress, seen = time.monotonic(), -1
        while True:
            description = sfn.describe_execution(executionArn=execution_arn)
            if description["status"] in _FINISHED:
                return description
            events = len(sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"])
            if events != seen:
                last_progress, seen = time.monotonic(), events
            elif time.monotonic() - last_progress > timeout:
                raise TimeoutError(f"{execution_arn} still {description['status']}, no new event for {timeout} s")
            time.sleep(0.1)

    def executions(self, state_machine_arn: str | None = None) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        arns = [state_machine_arn] if state_machine_arn else [self.intake_state_machine_arn, self.combine_state_machine_arn]
        found = []
        for arn in arns:
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
                found += page["executions"]
        return found

    def unmerged_raw_keys(self) -> list[str]:
        """Raw files not yet listed in their group's combined manifest."""
        s3 = self.client("s3")
        manifests: dict[tuple[str, str, str], set[str]] = {}
        pending = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=keys.raw_root(self.prefix)):
            for item in page.get("Contents", []):
                raw = keys.parse_raw_key(item["Key"], self.prefix)
                if raw is None:
                    pending.append(item["Key"])
                    continue
                if raw.group not in manifests:
                    manifests[raw.group] = self._manifest_keys(s3, *raw.group)
                if item["Key"] not in manifests[raw.group]:
                    pending.append(item["Key"])
        return pending

    def _manifest_keys(self, s3: Any, function: str, date: str, version: str) -> set[str]:
        try:
            body = s3.get_object(Bucket=self.bucket, Key=keys.combined_manifest_key(self.prefix, function, date, version))["Body"]
        except s3.exceptions.NoSuchKey:
            return set()
        return set(json.loads(body.read()).get("raw_keys", []))

    def wait_until_idle(self, timeout: float = 120) -> None:
        """Block until no event is queued, no execution runs, and every raw file is in a combined manifest.

        `timeout` bounds how long the pipeline may go without progress (an execution finishing, an event
        delivered, a raw file merged), not how long it may take: on a machine shared with other work the
        pipeline is slower, not stuck. When it is stuck, the error names each stuck group, its files
        outside the manifest, and the last combine execution that covered the group with its status and cause.
        """
        last_progress, marker = time.monotonic(), None
        while True:
            executions = self.executions()
            running = [e["executionArn"] for e in executions if e["status"] == "RUNNING"]
            bridge_busy = self._bridge is not None and self._bridge.busy
            pending = [] if running or bridge_busy else self.unmerged_raw_keys()
            if not (running or bridge_busy or pending):
                # Confirm: an upload's event may have been in flight during the checks above.
                time.sleep(0.2)
                if not (self._bridge is not None and self._bridge.busy) and not any(
                    e["status"] == "RUNNING" for e in self.executions()
                ):
                    return
                continue
            progress = (len(executions) - len(running), self._bridge.delivered if self._bridge else 0, len(pending))
            if progress != marker:
                last_progress, marker = time.monotonic(), progress
            elif time.monotonic() - last_progress > timeout:
                pending = pending or self.unmerged_raw_keys()
                raise TimeoutError(
                    f"pipeline made no progress for {timeout} s: {len(running)} running executions, bridge busy={bridge_busy}, "
                    f"{len(pending)} raw files outside a manifest" + "".join(f"\n  {line}" for line in self.stuck_groups(pending))
                )
            time.sleep(0.2)

    def stuck_groups(self, pending: list[str], limit: int = 5) -> list[str]:
        """One line per group with raw files outside its manifest: the files, and its last combine's status and cause."""
        by_group: dict[tuple[str, str, str], list[str]] = {}
        for key in pending:
            raw = keys.parse_raw_key(key, self.prefix)
            by_group.setdefault(raw.group if raw else ("?", "?", "?"), []).append(key)
        sfn = self.client("stepfunctions")
        described = [sfn.describe_execution(executionArn=e["executionArn"]) for e in self.executions(self.combine_state_machine_arn)]
        lines = []
        for (function, date, version), group_keys in sorted(by_group.items())[:limit]:
            covering = sorted((d for d in described if _covers(d.get("input"), function, date, version)), key=lambda d: d["startDate"])
            if covering:
                last = covering[-1]
                cause = f", {last.get('error')}: {str(last.get('cause'))[:400]}" if last.get("error") else ""
                latest = f"last combine {last['name']} {last['status']} (started {last['startDate']:%H:%M:%S}{cause})"
            else:
                latest = "no combine execution ever covered it"
            lines.append(f"group {function}/{date}/{version}: {len(group_keys)} files {group_keys[:3]}; {len(covering)} combines, {latest}")
        return lines


def _covers(execution_input: Any, function: str, date: str, version: str) -> bool:
    """Whether a combine execution's input takes this group (a window or rebuild of it, or the daily sweep of its date)."""
    try:
        request = json.loads(execution_input or "null")
    except ValueError:
        return False
    if not isinstance(request, dict) or request.get("date") != date:
        return False
    if request.get("mode") == "daily":
        return True
    return request.get("function") == function and request.get("version") in (None, version)
