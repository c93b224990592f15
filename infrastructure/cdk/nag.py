"""cdk-nag (v3) wiring: the AwsSolutions pack as a validation plugin, and acknowledgments that carry a reason."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

PACK = "AwsSolutions"


def add_checks(app: cdk.App) -> None:
    """Run AwsSolutions on every synth; a finding that is not acknowledged fails the synth."""
    # Also written into the template's Metadata (cdk_nag.rules_to_suppress), so the audit trail ships with it.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one rule (or one finding, `Rule[Finding]`) on `scope` and below; `reason` says why it is right."""
    if len(reason.strip()) < 20:
        raise ValueError(f"{rule}: an acknowledgment needs a real reason")
    qualified = rule if "::" in rule.split("[", 1)[0] else f"{PACK}::{rule}"
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=qualified, reason=reason))


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id of an L2 construct's resource, as cdk-nag names it in findings."""
    stack = cdk.Stack.of(construct)
    return str(stack.resolve(stack.get_logical_id(construct.node.default_child)))


def object_wildcard(bucket: IConstruct, pattern: str) -> str:
    """The IAM5 finding of an object ARN `{bucket arn}/{pattern}`, e.g. `coverage/raw/*`."""
    return f"AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/{pattern}]"
