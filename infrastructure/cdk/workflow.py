"""The pipeline on AWS: the catalog's Lambdas, the intake and combine state machines, their rules, DLQ and alarms."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from aws_cdk import ArnFormat, Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from coverage_wrapper.keys import normalize_prefix
from lambda_coverage import pipeline

from .nag import acknowledge, resource_wildcard

PIPELINE_ARCHITECTURE = lambda_.Architecture.ARM_64
PIPELINE_RUNTIME = lambda_.Runtime.PYTHON_3_12
POWERTOOLS_ACCOUNT = "017000801446"
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python312-arm64"
DEFAULT_POWERTOOLS_LAYER_VERSION = 27
LOG_RETENTION = logs.RetentionDays.ONE_MONTH

# Which prefixes each service touches, from the S3 layout; a catalog entry gets its service's scope.
SERVICE_SCOPES: dict[str, dict[str, tuple[str, ...]]] = {
    # Intake: reads the upload, moves a bad one to quarantine (copy + delete).
    "lambda_coverage.services.uploader": {"read": ("raw/",), "write": ("quarantine/",), "delete": ("raw/",), "list": ("raw/",)},
    # Combiner: lists and reads raw files, writes combined data and partials; a file that fails the
    # merge goes to quarantine like at intake, and merged partials are deleted after the commit. Each
    # commit folds its day into the version's since-deploy data under versions/.
    "lambda_coverage.services.combiner": {
        "read": ("raw/", "combined/", "versions/"),
        "write": ("combined/", "quarantine/", "versions/"),
        "delete": ("combined/", "raw/"),
        "list": ("raw/", "combined/"),
    },
    # Reporter: renders from combined data and source snapshots; owns reports/ and daily/ (it reads
    # its own history.json back) and replaces stale HTML pages under combined/. The dashboard counts
    # recent quarantined uploads and shows their reasons, so it lists and reads quarantine/. A version's
    # since-deploy reports are written beside its data under versions/.
    "lambda_coverage.services.reporter": {
        "read": ("combined/", "sources/", "reports/", "daily/", "quarantine/", "versions/"),
        "write": ("combined/", "reports/", "daily/", "versions/"),
        "delete": ("combined/", "versions/"),
        "list": ("combined/", "daily/", "reports/", "quarantine/", "versions/"),
    },
}


def powertools_layer_arn(version: int) -> str:
    """The AWS-managed Powertools for AWS Lambda (Python) v3 layer for python3.12 on arm64, in the stack's region."""
    return f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{POWERTOOLS_ACCOUNT}:layer:{POWERTOOLS_LAYER_NAME}:{version}"


def service_of(handler: str) -> str:
    """`lambda_coverage.services.uploader.handler.validate_handler` → `lambda_coverage.services.uploader`."""
    return ".".join(handler.split(".")[:3])


def stage_services() -> Path:
    """The pipeline code asset: `lambda_coverage.services` and its own copy of `coverage_wrapper`.

    The shared code (keys, validation, merge, the data file) comes from this asset, never from the coverage
    layer attached to the functions: a pipeline deployed with an older layer never mixes versions. The layer
    only brings coverage.py.
    """
    import coverage_wrapper

    import lambda_coverage.services

    staged = Path(tempfile.mkdtemp(prefix="cdk-pipeline-code-"))
    atexit.register(shutil.rmtree, staged, True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    package = staged / "lambda_coverage"
    shutil.copytree(Path(lambda_coverage.services.__file__).parent, package / "services", ignore=ignore)
    (package / "__init__.py").write_text('"""The pipeline\'s Lambda code: `lambda_coverage.services`."""\n')
    shutil.copytree(Path(coverage_wrapper.__file__).parent, staged / "coverage_wrapper", ignore=ignore)
    return staged


def grant_prefixes(role: iam.IRole, bucket: s3.IBucket, prefix: str, scope: Mapping[str, Iterable[str]]) -> None:
    """Object access under `{prefix}{area}` for each listed area; nothing bucket-wide."""
    prefix = normalize_prefix(prefix)
    actions = {"read": ["s3:GetObject"], "write": ["s3:PutObject"], "delete": ["s3:DeleteObject"]}
    for kind, verbs in actions.items():
        areas = list(scope.get(kind, ()))
        if areas:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=verbs, resources=[bucket.arn_for_objects(f"{prefix}{area}*") for area in areas])
            )
    for area in sorted({area for areas in scope.values() for area in areas}):
        acknowledge(
            role,
            resource_wildcard(role, bucket.arn_for_objects(f"{prefix}{area}*")),
            f"Objects are created per function/date/version at run time: the grant is every object under {prefix}{area} and nothing else in the bucket.",
        )
    areas = list(scope.get("list", ()))
    if areas:
        # IfExists: listings name one of these prefixes, while the implicit ListBucket check S3 makes
        # to answer 404 (not 403) for a missing key still passes; the services treat 404 as "gone".
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLikeIfExists": {"s3:prefix": [f"{prefix}{area}*" for area in areas]}},
            )
        )


