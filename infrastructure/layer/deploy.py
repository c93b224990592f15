"""Publishing the built zips as Lambda layer versions, one layer per architecture; nothing without credentials."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from lambda_coverage.credentials import has_credentials

from .build import built_zips
from .layout import DEFAULT_DIST, LAYER_NAME, MANIFEST_NAME, LayerBuildError
from .structure import check_structure


def deploy(region: str, dist: Path = DEFAULT_DIST, layer_name: str = LAYER_NAME) -> list[dict[str, Any]]:
    """Publish each architecture's zip as a new version of `{layer_name}-{arch}` (publish-layer-version semantics)."""
    if not has_credentials():
        raise LayerBuildError(
            "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY); nothing was published"
        )
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.Session(region_name=region)
    try:
        identity = session.client("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        raise LayerBuildError(f"AWS rejected the credentials or is unreachable ({exc}); nothing was published") from None
    zips = built_zips(dist)
    problems = {str(p): found for p, found in ((p, check_structure(p)) for p in zips) if found}
    if problems:
        raise LayerBuildError(f"refusing to publish invalid zips: {problems}")
    client = session.client("lambda")
    published = []
    for path in zips:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read(MANIFEST_NAME))
        coverage_versions = ", ".join(f"{r} {e['coverage']}" for r, e in manifest["runtimes"].items())
        try:
            answer = client.publish_layer_version(
                LayerName=f"{layer_name}-{manifest['architecture']}",
                Description=f"Lambda Coverage Layer {manifest['layer_version']} (coverage.py: {coverage_versions})"[:256],
                Content={"ZipFile": path.read_bytes()},
                CompatibleRuntimes=manifest["compatible_runtimes"],
                CompatibleArchitectures=[manifest["architecture"]],
                LicenseInfo="MIT",
            )
        except (BotoCoreError, ClientError) as exc:
            raise LayerBuildError(f"publishing {path.name} failed in {region} as {identity.get('Arn')}: {exc}") from None
        published.append(
            {
                "architecture": manifest["architecture"],
                "layer_version_arn": answer["LayerVersionArn"],
                "version": answer["Version"],
                "region": region,
            }
        )
    return published
