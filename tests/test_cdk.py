"""The CDK app: resources, wiring to infrastructure/pipeline.py, least-privilege grants, cdk-nag and cfn-lint."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from lambda_coverage import pipeline
from lambda_coverage.cdk import CoverageInstrumentation
from lambda_coverage.cdk.app import build_app
from lambda_coverage.cdk.examples import EXAMPLES
from lambda_coverage.cdk.layer import LayerSourceError, resolve_layer_assets
from lambda_coverage.cdk.workflow import POWERTOOLS_ACCOUNT, POWERTOOLS_LAYER_NAME
from lambda_coverage.layer import layout

REPO = Path(__file__).resolve().parent.parent
PREFIX = "coverage/"
# W3005 flags the DependsOn CDK writes from every Lambda/state machine to its role although a GetAtt
# already orders them: CDK's own output, redundant but correct. Every other rule applies.
CFN_LINT_IGNORED = ["W3005"]


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    """One synth for the module: (stack, template dict, cloud assembly dir)."""
    outdir = tmp_path_factory.mktemp("cdk-out")
    app, stack = build_app({}, os.fspath(outdir))
    assembly = app.synth()  # raises when an AwsSolutions finding is not acknowledged
    template = assembly.get_stack_by_name(stack.stack_name).template
    return stack, template, outdir


@pytest.fixture(scope="module")
def template(synthesized) -> Template:
    return Template.from_json(synthesized[1])


def _resources(raw: dict, resource_type: str) -> dict[str, dict]:
    return {name: res for name, res in raw["Resources"].items() if res["Type"] == resource_type}


def _logical_id(stack: cdk.Stack, construct) -> str:
    return stack.resolve(stack.get_logical_id(construct.node.default_child))


def _role_statements(raw: dict, role_id: str) -> list[dict]:
    """Every statement of every AWS::IAM::Policy attached to the role."""
    statements = []
    for policy in _resources(raw, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _object_arn(bucket_id: str, *parts) -> dict:
    return {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, *parts]]}


def _s3_grants(statements: list[dict]) -> dict[str, list]:
    """S3 action → resources it is allowed on."""
    grants: dict[str, list] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            if action.startswith("s3:"):
                grants.setdefault(action, []).extend(_as_list(statement["Resource"]))
    return grants


def _prefix_resources(grants: dict[str, list], action: str) -> set[str]:
    """The literal key patterns (after the bucket ARN) an action is granted on."""
    patterns = set()
    for resource in grants.get(action, []):
        parts = resource["Fn::Join"][1]
        patterns.add("".join(part for part in parts[1:] if isinstance(part, str)).lstrip("/"))
    return patterns


# -- synth, nag, lint ----------------------------------------------------------------------------


def test_synth_passes_aws_solutions_with_every_acknowledgment_reasoned(synthesized):
    report = json.loads((synthesized[2] / "validation-report.json").read_text())
    nag = next(r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions")
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    assert nag["suppressedViolations"], "the acknowledgments are expected to be exercised"
    for suppressed in nag["suppressedViolations"]:
        assert len(suppressed["reason"].strip()) >= 20, suppressed["ruleName"]


def test_template_is_cfn_lint_clean(synthesized):
    from cfnlint.api import ManualArgs, lint

    matches = lint(
        json.dumps(synthesized[1]),
        config=ManualArgs(ignore_checks=CFN_LINT_IGNORED, regions=["us-east-1", "eu-west-1"]),
    )
    assert [f"{m.rule.id} {m.message}" for m in matches] == []


# -- bucket --------------------------------------------------------------------------------------


def test_coverage_bucket_is_private_encrypted_tls_only_logged_and_sends_eventbridge_events(synthesized, template):
    stack, raw, _ = synthesized
    bucket_id = _logical_id(stack, stack.bucket)
    logs_id = _logical_id(stack, stack.access_logs)
    bucket = raw["Resources"][bucket_id]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}
    template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {"BucketName": {"Ref": bucket_id}, "NotificationConfiguration": {"EventBridgeConfiguration": {}}},
    )
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            },
        },
    )


def test_lifecycle_expires_raw_and_quarantine_prefixes(synthesized):
    stack, raw, _ = synthesized
    rules = raw["Resources"][_logical_id(stack, stack.bucket)]["Properties"]["LifecycleConfiguration"]["Rules"]
    by_prefix = {rule.get("Prefix"): rule for rule in rules}
    assert by_prefix[f"{PREFIX}raw/"]["ExpirationInDays"] > 0
    assert by_prefix[f"{PREFIX}raw/"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    assert by_prefix[f"{PREFIX}quarantine/"]["ExpirationInDays"] >= by_prefix[f"{PREFIX}raw/"]["ExpirationInDays"]
    assert all(rule["Status"] == "Enabled" for rule in rules)


# -- layer ---------------------------------------------------------------------------------------


def test_layer_versions_cover_python_39_to_313_and_every_architecture(synthesized):
    stack, raw, _ = synthesized
    layers = _resources(raw, "AWS::Lambda::LayerVersion")
    assert layers, "no layer version published"
    architectures = []
    for layer in layers.values():
        assert layer["Properties"]["CompatibleRuntimes"] == [f"python{r}" for r in layout.RUNTIMES]
        architectures += layer["Properties"]["CompatibleArchitectures"]
    assert sorted(architectures) == ["arm64", "x86_64"]
    expected = 2 if stack.layer.source == "dist" else 1
    assert len(layers) == expected
    assert raw["Outputs"]["CoverageLayerSource"]["Value"] == stack.layer.source


def test_layer_source_prefers_dist_zips_and_falls_back_to_layer_src(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    [fallback] = resolve_layer_assets("auto", dist=empty)
    assert fallback.source == "layer_src"
    assert sorted(fallback.architectures) == ["arm64", "x86_64"]
    opt = fallback.path
    assert (opt / "python" / "coverage_wrapper" / "__init__.py").is_file()
    assert (opt / "python" / "coverage" / "__init__.py").is_file()
    assert not list((opt / "python" / "coverage").glob("*.so")), "a compiled tracer would tie the layer to one architecture"
    for executable in layout.EXECUTABLES:
        assert os.access(opt / executable, os.X_OK), executable

    built = tmp_path / "dist"
    built.mkdir()
    for architecture in layout.ARCHITECTURES:
        with zipfile.ZipFile(built / layout.zip_name(layout.layer_version(), architecture), "w") as archive:
            archive.writestr("python/coverage_wrapper/__init__.py", "")
    from_dist = resolve_layer_assets("auto", dist=built)
    assert [(a.source, a.architectures) for a in from_dist] == [("dist", ("arm64",)), ("dist", ("x86_64",))]

    with pytest.raises(LayerSourceError, match="make build"):
        resolve_layer_assets("dist", dist=empty)
    assert resolve_layer_assets("layer_src", dist=built)[0].source == "layer_src"


# -- pipeline functions --------------------------------------------------------------------------


def _functions_by_handler(raw: dict) -> dict[str, dict]:
    return {res["Properties"]["Handler"]: res["Properties"] for res in _resources(raw, "AWS::Lambda::Function").values() if "Handler" in res["Properties"]}


def test_every_catalog_function_is_deployed_on_arm64_python312_with_powertools_and_coverage_layers(synthesized):
    stack, raw, _ = synthesized
    deployed = _functions_by_handler(raw)
    coverage_layer = {"Ref": _logical_id(stack, stack.layer.versions["arm64"])}
    for entry in pipeline.FUNCTIONS:
        function = deployed[entry.handler]
        assert function["Runtime"] == "python3.12"
        assert function["Architectures"] == ["arm64"]
        assert function["MemorySize"] == entry.memory_mb
        assert function["Timeout"] == entry.timeout_seconds
        assert function["Environment"]["Variables"]["COVERAGE_S3_BUCKET"] == {"Ref": _logical_id(stack, stack.bucket)}
        assert function["Environment"]["Variables"]["COVERAGE_S3_PREFIX"] == PREFIX
        assert function["Environment"]["Variables"]["COMBINE_WINDOW_SECONDS"] == "900", "one combine per group per 15 minutes"
        layers = function["Layers"]
        assert coverage_layer in layers
        powertools = [layer for layer in layers if "Fn::Join" in layer]
        assert len(powertools) == 1
        arn = "".join(part if isinstance(part, str) else "{" + next(iter(part.values())) + "}" for part in powertools[0]["Fn::Join"][1])
        assert arn == f"arn:{{AWS::Partition}}:lambda:{{AWS::Region}}:{POWERTOOLS_ACCOUNT}:layer:{POWERTOOLS_LAYER_NAME}:27"
        assert POWERTOOLS_LAYER_NAME == "AWSLambdaPowertoolsPythonV3-python312-arm64"


def test_pipeline_code_asset_holds_the_services_package(synthesized):
    stack, raw, outdir = synthesized
    code = raw["Resources"][_logical_id(stack, stack.pipeline.functions["Validate"])]["Properties"]["Code"]
    asset_dir = outdir / f"asset.{code['S3Key'].split('.')[0]}"
    for entry in pipeline.FUNCTIONS:
        module = entry.handler.rsplit(".", 1)[0]
        assert (asset_dir / (module.replace(".", "/") + ".py")).is_file(), entry.handler


# -- state machines and rules ---------------------------------------------------------------------


def _state_machine(raw: dict, stack, name: str) -> tuple[str, dict]:
    logical = _logical_id(stack, stack.workflow.state_machines[name])
    return logical, raw["Resources"][logical]["Properties"]


def test_state_machines_use_the_asl_files_and_substitutions_resolve_to_the_functions(synthesized):
    stack, raw, outdir = synthesized
    for machine in pipeline.STATE_MACHINES:
        _, props = _state_machine(raw, stack, machine.logical_name)
        assert props["StateMachineType"] == machine.type
        # DefinitionBody.from_file ships the very file as an asset; CloudFormation substitutes into it.
        asset = outdir / f"asset.{props['DefinitionS3Location']['Key']}"
        assert asset.read_bytes() == machine.definition_path.read_bytes()
        substitutions = props["DefinitionSubstitutions"]
        assert set(substitutions) == pipeline.placeholders(machine)
        for name, function in stack.pipeline.functions.items():
            key = pipeline.FUNCTIONS_BY_NAME[name].arn_substitution
            if key in substitutions:
                assert substitutions[key] == {"Fn::GetAtt": [_logical_id(stack, function), "Arn"]}
    _, intake = _state_machine(raw, stack, "Intake")
    combine_id, _ = _state_machine(raw, stack, "Combine")
    assert intake["DefinitionSubstitutions"][pipeline.COMBINE_STATE_MACHINE_ARN] == {"Ref": combine_id}


def test_intake_is_express_with_full_cloudwatch_logging(synthesized):
    stack, raw, _ = synthesized
    _, intake = _state_machine(raw, stack, "Intake")
    assert intake["StateMachineType"] == "EXPRESS"
    assert intake["LoggingConfiguration"]["Level"] == "ALL"
    assert intake["LoggingConfiguration"]["IncludeExecutionData"] is True
    assert "LogGroupArn" in intake["LoggingConfiguration"]["Destinations"][0]["CloudWatchLogsLogGroup"]


def test_raw_object_created_rule_uses_the_pipeline_pattern_and_starts_intake(synthesized):
    stack, raw, _ = synthesized
    rule = raw["Resources"][_logical_id(stack, stack.workflow.raw_object_created_rule)]["Properties"]
    bucket_ref = {"Ref": _logical_id(stack, stack.bucket)}
    assert rule["EventPattern"] == pipeline.raw_object_created_pattern(bucket_ref, PREFIX)
    [target] = rule["Targets"]
    intake_id, _ = _state_machine(raw, stack, "Intake")
    assert target["Arn"] == {"Ref": intake_id}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [_logical_id(stack, stack.workflow.dead_letter_queue), "Arn"]}


def test_daily_schedule_starts_combine_with_daily_mode(synthesized):
    stack, raw, _ = synthesized
    rule = raw["Resources"][_logical_id(stack, stack.workflow.daily_rule)]["Properties"]
    assert rule["ScheduleExpression"] == pipeline.DAILY_SCHEDULE_EXPRESSION
    [target] = rule["Targets"]
    combine_id, _ = _state_machine(raw, stack, "Combine")
    assert target["Arn"] == {"Ref": combine_id}
    assert json.loads(target["Input"]) == {"mode": "daily"} == pipeline.DAILY_SCHEDULE_INPUT
    assert "DeadLetterConfig" in target


def test_alarms_watch_failed_executions_and_the_dead_letter_queue(synthesized):
    stack, raw, _ = synthesized
    alarms = list(_resources(raw, "AWS::CloudWatch::Alarm").values())
    failed = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Ref"]
        for alarm in alarms
        if alarm["Properties"].get("MetricName") == "ExecutionsFailed"
    }
    assert failed == {_state_machine(raw, stack, name)[0] for name in ("Intake", "Combine")}
    dlq = [a for a in alarms if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"]
    assert dlq and dlq[0]["Properties"]["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": [_logical_id(stack, stack.workflow.dead_letter_queue), "QueueName"]
    }


# -- least privilege -------------------------------------------------------------------------------


def test_state_machines_may_invoke_only_their_functions_and_intake_may_start_combine(synthesized):
    stack, raw, _ = synthesized
    functions = {name: _logical_id(stack, f) for name, f in stack.pipeline.functions.items()}
    for machine in pipeline.STATE_MACHINES:
        state_machine = stack.workflow.state_machines[machine.logical_name]
        statements = _role_statements(raw, _logical_id(stack, state_machine.role))
        invoked = {
            resource["Fn::GetAtt"][0]
            for s in statements
            if "lambda:InvokeFunction" in _as_list(s["Action"])
            for resource in _as_list(s["Resource"])
            if "Fn::GetAtt" in resource
        }
        expected = {functions[n] for n, f in pipeline.FUNCTIONS_BY_NAME.items() if f.arn_substitution in pipeline.placeholders(machine)}
        assert invoked == expected
        starts = [s for s in statements if "states:StartExecution" in _as_list(s["Action"])]
        if machine.logical_name == "Intake":
            assert [s["Resource"] for s in starts] == [{"Ref": _state_machine(raw, stack, "Combine")[0]}]
        else:
            # Combine starts only itself (follow-ups, the Distributed Map's children) and watches only its children.
            name = _state_machine(raw, stack, "Combine")[1]["StateMachineName"]
            assert name == f"{machine.state_machine_name}-{stack.stack_name}"
            assert [_arn_text(s["Resource"]) for s in starts] == [f"arn:{{AWS::Partition}}:states:{{AWS::Region}}:{{AWS::AccountId}}:stateMachine:{name}"]
            children = [s for s in statements if "states:DescribeExecution" in _as_list(s["Action"])]
            assert [_arn_text(s["Resource"]) for s in children] == [f"arn:{{AWS::Partition}}:states:{{AWS::Region}}:{{AWS::AccountId}}:execution:{name}/*"]
            assert _as_list(children[0]["Action"]) == ["states:DescribeExecution", "states:StopExecution"]
        assert not [s for s in statements if any(a.startswith("s3:") for a in _as_list(s["Action"]))]


def _arn_text(resource) -> str:
    return "".join(p if isinstance(p, str) else "{" + next(iter(p.values())) + "}" for p in resource["Fn::Join"][1])


@pytest.mark.parametrize(
    "service, allowed",
    [
        ("Validate", {"s3:GetObject": {"raw/*"}, "s3:PutObject": {"quarantine/*"}, "s3:DeleteObject": {"raw/*"}}),
        ("Plan", {"s3:GetObject": {"raw/*", "combined/*", "versions/*"}, "s3:PutObject": {"combined/*", "quarantine/*", "versions/*"},
                  "s3:DeleteObject": {"combined/*", "raw/*"}}),
        (
            "Report",
            {
                "s3:GetObject": {"combined/*", "sources/*", "reports/*", "daily/*", "quarantine/*", "versions/*"},
                "s3:PutObject": {"combined/*", "reports/*", "daily/*", "versions/*"},
                "s3:DeleteObject": {"combined/*", "versions/*"},
            },
        ),
    ],
)
def test_pipeline_functions_reach_only_the_prefixes_of_their_step(synthesized, service, allowed):
    stack, raw, _ = synthesized
    function = stack.pipeline.functions[service]
    grants = _s3_grants(_role_statements(raw, _logical_id(stack, function.role)))
    object_actions = {action for action in grants if action != "s3:ListBucket"}
    assert object_actions == set(allowed)
    for action, patterns in allowed.items():
        assert _prefix_resources(grants, action) == {PREFIX + p for p in patterns}
    assert grants["s3:ListBucket"] == [{"Fn::GetAtt": [_logical_id(stack, stack.bucket), "Arn"]}]


def test_instrumented_examples_may_only_put_their_raw_files_and_sources(synthesized):
    stack, raw, _ = synthesized
    bucket_id = _logical_id(stack, stack.bucket)
    for example in EXAMPLES:
        function = stack.examples.functions[example.construct_id]
        function_id = _logical_id(stack, function)
        grants = _s3_grants(_role_statements(raw, _logical_id(stack, function.role)))
        expected_put = [
            _object_arn(bucket_id, f"/{PREFIX}raw/", {"Ref": function_id}, "/*"),
            _object_arn(bucket_id, f"/{PREFIX}sources/", {"Ref": function_id}, "/*/manifest.json"),
            _object_arn(bucket_id, f"/{PREFIX}sources/blobs/*"),
        ]
        if example.construct_id == "CoverageCombiner":
            # The seed's combiner also reads raw files and writes its report: checked apart below.
            assert all(r in grants["s3:PutObject"] for r in expected_put)
            assert _prefix_resources(grants, "s3:GetObject") == {f"{PREFIX}raw/*"}
            continue
        assert grants == {"s3:PutObject": expected_put}, example.construct_id


def test_examples_carry_the_layer_and_coverage_environment(synthesized):
    stack, raw, _ = synthesized
    bucket_id = _logical_id(stack, stack.bucket)
    for example in EXAMPLES:
        props = raw["Resources"][_logical_id(stack, stack.examples.functions[example.construct_id])]["Properties"]
        variables = props["Environment"]["Variables"]
        assert variables["COVERAGE_S3_BUCKET"] == {"Ref": bucket_id}
        assert variables["COVERAGE_S3_PREFIX"] == PREFIX
        assert {"Ref": _logical_id(stack, stack.layer.versions[props["Architectures"][0]])} in props["Layers"]
        if example.zero_code:
            assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/coverage-instrument"
        else:
            assert "AWS_LAMBDA_EXEC_WRAPPER" not in variables
        assert props["Handler"] == example.handler
    assert any(example.zero_code for example in EXAMPLES)


def test_example_handlers_exist_in_the_examples_folders():
    for example in EXAMPLES:
        module, function = example.handler.rsplit(".", 1)
        source = example.path / (module.replace(".", "/") + ".py")
        assert source.is_file(), source
        defined = {node.name for node in ast.parse(source.read_text()).body if isinstance(node, ast.FunctionDef)}
        assert function in defined, example.handler


def test_outputs_name_bucket_layer_state_machines_and_dashboard(synthesized):
    stack, raw, _ = synthesized
    outputs = raw["Outputs"]
    assert outputs["CoverageBucketName"]["Value"] == {"Ref": _logical_id(stack, stack.bucket)}
    assert outputs["CoverageLayerArn"]["Value"] == {"Ref": _logical_id(stack, stack.layer.versions["arm64"])}
    assert outputs["IntakeStateMachineArn"]["Value"] == {"Ref": _state_machine(raw, stack, "Intake")[0]}
    assert outputs["CombineStateMachineArn"]["Value"] == {"Ref": _state_machine(raw, stack, "Combine")[0]}
    assert outputs["DashboardKey"]["Value"] == f"{PREFIX}reports/index.html"
    for example in EXAMPLES:
        assert f"{example.construct_id}FunctionName" in outputs


# -- the construct in someone else's app ------------------------------------------------------------


def test_instrumentation_construct_instruments_a_user_function_in_one_line():
    app = cdk.App()
    stack = cdk.Stack(app, "UserStack")
    bucket = s3.Bucket.from_bucket_name(stack, "Coverage", "team-coverage")
    layers = {
        "arm64": lambda_.LayerVersion.from_layer_version_arn(stack, "Arm", "arn:aws:lambda:eu-west-1:111122223333:layer:lambda-coverage-layer-arm64:3"),
        "x86_64": lambda_.LayerVersion.from_layer_version_arn(stack, "X86", "arn:aws:lambda:eu-west-1:111122223333:layer:lambda-coverage-layer-x86_64:3"),
    }
    function = lambda_.Function(
        stack,
        "Orders",
        function_name="orders",
        runtime=lambda_.Runtime.PYTHON_3_11,
        architecture=lambda_.Architecture.X86_64,
        handler="app.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
    )
    CoverageInstrumentation(stack, "Instrumentation", bucket=bucket, layer=layers, prefix="cov").instrument(
        function, zero_code=False, code_version="abc123"
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Layers": ["arn:aws:lambda:eu-west-1:111122223333:layer:lambda-coverage-layer-x86_64:3"],
            "Environment": {
                "Variables": {"COVERAGE_S3_BUCKET": "team-coverage", "COVERAGE_S3_PREFIX": "cov/", "COVERAGE_CODE_VERSION": "abc123"}
            },
        },
    )
    variables = next(iter(template.find_resources("AWS::Lambda::Function").values()))["Properties"]["Environment"]["Variables"]
    assert "AWS_LAMBDA_EXEC_WRAPPER" not in variables
    [policy] = template.find_resources("AWS::IAM::Policy").values()
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "s3:PutObject"
    resolved = [
        "".join(p if isinstance(p, str) else "{" + next(iter(p.values())) + "}" for p in r["Fn::Join"][1]) for r in statement["Resource"]
    ]
    assert resolved == [
        "arn:{AWS::Partition}:s3:::team-coverage/cov/raw/{" + _logical_id(stack, function) + "}/*",
        "arn:{AWS::Partition}:s3:::team-coverage/cov/sources/{" + _logical_id(stack, function) + "}/*/manifest.json",
        "arn:{AWS::Partition}:s3:::team-coverage/cov/sources/blobs/*",
    ]


def test_no_instrumented_function_may_write_another_functions_source_manifest(synthesized):
    stack, raw, _ = synthesized
    bucket_id = _logical_id(stack, stack.bucket)
    functions = [stack.examples.functions[example.construct_id] for example in EXAMPLES]
    for function in functions:
        grants = _s3_grants(_role_statements(raw, _logical_id(stack, function.role)))
        sources = [r for r in grants["s3:PutObject"] if "sources/" in json.dumps(r)]
        others = [{"Ref": _logical_id(stack, other)} for other in functions if other is not function]
        assert _object_arn(bucket_id, f"/{PREFIX}sources/*") not in sources
        for resource in sources:
            parts = resource["Fn::Join"][1]
            assert not any(other in parts for other in others)
            assert parts[1:] in ([f"/{PREFIX}sources/blobs/*"], [f"/{PREFIX}sources/", {"Ref": _logical_id(stack, function)}, "/*/manifest.json"])


def test_bucket_policy_makes_source_snapshots_write_once(synthesized):
    stack, raw, _ = synthesized
    bucket_id = _logical_id(stack, stack.bucket)
    [policy] = [p for p in _resources(raw, "AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
    denials = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny" and s["Action"] == "s3:PutObject"]
    # `s3:if-none-match` is S3's condition key for the If-None-Match header (conditional writes): absent → denied.
    assert denials == [
        {
            "Sid": "SourceSnapshotsAreWriteOnce",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:PutObject",
            "Resource": _object_arn(bucket_id, f"/{PREFIX}sources/*"),
            "Condition": {"Null": {"s3:if-none-match": "true"}},
        }
    ]


# -- Make targets without credentials ---------------------------------------------------------------


def _no_credentials_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=os.fspath(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=os.fspath(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def test_credentials_check_fails_fast_with_one_clear_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "lambda_coverage.credentials", "cdk-deploy"],
        cwd=REPO, env=_no_credentials_env(tmp_path), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no AWS credentials" in lines[0] and "cdk-deploy" in lines[0]


@pytest.mark.parametrize("target", ["cdk-deploy", "cdk-destroy", "test-deploy", "test-all", "test-destroy"])
def test_aws_make_targets_stop_before_any_aws_call_without_credentials(tmp_path, target):
    result = subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=REPO, env=_no_credentials_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert f"make {target}: no AWS credentials found" in result.stderr
    assert "npx" not in result.stdout, "the CDK CLI must not run without credentials"
