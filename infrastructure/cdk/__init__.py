"""The CDK app for AWS: the coverage bucket, the layer, the pipeline, the examples and the instrumentation construct."""

from .instrument import CoverageInstrumentation

__all__ = ["CoverageInstrumentation"]