class PipelineFunctions(Construct):
    """One Lambda per catalog entry of infrastructure/pipeline.py: arm64, Python 3.12, Powertools + coverage layers."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        prefix: str,
        coverage_layer: lambda_.ILayerVersion,
        powertools_layer_version: int = DEFAULT_POWERTOOLS_LAYER_VERSION,
        window_seconds: int = pipeline.DEFAULT_WINDOW_SECONDS,
        ephemeral: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        powertools = lambda_.LayerVersion.from_layer_version_arn(self, "PowertoolsLayer", powertools_layer_arn(powertools_layer_version))
        code = lambda_.Code.from_asset(os.fspath(stage_services()))
        environment = pipeline.function_environment(bucket.bucket_name, prefix, window_seconds)
        self.functions: dict[str, lambda_.Function] = {}
        for entry in pipeline.FUNCTIONS:
            service = service_of(entry.handler)
            log_group = logs.LogGroup(
                self,
                f"{entry.logical_name}Logs",
                retention=LOG_RETENTION,
                removal_policy=RemovalPolicy.DESTROY if ephemeral else RemovalPolicy.RETAIN,
            )
            function = lambda_.Function(
                self,
                entry.logical_name,
                description=entry.description,
                handler=entry.handler,
                code=code,
                runtime=PIPELINE_RUNTIME,
                architecture=PIPELINE_ARCHITECTURE,
                memory_size=entry.memory_mb,
                timeout=Duration.seconds(entry.timeout_seconds),
                layers=[powertools, coverage_layer],
                environment={**environment, "POWERTOOLS_SERVICE_NAME": f"coverage-{service.split('.')[1]}"},
                tracing=lambda_.Tracing.ACTIVE,
                log_group=log_group,
                logging_format=lambda_.LoggingFormat.JSON,
            )
            assert function.role is not None  # a Function given no role makes its own
            grant_prefixes(function.role, bucket, prefix, SERVICE_SCOPES[service])
            self.functions[entry.logical_name] = function
        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions.",
        )
        acknowledge(
            self,
            "AwsSolutions-L1",
            "Python 3.12 on purpose: the AWS-managed Powertools layer used here is the python312 build; the coverage layer serves 3.9-3.14 (3.9-3.13 run by make validate, 3.14 structure-checked).",
        )


class Workflow(Construct):
    """Intake (EXPRESS) and Combine (STANDARD) from statemachine/*.asl.json, started by S3 events and the daily schedule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        prefix: str,
        functions: dict[str, lambda_.Function],
        ephemeral: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.DESTROY if ephemeral else RemovalPolicy.RETAIN
        function_arns = {name: function.function_arn for name, function in functions.items()}
        self.state_machines: dict[str, sfn.StateMachine] = {}
        # Combine first: the intake's definition needs its ARN (pipeline.STATE_MACHINES is in that order).
        for machine in pipeline.STATE_MACHINES:
            combine_arn = self.state_machines["Combine"].state_machine_arn if "Combine" in self.state_machines else ""
            substitutions = pipeline.definition_substitutions(function_arns, combine_arn)
            needed = pipeline.placeholders(machine)
            log_group = logs.LogGroup(self, f"{machine.logical_name}Logs", retention=LOG_RETENTION, removal_policy=removal)
            # Combine starts executions of itself (follow-ups, and its Distributed Map's child executions): its
            # role names its ARN, which must therefore be known without a reference to the state machine.
            own_name = f"{machine.state_machine_name}-{Stack.of(self).stack_name}" if machine is pipeline.COMBINE else None
            state_machine = sfn.StateMachine(
                self,
                machine.logical_name,
                state_machine_name=own_name,
                definition_body=sfn.DefinitionBody.from_file(os.fspath(machine.definition_path)),
                definition_substitutions={name: substitutions[name] for name in sorted(needed)},
                state_machine_type=sfn.StateMachineType[machine.type],
                logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
                tracing_enabled=True,
            )
            for name, function in functions.items():
                if pipeline.FUNCTIONS_BY_NAME[name].arn_substitution in needed:
                    function.grant_invoke(state_machine)
                    acknowledge(
                        state_machine,
                        resource_wildcard(state_machine, f"{function.function_arn}:*"),
                        "The `:*` form is this one function's qualified ARNs (versions, aliases) that lambda:invoke may name; no other function.",
                    )
            acknowledge(
                state_machine,
                "AwsSolutions-IAM5[Resource::*]",
                "X-Ray tracing and CloudWatch Logs delivery (logs:CreateLogDelivery and friends) support no resource-level permissions.",
            )
            if pipeline.COMBINE_STATE_MACHINE_ARN in needed:
                self.state_machines["Combine"].grant_start_execution(state_machine)
            if own_name is not None:
                self._grant_own_executions(state_machine, own_name)
            self.state_machines[machine.logical_name] = state_machine
        self.intake = self.state_machines["Intake"]
        self.combine = self.state_machines["Combine"]

        # Deliveries EventBridge gives up on land here instead of vanishing.
        self.dead_letter_queue = sqs.Queue(
            self,
            "FailedDeliveries",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the EventBridge targets; a DLQ of a DLQ would only move the same messages again.",
        )
        pattern = pipeline.raw_object_created_pattern(bucket.bucket_name, prefix)
        self.raw_object_created_rule = events.Rule(
            self,
            "RawObjectCreated",
            description="S3 Object Created under the raw prefix starts the intake",
            event_pattern=event_pattern_from(pattern),
            targets=[targets.SfnStateMachine(self.intake, dead_letter_queue=self.dead_letter_queue, retry_attempts=8, max_event_age=Duration.hours(2))],
        )
        self.daily_rule = events.Rule(
            self,
            "DailySweep",
            description="Daily sweep of the previous UTC day: combine every group, roll-up and dashboard",
            schedule=events.Schedule.expression(pipeline.DAILY_SCHEDULE_EXPRESSION),
            targets=[
                targets.SfnStateMachine(
                    self.combine,
                    input=events.RuleTargetInput.from_object(dict(pipeline.DAILY_SCHEDULE_INPUT)),
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=8,
                )
            ],
        )
        five_minutes = Duration.minutes(5)
        self.alarms = [self._alarm(f"{name}ExecutionsFailed", f"The {name.lower()} state machine had failed executions",
                                   machine.metric_failed(period=five_minutes, statistic="Sum"))
                       for name, machine in self.state_machines.items()]
        self.alarms += [self._alarm(f"{name}ExecutionsTimedOut", f"The {name.lower()} state machine had executions that timed out",
                                    machine.metric_timed_out(period=five_minutes, statistic="Sum"))
                        for name, machine in self.state_machines.items()]
        self.alarms.append(self._alarm(
            "FailedDeliveriesVisible",
            "EventBridge could not start a state machine; the event is in the dead-letter queue",
            self.dead_letter_queue.metric_approximate_number_of_messages_visible(period=five_minutes, statistic="Maximum"),
        ))

    @staticmethod
    def _grant_own_executions(state_machine: sfn.StateMachine, name: str) -> None:
        """Start executions of itself (a follow-up combine; the Distributed Map's child executions), and watch and
        stop the map's children, as Step Functions requires for a Distributed Map."""
        stack = Stack.of(state_machine)
        own_arn = stack.format_arn(service="states", resource="stateMachine", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME)
        children = stack.format_arn(service="states", resource="execution", resource_name=f"{name}/*", arn_format=ArnFormat.COLON_RESOURCE_NAME)
        state_machine.add_to_role_policy(iam.PolicyStatement(actions=["states:StartExecution"], resources=[own_arn]))
        state_machine.add_to_role_policy(iam.PolicyStatement(actions=["states:DescribeExecution", "states:StopExecution"], resources=[children]))
        acknowledge(
            state_machine,
            resource_wildcard(state_machine, children),
            "The Distributed Map's child executions are named at run time under this state machine's own name; no other state machine's executions.",
        )

    def _alarm(self, construct_id: str, description: str, metric: cloudwatch.IMetric) -> cloudwatch.Alarm:
        """Alarm on one or more occurrences in a period; no data (nothing happened) is fine."""
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )


_PATTERN_FIELDS = {
    "source": "source",
    "detail-type": "detail_type",
    "detail": "detail",
    "account": "account",
    "region": "region",
    "resources": "resources",
    "version": "version",
    "id": "id",
    "time": "time",
}


def event_pattern_from(pattern: dict) -> events.EventPattern:
    """The CDK form of a raw EventBridge pattern object, field for field (no field is dropped or added)."""
    unknown = set(pattern) - set(_PATTERN_FIELDS)
    if unknown:
        raise ValueError(f"event pattern fields CDK cannot express: {sorted(unknown)}")
    return events.EventPattern(**{_PATTERN_FIELDS[name]: value for name, value in pattern.items()})
