"""The coverage layer as CDK layer versions: the built zips from dist/, or a staged copy of layer_src/."""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import coverage
from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from lambda_coverage.layer import layout

# Context key: `auto` (dist/ zips when present, else layer_src/), `dist` (zips required) or `layer_src`.
LAYER_SOURCE_CONTEXT = "coverageLayerSource"
# Context key: the ARN of a layer version published before (`make deploy`); nothing is published then.
LAYER_ARN_CONTEXT = "coverageLayerArn"
LAYER_SOURCES = ("auto", "dist", "layer_src")
CDK_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


def cdk_runtime(runtime: str) -> lambda_.Runtime:
    """CDK's Runtime for `3.X`: its constant, or on an aws-cdk-lib too old to have one, the same declaration."""
    return getattr(lambda_.Runtime, "PYTHON_" + runtime.replace(".", "_"), None) or declared_runtime(runtime)


def declared_runtime(runtime: str) -> lambda_.Runtime:
    """`python3.X` declared as aws-cdk-lib declares its Python constants.

    CDK's layer/function compatibility check compares name, family and inline-code support, so this equals
    the constant a newer aws-cdk-lib has, and a function's runtime declared the same way.
    """
    return lambda_.Runtime(
        f"python{runtime}",
        lambda_.RuntimeFamily.PYTHON,
        supports_inline_code=True,
        supports_code_guru_profiling=True,
        supports_snap_start=True,
    )


COMPATIBLE_RUNTIMES = tuple(cdk_runtime(runtime) for runtime in layout.RUNTIMES)


class LayerSourceError(RuntimeError):
    """The requested layer source is not available."""


@dataclass(frozen=True)
class LayerAsset:
    """Where one layer version's content comes from and which architectures it serves."""

    path: Path
    architectures: tuple[str, ...]
    source: str


def dist_zips(dist: Path = layout.DEFAULT_DIST) -> dict[str, Path]:
    """This version's built zips by architecture name, as `make build` writes them."""
    version = layout.layer_version()
    found = {}
    for architecture in layout.ARCHITECTURES:
        path = dist / layout.zip_name(version, architecture)
        if path.is_file():
            found[architecture] = path
    return found


def stage_layer_src(target: Path) -> Path:
    """Lay out layer_src/ plus coverage.py's pure-Python modules as the layer's /opt tree.

    Only the fallback for synth without `make build`: coverage.py's compiled tracer is left out, so
    this layer serves both architectures and measures with `sysmon` (3.12+) or the Python tracer.
    """
    shutil.copytree(
        layout.LAYER_SRC / "coverage_wrapper",
        target / "python" / "coverage_wrapper",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    shutil.copytree(
        Path(coverage.__file__).parent,
        target / "python" / "coverage",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.pyd", "*.pyi", "*.scss"),
    )
    for relative in layout.EXECUTABLES:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(layout.LAYER_SRC / relative, destination)
        destination.chmod(destination.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return target


def resolve_layer_assets(requested: str = "auto", dist: Path = layout.DEFAULT_DIST) -> list[LayerAsset]:
    """The layer contents to deploy for the `coverageLayerSource` context value."""
    if requested not in LAYER_SOURCES:
        raise LayerSourceError(f"{LAYER_SOURCE_CONTEXT}={requested!r}: expected one of {', '.join(LAYER_SOURCES)}")
    zips = dist_zips(dist) if requested != "layer_src" else {}
    if zips:
        return [LayerAsset(path, (architecture,), "dist") for architecture, path in sorted(zips.items())]
    if requested == "dist":
        raise LayerSourceError(f"{LAYER_SOURCE_CONTEXT}=dist but {dist} holds no layer zip of this version: run `make build`")
    # A fresh directory per synth: parallel synths (pytest -n) never see each other's half-copied tree.
    staged = Path(tempfile.mkdtemp(prefix="cdk-coverage-layer-"))
    atexit.register(shutil.rmtree, staged, True)
    return [LayerAsset(stage_layer_src(staged), tuple(layout.ARCHITECTURES), "layer_src")]


class CoverageLayer(Construct):
    """One layer version per architecture (or one for both, from layer_src/); `for_architecture` picks."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source: str = "auto",
        existing_arn: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        self.versions: dict[str, lambda_.ILayerVersion] = {}
        if existing_arn:
            # A layer already published (`make deploy`, LAYER_ARN=...): the stack attaches it, publishes nothing.
            self.assets: list[LayerAsset] = []
            self.source = "existing"
            existing = lambda_.LayerVersion.from_layer_version_arn(self, "Existing", existing_arn)
            self.versions = {architecture: existing for architecture in layout.ARCHITECTURES}
            return
        self.assets = resolve_layer_assets(source)
        self.source = self.assets[0].source
        version = layout.layer_version()
        for asset in self.assets:
            label = asset.architectures[0] if len(asset.architectures) == 1 else "universal"
            layer = lambda_.LayerVersion(
                self,
                "Arm64" if label == "arm64" else "X8664" if label == "x86_64" else "Universal",
                code=lambda_.Code.from_asset(os.fspath(asset.path)),
                compatible_runtimes=list(COMPATIBLE_RUNTIMES),
                compatible_architectures=[CDK_ARCHITECTURES[name] for name in asset.architectures],
                layer_version_name=f"{layout.LAYER_NAME}-{label}",
                description=f"Lambda Coverage Layer {version} ({label}, built from {asset.source})",
                license="MIT",
                removal_policy=removal_policy,
            )
            for architecture in asset.architectures:
                self.versions[architecture] = layer

    def for_architecture(self, architecture: lambda_.Architecture) -> lambda_.ILayerVersion:
        """The layer version that serves functions of `architecture`."""
        return self.versions[architecture.name]
