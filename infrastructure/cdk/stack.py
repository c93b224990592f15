"""`LambdaCoverageLayerStack`: bucket, layer, pipeline, examples and outputs in one stack."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from constructs import Construct

from coverage_wrapper.keys import DEFAULT_PREFIX, normalize_prefix

from ..pipeline import DEFAULT_WINDOW_SECONDS
from .examples import ExampleFunctions
from .instrument import CoverageInstrumentation
from .layer import CoverageLayer
from .nag import acknowledge
from .storage import access_log_bucket, coverage_bucket
from .workflow import DEFAULT_POWERTOOLS_LAYER_VERSION, PIPELINE_ARCHITECTURE, PipelineFunctions, Workflow

STACK_NAME = "LambdaCoverageLayerStack"
TEST_STACK_NAME = "LambdaCoverageLayerTestStack"


class LambdaCoverageLayerStack(Stack):
    """Everything `make cdk-deploy` stands up; `ephemeral=True` (the test stack) deletes its data on destroy."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str = STACK_NAME,
        *,
        prefix: str = DEFAULT_PREFIX,
        layer_source: str = "auto",
        layer_arn: str | None = None,
        powertools_layer_version: int = DEFAULT_POWERTOOLS_LAYER_VERSION,
        window_seconds: int = DEFAULT_WINDOW_SECONDS,
        ephemeral: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.prefix = normalize_prefix(prefix)
        self.access_logs = access_log_bucket(self, "AccessLogs", ephemeral=ephemeral)
        self.bucket = coverage_bucket(self, "CoverageBucket", prefix=self.prefix, access_logs=self.access_logs, ephemeral=ephemeral)
        self.layer = CoverageLayer(
            self,
            "CoverageLayer",
            source=layer_source,
            existing_arn=layer_arn,
            removal_policy=RemovalPolicy.DESTROY if ephemeral else RemovalPolicy.RETAIN
        )
        self.pipeline = PipelineFunctions(
            self,
            "Pipeline",
            bucket=self.bucket,
            prefix=self.prefix,
            coverage_layer=self.layer.for_architecture(PIPELINE_ARCHITECTURE),
            powertools_layer_version=powertools_layer_version,
            window_seconds=window_seconds,
            ephemeral=ephemeral,
        )
        self.workflow = Workflow(
            self, "Workflow", bucket=self.bucket, prefix=self.prefix, functions=self.pipeline.functions, ephemeral=ephemeral
        )
        self.instrumentation = CoverageInstrumentation(self, "Coverage", bucket=self.bucket, layer=self.layer.versions, prefix=self.prefix)
        self.examples = ExampleFunctions(self, "Examples", instrumentation=self.instrumentation, ephemeral=ephemeral)
        self._outputs()
        self._suppressions()

    def _outputs(self) -> None:
        CfnOutput(self, "CoverageBucketName", value=self.bucket.bucket_name, description="The coverage bucket")
        CfnOutput(self, "CoveragePrefix", value=self.prefix, description="COVERAGE_S3_PREFIX of every instrumented function")
        # One version per architecture (the same one when built from layer_src/ or given as LAYER_ARN).
        CfnOutput(self, "CoverageLayerArn", value=self.layer.versions["arm64"].layer_version_arn, description="Coverage layer for arm64 functions")
        CfnOutput(self, "CoverageLayerArnX8664", value=self.layer.versions["x86_64"].layer_version_arn, description="Coverage layer for x86_64 functions")
        CfnOutput(self, "CoverageLayerSource", value=self.layer.source, description="dist (built zips), layer_src (staged sources) or existing (LAYER_ARN)")
        CfnOutput(self, "IntakeStateMachineArn", value=self.workflow.intake.state_machine_arn)
        CfnOutput(self, "CombineStateMachineArn", value=self.workflow.combine.state_machine_arn)
        CfnOutput(self, "DashboardKey", value=f"{self.prefix}reports/index.html", description="S3 key of the dashboard")
        CfnOutput(self, "DashboardS3Uri", value=f"s3://{self.bucket.bucket_name}/{self.prefix}reports/index.html")
        CfnOutput(self, "FailedDeliveriesQueueUrl", value=self.workflow.dead_letter_queue.queue_url)
        for name, function in self.examples.functions.items():
            CfnOutput(self, f"{name}FunctionName", value=function.function_name)

    def _suppressions(self) -> None:
        """Findings of the whole stack that are the design, each with why; the rest sit beside their resources."""
        acknowledge(
            self,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "AWSLambdaBasicExecutionRole only lets a function write its own CloudWatch Logs: AWS's minimal managed policy for that.",
        )
