"""`CoverageInstrumentation`: attach the coverage layer to any Lambda function in one line, with a scoped grant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Union

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct

from coverage_wrapper.keys import DEFAULT_PREFIX, normalize_prefix

from .layer import COMPATIBLE_RUNTIMES
from .nag import acknowledge, resource_wildcard

EXEC_WRAPPER_PATH = "/opt/coverage-instrument"
_GRANT_ID = "CoverageUpload"
LayerChoice = Union[lambda_.ILayerVersion, Mapping[str, lambda_.ILayerVersion]]


class CoverageInstrumentation(Construct):
    """Instruments functions for one coverage bucket and layer.

    ```python
    coverage = CoverageInstrumentation(self, "Coverage", bucket=bucket, layer=layer)
    coverage.instrument(my_function)                    # zero-code: the exec wrapper measures
    coverage.instrument(decorated, zero_code=False)     # the handler uses @coverage_handler
    coverage.instrument_all(stack)                      # every Python function in a scope, at synth
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
            architecture = function.architecture.name
            if architecture not in self.layer:
                raise ValueError(
                    f"{function.node.path} runs on {architecture}, and no coverage layer was given for it "
                    f"(layers for: {', '.join(sorted(self.layer)) or 'none'})"
                )
            return self.layer[architecture]
        return self.layer

    @staticmethod
    def instrumented(function: lambda_.Function) -> bool:
        return function.node.try_find_child(_GRANT_ID) is not None

    def instrument_all(self, scope: Construct, *, zero_code: bool = True) -> None:
        """Instrument every Python function under `scope` not instrumented yet, when the app synthesizes."""
        cdk.Aspects.of(scope).add(_InstrumentPythonFunctions(self, zero_code))

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
        if self.instrumented(function):
            raise ValueError(f"{function.node.path} is already instrumented for coverage")
        if function.runtime.family != lambda_.RuntimeFamily.PYTHON:
            raise ValueError(f"{function.node.path} runs {function.runtime.name}: the coverage layer measures Python functions only")
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
            _GRANT_ID,
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


@jsii.implements(cdk.IAspect)
class _InstrumentPythonFunctions:
    """The Aspect behind `instrument_all`: Python functions only, each once."""

    def __init__(self, instrumentation: CoverageInstrumentation, zero_code: bool) -> None:
        self.instrumentation = instrumentation
        self.zero_code = zero_code

    def visit(self, node: IConstruct) -> None:
        if (
            isinstance(node, lambda_.Function)
            and node.runtime.family == lambda_.RuntimeFamily.PYTHON
            and not CoverageInstrumentation.instrumented(node)
        ):
            self.instrumentation.instrument(node, zero_code=self.zero_code)
