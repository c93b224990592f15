"""The coverage bucket: EventBridge notifications, encryption, TLS only, write-once sources, lifecycle per prefix, access logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from coverage_wrapper.keys import RAW_RETENTION_DAYS, normalize_prefix


def _removal(ephemeral: bool) -> RemovalPolicy:
    # A production bucket outlives its stack (coverage history); a test stack cleans up after itself.
    return RemovalPolicy.DESTROY if ephemeral else RemovalPolicy.RETAIN


def access_log_bucket(scope: Construct, construct_id: str, *, retention_days: int = 90, ephemeral: bool = False) -> s3.Bucket:
    """The destination of the coverage bucket's server access logs."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        lifecycle_rules=[s3.LifecycleRule(id="ExpireAccessLogs", expiration=Duration.days(retention_days))],
        removal_policy=_removal(ephemeral),
        auto_delete_objects=ephemeral,
    )
    return bucket


def coverage_bucket(
    scope: Construct,
    construct_id: str,
    *,
    prefix: str,
    access_logs: s3.IBucket,
    raw_retention_days: int = RAW_RETENTION_DAYS,
    quarantine_retention_days: int = 90,
    ephemeral: bool = False,
) -> s3.Bucket:
    """The one bucket of the S3 layout (raw, sources, combined, daily, reports, quarantine)."""
    prefix = normalize_prefix(prefix)
    bucket = s3.Bucket(
        scope,
        construct_id,
        event_bridge_enabled=True,  # Object Created events start the intake
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix="coverage-bucket/",
        lifecycle_rules=[
            # Raw files are merged within minutes and swept daily; a month leaves room for rebuilds.
            s3.LifecycleRule(
                id="ExpireRaw",
                prefix=f"{prefix}raw/",
                expiration=Duration.days(raw_retention_days),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            ),
            # Rejected uploads are kept long enough for someone to read their .reason.json.
            s3.LifecycleRule(
                id="ExpireQuarantine",
                prefix=f"{prefix}quarantine/",
                expiration=Duration.days(quarantine_retention_days),
            ),
        ],
        removal_policy=_removal(ephemeral),
        auto_delete_objects=ephemeral,
    )
    bucket.add_to_resource_policy(write_once_sources(bucket, prefix))
    return bucket


def write_once_sources(bucket: s3.IBucket, prefix: str) -> iam.PolicyStatement:
    """Deny every PutObject under `{prefix}sources/` that is not `If-None-Match: *`: nothing there is ever overwritten.

    Blobs are shared by every instrumented function, so one function must not be able to replace what
    another's reports show; a manifest is its code version's claim, written once by the layer.
    Multipart uploads are denied too (their parts carry no condition): the layer PUTs sources whole.
    """
    return iam.PolicyStatement(
        sid="SourceSnapshotsAreWriteOnce",
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=["s3:PutObject"],
        resources=[bucket.arn_for_objects(f"{normalize_prefix(prefix)}sources/*")],
        conditions={"Null": {"s3:if-none-match": "true"}},
    )
