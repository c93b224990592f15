"""The CDK app for AWS: the coverage bucket, the layer, the pipeline, the examples and the instrumentation construct."""

from typing import Any

__all__ = ["CoverageInstrumentation"]


def __getattr__(name: str) -> Any:
    # Lazy: a submodule import should not start CDK's Node runtime before it is needed.
    if name == "CoverageInstrumentation":
        from .instrument import CoverageInstrumentation

        return CoverageInstrumentation
    raise AttributeError(name)
