"""The Lambda layer: one reproducible zip per architecture for Python 3.9–3.13, built, validated and published."""

from .build import BuildResult, BuiltZip, build
from .deploy import deploy
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
    LayerBuildError,
    current_zips,
    layer_version,
    zip_name,
)
from .validate import ValidationReport, validate

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
    "BuildResult",
    "BuiltZip",
    "LayerBuildError",
    "ValidationReport",
    "build",
    "current_zips",
    "deploy",
    "layer_version",
    "validate",
    "zip_name",
]
