"""The seed's five example functions, deployed with the coverage layer through `CoverageInstrumentation`."""

from __future__ import annotations

import os

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from ..examples import EXAMPLES
from .instrument import CoverageInstrumentation
from .nag import acknowledge, resource_wildcard

COMBINER_OUTPUT_AREA = "examples/"


class ExampleFunctions(Construct):
    """The examples on arm64 / Python 3.12, each instrumented in one line."""

    def __init__(self, scope: Construct, construct_id: str, *, instrumentation: CoverageInstrumentation, ephemeral: bool = False) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, lambda_.Function] = {}
        for example in EXAMPLES:
            function = lambda_.Function(
                scope,  # stack scope keeps the seed's function names (LambdaCoverageLayerStack-SimpleCoverageExample…)
                example.construct_id,
                description=example.description,
                code=lambda_.Code.from_asset(os.fspath(example.path), exclude=["__pycache__", "*.pyc"]),
                handler=example.handler,
                runtime=lambda_.Runtime.PYTHON_3_12,
                architecture=lambda_.Architecture.ARM_64,
                memory_size=512,
                timeout=Duration.seconds(60),
                log_group=logs.LogGroup(
                    self,
                    f"{example.construct_id}Logs",
                    retention=logs.RetentionDays.TWO_WEEKS,
                    removal_policy=RemovalPolicy.DESTROY if ephemeral else RemovalPolicy.RETAIN,
                ),
                # The test stack flushes every invocation (the seed's behaviour) so `make test-all` sees files at once.
                environment={"COVERAGE_LOG_LEVEL": "INFO", **({"COVERAGE_FLUSH_INVOCATIONS": "1"} if ephemeral else {})},
            )
            instrumentation.instrument(function, zero_code=example.zero_code)
            acknowledge(function, "AwsSolutions-L1", "The examples run on Python 3.12 like the pipeline; the coverage layer serves 3.9-3.14 (3.9-3.13 run by make validate, 3.14 structure-checked).")
            self.functions[example.construct_id] = function
        self._grant_combiner(self.functions["CoverageCombiner"], instrumentation)

    @staticmethod
    def _grant_combiner(function: lambda_.Function, instrumentation: CoverageInstrumentation) -> None:
        # The seed's combiner reads raw files itself (combine_coverage_files) and writes one report
        # under {p}examples/: the only example that reads, and only what it combines.
        bucket, prefix = instrumentation.bucket, instrumentation.prefix
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{prefix}raw/*")]))
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{prefix}{COMBINER_OUTPUT_AREA}*")])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}raw/*"]}},
            )
        )
        for pattern in (f"{prefix}raw/*", f"{prefix}{COMBINER_OUTPUT_AREA}*"):
            acknowledge(
                function,
                resource_wildcard(function, bucket.arn_for_objects(pattern)),
                "The seed's combiner example merges whatever raw files its event names and writes its report under examples/; nothing else.",
            )
