"""The pipeline's shape, shared by the CDK app and the local emulation: functions, state machines, rules, schedule.

Both stand-ups import these objects, so AWS and this machine run the same handlers, the same
state machine definitions (with the same substitution variables) and the same event patterns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coverage_wrapper.keys import normalize_prefix, raw_root
from lambda_coverage.services.settings import PipelineSettings

from . import data_dir

STATEMACHINE_DIR = data_dir("statemachine")
METRICS_NAMESPACE = "LambdaCoverage"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


@dataclass(frozen=True)
class PipelineFunction:
    """One pipeline Lambda: its handler, its size, and the ASL placeholder its ARN fills."""

    logical_name: str
    handler: str
    memory_mb: int
    timeout_seconds: int
    description: str

    @property
    def arn_substitution(self) -> str:
        return f"{self.logical_name}FunctionArn"

    @property
    def function_name(self) -> str:
        """The physical name used locally (CDK may let CloudFormation name them)."""
        return "lambda-coverage-" + re.sub(r"(?<!^)(?=[A-Z])", "-", self.logical_name).lower()


FUNCTIONS: tuple[PipelineFunction, ...] = (
    PipelineFunction("Validate", "lambda_coverage.services.uploader.handler.validate_handler", 512, 60,
                     "Intake: validate one raw upload, quarantine it or name its combine window"),
    PipelineFunction("Plan", "lambda_coverage.services.combiner.handler.plan_handler", 512, 120,
                     "Combine: list the groups' raw files not yet merged, in key-range batches"),
    PipelineFunction("MergeBatch", "lambda_coverage.services.combiner.handler.merge_batch_handler", 1024, 300,
                     "Combine: merge one batch of raw files into a partial data file"),
    PipelineFunction("Commit", "lambda_coverage.services.combiner.handler.commit_handler", 1024, 300,
                     "Combine: fold partials into the combined data with S3 conditional writes"),
    PipelineFunction("FollowUp", "lambda_coverage.services.combiner.handler.follow_up_handler", 256, 60,
                     "Combine: name the window combine that takes the group's raw files still outside the manifest"),
    PipelineFunction("Report", "lambda_coverage.services.reporter.handler.report_handler", 1536, 300,
                     "Report: render a group's JSON, HTML, LCOV, Cobertura and summary"),
    PipelineFunction("Dashboard", "lambda_coverage.services.reporter.handler.dashboard_handler", 1024, 300,
                     "Report: refresh the dashboard and the daily roll-up"),
)
FUNCTIONS_BY_NAME = {f.logical_name: f for f in FUNCTIONS}


@dataclass(frozen=True)
class StateMachine:
    logical_name: str
    type: str  # EXPRESS or STANDARD
    definition_file: str
    substitutions: tuple[str, ...]

    @property
    def definition_path(self) -> Path:
        return STATEMACHINE_DIR / self.definition_file

    @property
    def state_machine_name(self) -> str:
        return f"lambda-coverage-{self.logical_name.lower()}"


COMBINE_STATE_MACHINE_ARN = "CombineStateMachineArn"
COMBINE = StateMachine("Combine", "STANDARD", "combine.asl.json",
                       ("PlanFunctionArn", "MergeBatchFunctionArn", "CommitFunctionArn", "FollowUpFunctionArn", "ReportFunctionArn",
                        "DashboardFunctionArn"))
INTAKE = StateMachine("Intake", "EXPRESS", "intake.asl.json", ("ValidateFunctionArn", COMBINE_STATE_MACHINE_ARN))
STATE_MACHINES = (COMBINE, INTAKE)  # combine first: the intake's definition needs its ARN

# The daily sweep: shortly after midnight UTC; no date in the input means "yesterday".
DAILY_SCHEDULE_EXPRESSION = "cron(15 0 * * ? *)"
DAILY_SCHEDULE_INPUT: dict[str, Any] = {"mode": "daily"}
DEFAULT_WINDOW_SECONDS = PipelineSettings.window_seconds


def definition_substitutions(function_arns: Mapping[str, str], combine_state_machine_arn: str) -> dict[str, str]:
    """Values for every `${Placeholder}` in the definitions, from logical function name → ARN."""
    substitutions = {FUNCTIONS_BY_NAME[name].arn_substitution: arn for name, arn in function_arns.items()}
    substitutions[COMBINE_STATE_MACHINE_ARN] = combine_state_machine_arn
    return substitutions


def placeholders(machine: StateMachine) -> set[str]:
    return set(_PLACEHOLDER.findall(machine.definition_path.read_text()))


def render_definition(machine: StateMachine, substitutions: Mapping[str, str]) -> str:
    """The definition with its placeholders filled, as CloudFormation's DefinitionSubstitutions would."""
    text = machine.definition_path.read_text()
    missing = placeholders(machine) - set(substitutions)
    if missing:
        raise KeyError(f"{machine.definition_file}: no value for {', '.join(sorted(missing))}")
    rendered = _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], text)
    json.loads(rendered)
    return rendered


def raw_object_created_pattern(bucket: str, prefix: str) -> dict[str, Any]:
    """The EventBridge pattern of the rule that starts intake: S3 Object Created under `{p}raw/`."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [bucket]},
            "object": {"key": [{"prefix": raw_root(prefix)}]},
        },
    }


def function_environment(bucket: str, prefix: str, window_seconds: int = DEFAULT_WINDOW_SECONDS) -> dict[str, str]:
    """Environment of every pipeline Lambda: where the data is and how long a combine window lasts."""
    return {
        "COVERAGE_S3_BUCKET": bucket,
        "COVERAGE_S3_PREFIX": normalize_prefix(prefix),
        "COMBINE_WINDOW_SECONDS": str(window_seconds),
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
