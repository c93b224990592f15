"""The Lambda layer: one reproducible zip per architecture for Python 3.9–3.14, built, validated and published.

The steps live in modules named for them: `build`, `validate`, `deploy` (the package does not re-export
their functions, so `lambda_coverage.layer.build` is always the module).
"""

from .build import BuildResult, BuiltZip
from .layout import (
    ARCHITECTURES,
    COVERAGE_PINS,
    DEFAULT_DIST,
    DEFAULT_WHEEL_CACHE,
    EXECUTABLES,
    LAYER_NAME,
    LAYER_SRC,
    MAX_ZIP_BYTES,
    RUNTIMES,
    SLIM_SOURCE_RUNTIMES,
    LayerBuildError,
    current_zips,
    layer_version,
    zip_name,
)
from .validate import ValidationReport

__all__ = [
    "ARCHITECTURES",
    "COVERAGE_PINS",
    "DEFAULT_DIST",
    "DEFAULT_WHEEL_CACHE",
    "EXECUTABLES",
    "LAYER_NAME",
    "LAYER_SRC",
    "MAX_ZIP_BYTES",
    "RUNTIMES",
    "SLIM_SOURCE_RUNTIMES",
    "BuildResult",
    "BuiltZip",
    "LayerBuildError",
    "ValidationReport",
    "current_zips",
    "layer_version",
    "zip_name",
]
