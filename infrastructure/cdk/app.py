"""The CDK app: `python -m lambda_coverage.cdk.app` synthesizes into cdk.out/ without Node's CDK CLI or credentials."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from ..pipeline import DEFAULT_WINDOW_SECONDS
from .layer import LAYER_ARN_CONTEXT, LAYER_SOURCE_CONTEXT
from .nag import add_checks
from .stack import STACK_NAME, TEST_STACK_NAME, LambdaCoverageLayerStack

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = REPO_ROOT / "cdk.json"
# Context keys read by the app (defaults in cdk.json).
PREFIX_CONTEXT = "coveragePrefix"
POWERTOOLS_CONTEXT = "powertoolsLayerVersion"
TEST_STACK_CONTEXT = "testStack"
WINDOW_CONTEXT = "combineWindowSeconds"
TEST_STACK_WINDOW_SECONDS = 60  # the test stack reports within a minute; production batches for cost


def _context_from_cdk_json() -> dict[str, Any]:
    if not CDK_JSON.is_file():
        return {}
    return dict(json.loads(CDK_JSON.read_text()).get("context", {}))


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> tuple[cdk.App, LambdaCoverageLayerStack]:
    """The app with its one stack and the AwsSolutions checks; `context` overrides cdk.json."""
    under_cli = "CDK_CONTEXT_JSON" in os.environ or "CDK_OUTDIR" in os.environ
    # The CDK CLI passes cdk.json's context itself; a plain `python -m` run reads it here.
    merged = {} if under_cli else _context_from_cdk_json()
    merged.update(context or {})
    app = cdk.App(context=merged, outdir=outdir)
    test_stack = _truthy(app.node.try_get_context(TEST_STACK_CONTEXT) or False)
    stack = LambdaCoverageLayerStack(
        app,
        TEST_STACK_NAME if test_stack else STACK_NAME,
        prefix=str(app.node.try_get_context(PREFIX_CONTEXT) or "coverage/"),
        layer_source=str(app.node.try_get_context(LAYER_SOURCE_CONTEXT) or "auto"),
        layer_arn=str(app.node.try_get_context(LAYER_ARN_CONTEXT) or "") or None,
        powertools_layer_version=int(app.node.try_get_context(POWERTOOLS_CONTEXT) or 27),
        window_seconds=int(app.node.try_get_context(WINDOW_CONTEXT) or (TEST_STACK_WINDOW_SECONDS if test_stack else DEFAULT_WINDOW_SECONDS)),
        ephemeral=test_stack,
        description="Lambda Coverage Layer: coverage bucket, layer, intake/combine pipeline and examples",
        # Account and region come from the deploying credentials; synth needs neither.
        env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
    )
    cdk.Tags.of(stack).add("project", "lambda-coverage-layer")
    add_checks(app)
    return app, stack


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lambda_coverage.cdk.app", description=__doc__)
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="context value (overrides cdk.json)")
    parser.add_argument("-o", "--output", default=None, help="cloud assembly directory (default: cdk.out, or CDK_OUTDIR under the CLI)")
    args = parser.parse_args(argv)
    context = {}
    for item in args.context:
        key, separator, value = item.partition("=")
        if not separator:
            parser.error(f"--context {item!r}: expected KEY=VALUE")
        context[key] = value
    outdir = args.output or (None if "CDK_OUTDIR" in os.environ else os.fspath(REPO_ROOT / "cdk.out"))
    app, stack = build_app(context, outdir)
    assembly = app.synth()
    errors = [
        message
        for artifact in assembly.stacks
        for message in artifact.messages
        if message.level == "error"
    ]
    for message in errors:
        print(f"{message.id}: {message.entry.data}", file=sys.stderr)
    if "CDK_OUTDIR" not in os.environ:
        print(f"synthesized {stack.stack_name} into {assembly.directory} (layer built from {stack.layer.source})")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
