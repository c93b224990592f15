"""S3 for the pipeline services: typed not-found and conflict errors, conditional writes, and their one retry policy.

Every service reads and writes S3 through these functions, so "the object is not there" and "someone
else wrote first" mean one thing everywhere, whatever code S3 (or an emulation of it) answers with.
Throttling (503 SlowDown) and server errors are retried by botocore's standard retry mode on the
client (`lambda_coverage.services.settings.s3_client`); conflicts are retried here, with full-jitter backoff.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

T = TypeVar("T")

NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# 412 is S3's answer to a failed If-Match/If-None-Match; 409 ConditionalRequestConflict its answer when
# two conditional writes of one key are in flight at once. Both mean: read again, then write again.
CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


class StorageError(Exception):
    """An S3 call failed in a way callers handle by name."""


class NotFound(StorageError):
    """The object does not exist (or no longer does)."""


class Conflict(StorageError):
    """A conditional write lost: the object changed since it was read, or exists where it must not."""


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ClientError ('' for anything else)."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


@contextmanager
def translated(key: str) -> Iterator[None]:
    """Turn S3's not-found and precondition answers for `key` into NotFound and Conflict."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        code = error_code(exc)
        if code in NOT_FOUND_CODES:
            raise NotFound(key) from exc
        if code in CONFLICT_CODES:
            raise Conflict(key) from exc
        raise


@dataclass
class StoredObject:
    """One object read whole: its bytes, ETag and user metadata."""

    key: str
    body: bytes
    etag: str
    metadata: dict[str, str] = field(default_factory=dict)


def get_object(s3: Any, bucket: str, key: str, **params: Any) -> dict[str, Any]:
    """The GetObject response (streaming body); raises NotFound."""
    with translated(key):
        return s3.get_object(Bucket=bucket, Key=key, **params)


def read_object(s3: Any, bucket: str, key: str) -> StoredObject | None:
    """The whole object, or None when it does not exist."""
    try:
        response = get_object(s3, bucket, key)
    except NotFound:
        return None
    return StoredObject(key, response["Body"].read(), response["ETag"], dict(response.get("Metadata", {})))


def head_object(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The HeadObject response, or None when the object does not exist."""
    try:
        with translated(key):
            return s3.head_object(Bucket=bucket, Key=key)
    except NotFound:
        return None


def download(s3: Any, bucket: str, key: str, local: str) -> str | None:
    """Write the object to the file `local`; its ETag, or None when it does not exist."""
    try:
        response = get_object(s3, bucket, key)
    except NotFound:
        return None
    with open(local, "wb") as handle:
        for chunk in iter(lambda: response["Body"].read(1 << 20), b""):
            handle.write(chunk)
    return response["ETag"]


def put_object(
    s3: Any, bucket: str, key: str, body: bytes, *, if_match: str | None = None, if_absent: bool = False, **params: Any
) -> str:
    """PUT `body`; with `if_match` only over that ETag, with `if_absent` only where nothing is. The new ETag; raises Conflict."""
    if if_match is not None:
        params["IfMatch"] = if_match
    elif if_absent:
        params["IfNoneMatch"] = "*"
    with translated(key):
        return s3.put_object(Bucket=bucket, Key=key, Body=body, **params)["ETag"]


def put_if_unchanged(s3: Any, bucket: str, key: str, body: bytes, etag: str | None, **params: Any) -> str:
    """PUT only if the object is still the version read (`etag`), or still absent when `etag` is None; raises Conflict."""
    return put_object(s3, bucket, key, body, if_match=etag, if_absent=etag is None, **params)


def upload_file(s3: Any, bucket: str, key: str, local: str) -> None:
    with translated(key):
        s3.upload_file(local, bucket, key)


def delete_object(s3: Any, bucket: str, key: str) -> None:
    """Delete `key`; deleting what is already gone is not an error (S3 answers 204 either way)."""
    with translated(key):
        s3.delete_object(Bucket=bucket, Key=key)


def copy_object(s3: Any, bucket: str, source_key: str, key: str, **params: Any) -> None:
    """Server-side copy within the bucket; raises NotFound when the source is gone."""
    with translated(source_key):
        s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": source_key}, **params)


def list_objects(s3: Any, bucket: str, prefix: str, start_after: str = "") -> Iterator[dict[str, Any]]:
    """Objects under `prefix` in S3's lexicographic key order, after `start_after`."""
    arguments = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        arguments["StartAfter"] = start_after
    for page in s3.get_paginator("list_objects_v2").paginate(**arguments):
        yield from page.get("Contents", [])


def list_keys(s3: Any, bucket: str, prefix: str, start_after: str = "") -> Iterator[str]:
    """Keys under `prefix` in S3's lexicographic order, after `start_after`."""
    for item in list_objects(s3, bucket, prefix, start_after):
        yield item["Key"]


def list_children(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The next key segment of everything under `prefix` (one level of 'folders')."""
    children = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        children += [common["Prefix"][len(prefix) :].rstrip("/") for common in page.get("CommonPrefixes", [])]
    return children


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter: attempt n sleeps uniform(0, min(cap, base * 2**n)).

    Full jitter spreads writers that collided apart instead of letting them collide again in step.
    """

    attempts: int = 10
    base_seconds: float = 0.05
    cap_seconds: float = 2.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        return (rng or random).uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))


CONDITIONAL_WRITES = Backoff()


def retry_on_conflict(
    attempt: Callable[[], T],
    what: str,
    policy: Backoff = CONDITIONAL_WRITES,
    sleep: Callable[[float], None] = time.sleep,
    exhausted: type[Conflict] = Conflict,
) -> T:
    """Run one read-modify-write `attempt` until it does not raise Conflict; `exhausted` after `policy.attempts`."""
    for number in range(policy.attempts):
        try:
            return attempt()
        except Conflict:
            if number + 1 < policy.attempts:
                sleep(policy.delay(number))
    raise exhausted(f"{what}: another writer won {policy.attempts} times in a row")


def update_object(
    s3: Any,
    bucket: str,
    key: str,
    change: Callable[[StoredObject | None], bytes | None],
    what: str,
    policy: Backoff = CONDITIONAL_WRITES,
    **params: Any,
) -> str | None:
    """Optimistic read-modify-write of one object: `change(current)` gives the new bytes (None: leave it).

    The write is conditional on the version read; when another writer got there first the object is
    read again and `change` applied to the newer version. The new ETag, or None when nothing was written.
    """

    def attempt() -> str | None:
        current = read_object(s3, bucket, key)
        body = change(current)
        if body is None:
            return None
        return put_if_unchanged(s3, bucket, key, body, current.etag if current else None, **params)

    return retry_on_conflict(attempt, what, policy)
