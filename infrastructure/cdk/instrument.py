"""`CoverageInstrumentation`: attach the coverage layer to any Lambda function in one line, with a scoped grant."""

from __future__ import annotations

from typing import Mapping, Union

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from coverage_wrapper.keys import DEFAULT_PREFIX, normalize_prefix

from .layer import COMPATIBLE_RUNTIMES
from .nag import acknowledge, resource_wildcard

EXEC_WRAPPER_PATH = "/opt/coverage-instrument"
LayerChoice = Union[lambda_.ILayerVersion, Mapping[str, lambda_.ILayerVersion]]


class CoverageInstrumentation(Construct):
    """Instruments functions for one coverage bucket and layer.

    ```python
    coverage = CoverageInstrumentation(self, "Coverage", bucket=bucket, layer=layer)
    coverage.instrument(my_function)                    # zero-code: the exec wrapper measures
    coverage.instrument(decorated, zero_code=False)     # the handler uses @coverage_handler
    ```

    `layer` is one layer version or a mapping from architecture name (`arm64`, `x86_64`) to the
    layer version built for it. Each function may then only `s3:PutObject` its own raw files
    (`{prefix}raw/{its function name}/*`), its own source manifests
    (`{prefix}sources/{its function name}/*/manifest.json`) and source blobs (`{prefix}sources/blobs/*`,
    which the bucket makes write-once): it can read nothing, and write nothing of another function.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        layer: LayerChoice,
        prefix: str = DEFAULT_PREFIX,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = bucket
        self.layer = layer
        self.prefix = normalize_prefix(prefix)
        self.environment = dict(environment or {})

    def layer_for(self, function: lambda_.Function) -> lambda_.ILayerVersion:
        """The layer version matching the function's architecture."""
        if isinstance(self.layer, Mapping):
            return self.layer[function.architecture.name]
        return self.layer

    def upload_resources(self, function_name: str) -> list[str]:
        """The object ARNs a function called `function_name` may write: its raw files, its source manifests, blobs."""
        return [
            self.bucket.arn_for_objects(f"{self.prefix}raw/{function_name}/*"),
            self.bucket.arn_for_objects(f"{self.prefix}sources/{function_name}/*/manifest.json"),
            self.bucket.arn_for_objects(f"{self.prefix}sources/blobs/*"),
        ]

    def instrument(
        self,
        function: lambda_.Function,
        *,
        zero_code: bool = True,
        code_version: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> iam.Policy:
        """Add the layer, the `COVERAGE_*` env vars and the upload grant to `function`; returns the grant."""
        if function.role is None:
            raise ValueError(f"{function.node.path} has no execution role to grant the upload to")
        # checked by name here: a layer given by ARN carries no compatible runtimes for CDK to check
        served = [runtime.name for runtime in COMPATIBLE_RUNTIMES]
        if function.runtime.name not in served:
            raise ValueError(f"{function.node.path} runs {function.runtime.name}; the coverage layer serves {', '.join(served)}")
        function.add_layers(self.layer_for(function))
        settings = {
            "COVERAGE_S3_BUCKET": self.bucket.bucket_name,
            "COVERAGE_S3_PREFIX": self.prefix,
            **self.environment,
            **(environment or {}),
        }
        if code_version:
            settings["COVERAGE_CODE_VERSION"] = code_version
        if zero_code:
            settings["AWS_LAMBDA_EXEC_WRAPPER"] = EXEC_WRAPPER_PATH
        for name, value in settings.items():
            function.add_environment(name, value)
        # A separate policy, not the role's default one: the function waits for its default policy,
        # and a statement naming the function inside it would be a dependency cycle.
        grant = iam.Policy(
            function,
            "CoverageUpload",
            statements=[
                iam.PolicyStatement(
                    sid="CoverageUploadOnly",
                    actions=["s3:PutObject"],
                    resources=self.upload_resources(function.function_name),
                )
            ],
        )
        grant.attach_to_role(function.role)
        raw_objects, manifests, blobs = self.upload_resources(function.function_name)
        acknowledge(
            grant,
            resource_wildcard(grant, raw_objects),
            "Raw file names carry date, code version and a flush counter: the function may create any object under its own raw/{function}/ prefix only, and read none.",
        )
        acknowledge(
            grant,
            resource_wildcard(grant, manifests),
            "One source manifest per code version of this function only (sources/{function}/{version}/manifest.json); write-only.",
        )
        acknowledge(
            grant,
            resource_wildcard(grant, blobs),
            "Source blobs are content-addressed (sources/blobs/{sha256}) and shared across functions; the bucket policy denies any PutObject there without If-None-Match, so none is ever overwritten, and the reporter checks each blob's sha256.",
        )
        return grant
