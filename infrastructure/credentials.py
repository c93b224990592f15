"""Fail fast before any AWS call: one clear line and exit 1 when botocore resolves no credentials (every AWS target)."""

from __future__ import annotations

import sys


def has_credentials() -> bool:
    """True when botocore's default chain (env, profile, SSO, container, instance) yields credentials."""
    import botocore.session

    try:
        credentials = botocore.session.get_session().get_credentials()
    except Exception:  # a broken profile is as unusable as none; the message below says what to fix
        return False
    return credentials is not None and bool(credentials.access_key)


def main(argv: list[str] | None = None) -> int:
    target = (argv if argv is not None else sys.argv[1:])[:1] or ["this target"]
    if has_credentials():
        return 0
    print(
        f"make {target[0]}: no AWS credentials found (botocore): set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
        "AWS_SECRET_ACCESS_KEY, or run `aws configure` / `aws sso login`; `make cdk-synth` works without them.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
