"""The instrumentation construct in someone else's CDK app: one clear error for what it cannot do, an Aspect for many."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from lambda_coverage.cdk import CoverageInstrumentation
from layer_harness import REPO

ARN = "arn:aws:lambda:eu-west-1:111122223333:layer:lambda-coverage-layer-{}:3"


def _stack():
    app = cdk.App()
    stack = cdk.Stack(app, "UserStack")
    bucket = s3.Bucket.from_bucket_name(stack, "Coverage", "team-coverage")
    layers = {"x86_64": lambda_.LayerVersion.from_layer_version_arn(stack, "X86", ARN.format("x86_64"))}
    return stack, CoverageInstrumentation(stack, "Instrumentation", bucket=bucket, layer=layers)


def _function(stack, name, runtime=lambda_.Runtime.PYTHON_3_12, architecture=lambda_.Architecture.X86_64):
    return lambda_.Function(stack, name, runtime=runtime, architecture=architecture, handler="app.handler",
                            code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"))


def test_each_thing_the_construct_cannot_do_is_one_clear_error():
    stack, coverage = _stack()
    with pytest.raises(ValueError, match="measures Python functions only"):
        coverage.instrument(_function(stack, "Node", runtime=lambda_.Runtime.NODEJS_20_X))
    with pytest.raises(ValueError, match="the coverage layer serves python3.9"):
        coverage.instrument(_function(stack, "Old", runtime=lambda_.Runtime.PYTHON_3_8))
    with pytest.raises(ValueError, match="runs on arm64, and no coverage layer was given for it"):
        coverage.instrument(_function(stack, "Arm", architecture=lambda_.Architecture.ARM_64))
    twice = _function(stack, "Twice")
    coverage.instrument(twice)
    with pytest.raises(ValueError, match="already instrumented"):
        coverage.instrument(twice)


def test_instrument_all_instruments_every_python_function_of_a_scope_once():
    stack, coverage = _stack()
    done_by_hand = _function(stack, "ByHand")
    coverage.instrument(done_by_hand, zero_code=False)
    _function(stack, "Orders")
    _function(stack, "Payments")
    _function(stack, "Frontend", runtime=lambda_.Runtime.NODEJS_20_X)
    coverage.instrument_all(stack)
    functions = Template.from_stack(stack).find_resources("AWS::Lambda::Function")
    layered = {name: props["Properties"].get("Layers") for name, props in functions.items()}
    variables = {name: props["Properties"].get("Environment", {}).get("Variables", {}) for name, props in functions.items()}
    assert sorted(name[:-8] for name, layers in layered.items() if layers) == ["ByHand", "Orders", "Payments"]
    assert not any(name.startswith("Frontend") and layers for name, layers in layered.items())
    wrappers = sorted(name[:-8] for name, v in variables.items() if v.get("AWS_LAMBDA_EXEC_WRAPPER"))
    assert wrappers == ["Orders", "Payments"], "the one instrumented by hand keeps its decorator mode"
    assert len(Template.from_stack(stack).find_resources("AWS::IAM::Policy")) == 3


def test_the_construct_imports_and_synthesizes_without_cdk_nag():
    script = textwrap.dedent(f"""
        import sys
        class NoCdkNag:
            def find_spec(self, name, path=None, target=None):
                if name == "cdk_nag" or name.startswith("cdk_nag."):
                    raise ImportError("cdk_nag is not installed")
        sys.meta_path.insert(0, NoCdkNag())
        sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / "layer_src")!r})
        import aws_cdk as cdk
        from aws_cdk import aws_lambda as lambda_, aws_s3 as s3
        from lambda_coverage.cdk import CoverageInstrumentation
        app = cdk.App(); stack = cdk.Stack(app, "S")
        layer = lambda_.LayerVersion.from_layer_version_arn(stack, "L", {ARN.format("x86_64")!r})
        fn = lambda_.Function(stack, "F", runtime=lambda_.Runtime.PYTHON_3_12, handler="a.h",
                              code=lambda_.Code.from_inline("def h(e, c): return e"))
        CoverageInstrumentation(stack, "C", bucket=s3.Bucket(stack, "B"), layer=layer).instrument(fn)
        app.synth()
        print("synthesized", "cdk_nag" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("synthesized False")
