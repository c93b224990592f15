"""The command line `make build`, `make validate` and `make deploy` run: `python -m lambda_coverage.layer build|validate|deploy`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __doc__ as package_doc
from .build import build, built_zips
from .deploy import deploy
from .layout import (
    DEFAULT_DIST,
    DEFAULT_WHEEL_CACHE,
    LAYER_NAME,
    SLIM_SOURCE_RUNTIMES,
    LayerBuildError,
    current_zips,
    layer_version,
)
from .validate import ValidationReport, validate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lambda_coverage.layer", description=package_doc.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="build one zip per architecture into dist/")
    build_cmd.add_argument("--dist", type=Path, default=DEFAULT_DIST)
    build_cmd.add_argument("--wheel-cache", type=Path, default=DEFAULT_WHEEL_CACHE)
    validate_cmd = commands.add_parser("validate", help="check the zips and run the layer in each local Python")
    validate_cmd.add_argument("zips", nargs="*", type=Path, help="zips to check (default: this version's in --dist)")
    validate_cmd.add_argument("--dist", type=Path, default=DEFAULT_DIST)
    validate_cmd.add_argument("--build-if-missing", action="store_true")
    validate_cmd.add_argument("--structure-only", action="store_true", help="do not run the layer")
    deploy_cmd = commands.add_parser("deploy", help="publish the zips as Lambda layer versions")
    deploy_cmd.add_argument("--region", default=os.environ.get("AWS_REGION") or "us-east-1")
    deploy_cmd.add_argument("--dist", type=Path, default=DEFAULT_DIST)
    deploy_cmd.add_argument("--layer-name", default=LAYER_NAME)
    return parser


def _build(args: argparse.Namespace) -> int:
    result = build(args.dist, args.wheel_cache)
    for built in result.zips:
        print(f"{built.path}  {built.size} bytes  sha256 {built.sha256}")
    for runtime in result.without_bytecode:
        why = "by design" if runtime in SLIM_SOURCE_RUNTIMES else f"no local python{runtime} (install it with pyenv)"
        print(f"note: python{runtime}: coverage.py ships as slim sources, compiled by Lambda at each cold start: {why}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    if args.zips:
        zips = list(args.zips)
    else:
        zips = built_zips(args.dist) if args.build_if_missing else current_zips(args.dist)
    if not zips:
        raise LayerBuildError(f"no layer zips for version {layer_version()} in {args.dist}: run `make build` first")
    report = validate(zips, run_layer=not args.structure_only)
    _print_validation(report)
    if not report.ok:
        print("make validate: the layer is NOT valid (see the problems above)", file=sys.stderr)
        return 1
    print("make validate: all checks passed")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    for layer in deploy(args.region, args.dist, args.layer_name):
        print(json.dumps(layer))
    return 0


def _print_validation(report: ValidationReport) -> None:
    for path, problems in report.structure.items():
        state = "ok" if not problems else f"{len(problems)} problem(s)"
        print(f"structure  {Path(path).name}: {state} ({Path(path).stat().st_size} bytes)")
        for problem in problems:
            print(f"  - {problem}")
    if report.runtime_zip:
        print(f"runtime    {Path(report.runtime_zip).name} extracted as /opt:")
    for check in report.runtime_checks:
        state = "ok" if check.ok else "FAILED"
        print(f"  python{check.runtime} ({check.interpreter}, coverage {check.coverage or '?'}): {state}")
        for problem in check.problems:
            print(f"    - {problem}")
    for runtime in report.missing_interpreters:
        print(f"  python{runtime}: not run, no local interpreter (its structure is checked above)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one of `build`, `validate`, `deploy`; a failure is one line on stderr and exit status 1."""
    args = _parser().parse_args(argv)
    run = {"build": _build, "validate": _validate, "deploy": _deploy}[args.command]
    try:
        return run(args)
    except LayerBuildError as exc:
        print(f"make {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
