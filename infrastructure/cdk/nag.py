"""cdk-nag (v3) wiring: the AwsSolutions pack as a validation plugin, and acknowledgments that carry a reason.

Acknowledgments are aws-cdk-lib's own validations API: the construct for users works without cdk-nag.
"""

from __future__ import annotations

from typing import cast

import aws_cdk as cdk
from constructs import IConstruct

PACK = "AwsSolutions"


def add_checks(app: cdk.App) -> None:
    """Run AwsSolutions on every synth; a finding that is not acknowledged fails the synth."""
    from cdk_nag import AwsSolutionsChecks  # only the project's own app needs it; acknowledgments do not

    # Also written into the template's Metadata (cdk_nag.rules_to_suppress), so the audit trail ships with it.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one rule (or one finding, `Rule[Finding]`) on `scope` and below; `reason` says why it is right."""
    if len(reason.strip()) < 20:
        raise ValueError(f"{rule}: an acknowledgment needs a real reason")
    qualified = rule if "::" in rule.split("[", 1)[0] else f"{PACK}::{rule}"
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=qualified, reason=reason))


def _render(value: object) -> str:
    """A resolved CloudFormation value as cdk-nag writes it in findings: `<Logical.Attr>`, `<Logical>`, `<AWS::Partition>`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(part) for part in parts)
    raise ValueError(f"cannot name a cdk-nag finding for {value!r}")


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id of an L2 construct's resource."""
    stack = cdk.Stack.of(construct)
    return str(stack.resolve(stack.get_logical_id(cast(cdk.CfnElement, construct.node.default_child))))


def resource_wildcard(scope: IConstruct, resource: str) -> str:
    """The IAM5 finding of a wildcard resource ARN (tokens allowed), e.g. a bucket's `coverage/raw/*` objects."""
    return f"AwsSolutions-IAM5[Resource::{_render(cdk.Stack.of(scope).resolve(resource))}]"
