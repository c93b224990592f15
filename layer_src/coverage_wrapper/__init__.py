"""Lambda Coverage Layer: coverage.py inside Lambda functions, shipped to S3 off the response path.

Importing this package is cheap: coverage.py is imported when measuring starts, boto3 only where
data is shipped or combined, never on a non-flush invocation.
"""

from ._version import __version__
from .handler import CoverageContext, coverage_handler
from .health import get_coverage_status, health_check_handler


def flush() -> dict:
    """Flush what was measured now (into the outbox, shipped off the response path); never raises."""
    from .session import get_session

    return get_session().flush(reason="manual")


def combine_coverage_files(bucket_name: str, prefix: str, output_key: str) -> dict:
    """Combine the raw files under an S3 prefix (see `coverage_wrapper.combine`)."""
    from .combine import combine_coverage_files as combine

    return combine(bucket_name, prefix, output_key)


__all__ = [
    "CoverageContext",
    "__version__",
    "combine_coverage_files",
    "coverage_handler",
    "flush",
    "get_coverage_status",
    "health_check_handler",
]
