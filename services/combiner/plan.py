"""Planning a combine: wait for the window to settle, then which groups, and which of their raw files, in batches.

A group's batches are key ranges written to S3 beside its partials; the state machine only carries
their numbers, so its payload (256 KB) and history (25,000 events, the batches run in a Distributed
Map's child executions) stay small however many files a day brings. See BENCHMARKS.md, "Scale".
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from coverage_wrapper import keys

from lambda_coverage.services import storage
from lambda_coverage.services.settings import PipelineSettings

from .provenance import is_merged, merged_objects
from .request import CombineRequest, InvalidCombineInput


@dataclass(frozen=True)
class Group:
    """The unit of combining: data of one function, one day, one code version."""

    function: str
    date: str
    version: str

    def raw_prefix(self, prefix: str) -> str:
        return keys.raw_group_prefix(prefix, self.function, self.date, self.version)

    def data_key(self, prefix: str) -> str:
        return keys.combined_data_key(prefix, self.function, self.date, self.version)

    def manifest_key(self, prefix: str) -> str:
        return keys.combined_manifest_key(prefix, self.function, self.date, self.version)

    def partial_key(self, prefix: str, token: str, index: int) -> str:
        return keys.partial_key(prefix, self.function, self.date, self.version, f"{token}-{index:05d}")

    def partials_prefix(self, prefix: str, token: str) -> str:
        """Where one combine's partials are (its `token` names them), and nothing else."""
        return keys.combined_prefix(prefix, self.function, self.date, self.version) + f"partials/{token}-"

    def batches_key(self, prefix: str, token: str) -> str:
        """The key ranges of one combine's batches, read by each batch's merge."""
        return keys.combined_prefix(prefix, self.function, self.date, self.version) + f"partials/{token}.batches.json"

    @classmethod
    def from_dict(cls, payload: Any) -> Group:
        return cls(payload["function"], payload["date"], payload["version"])

    def as_dict(self) -> dict[str, str]:
        return {"function": self.function, "date": self.date, "version": self.version}


def manifest_raw_keys(s3: Any, settings: PipelineSettings, group: Group) -> dict[str, set[str]]:
    """Raw keys the group's manifest says are merged, with the ETags of their merged contents; empty before the first combine."""
    manifest = storage.read_object(s3, settings.bucket, group.manifest_key(settings.prefix))
    return merged_objects(json.loads(manifest.body)) if manifest else {}


def pending_raw_keys(s3: Any, settings: PipelineSettings, group: Group) -> list[str]:
    """The group's raw keys whose current content is not in its manifest (new keys, or keys uploaded again), in key order."""
    merged = manifest_raw_keys(s3, settings, group)
    listed = storage.list_objects(s3, settings.bucket, group.raw_prefix(settings.prefix))
    return [item["Key"] for item in listed if not is_merged(item["Key"], item["ETag"], merged)]


def groups_of(s3: Any, settings: PipelineSettings, request: CombineRequest) -> list[Group]:
    if request.mode == "window" or (request.function and request.version):
        return [Group(request.function, request.date, request.version)]  # type: ignore[arg-type]
    raw_root = keys.raw_root(settings.prefix)
    functions = [request.function] if request.function else storage.list_children(s3, settings.bucket, raw_root)
    groups = []
    for function in functions:
        for version in storage.list_children(s3, settings.bucket, keys.raw_group_prefix(settings.prefix, function, request.date)):
            groups.append(Group(function, request.date, version))
    return groups


def batch_ranges(raw_keys: list[str], batch_size: int) -> list[dict[str, Any]]:
    """Consecutive key ranges (after, last] of at most `batch_size` of the sorted `raw_keys`."""
    ranges, after = [], ""
    for start in range(0, len(raw_keys), batch_size):
        chunk = raw_keys[start : start + batch_size]
        ranges.append({"after": after, "last": chunk[-1], "count": len(chunk)})
        after = chunk[-1]
    return ranges


def plan_group(s3: Any, settings: PipelineSettings, group: Group, rebuild: bool, token: str) -> dict[str, Any] | None:
    """Write the key ranges of the group's files that still need merging; what the state machine needs of them (None: nothing to do)."""
    if rebuild:
        wanted = list(storage.list_keys(s3, settings.bucket, group.raw_prefix(settings.prefix)))
    else:
        wanted = pending_raw_keys(s3, settings, group)
    if not wanted and not rebuild:
        return None
    ranges = batch_ranges(wanted, settings.batch_size)
    body = json.dumps({**group.as_dict(), "token": token, "batches": ranges}).encode()
    storage.put_object(s3, settings.bucket, group.batches_key(settings.prefix, token), body, ContentType="application/json")
    return {**group.as_dict(), "rebuild": rebuild, "token": token, "files": len(wanted), "batches": list(range(len(ranges)))}


def read_batch(s3: Any, settings: PipelineSettings, group: Group, token: str, index: int) -> dict[str, Any]:
    """The key range of batch `index` of the combine `token`."""
    stored = storage.read_object(s3, settings.bucket, group.batches_key(settings.prefix, token))
    if stored is None:
        raise storage.NotFound(f"no batch plan {group.batches_key(settings.prefix, token)}: its combine was committed already")
    return json.loads(stored.body)["batches"][index]


def plan(s3: Any, settings: PipelineSettings, request: CombineRequest, now: float | None = None) -> dict[str, Any]:
    """The whole combine: not yet (a window that has not settled), or the groups with work to do (every group of a rebuild)."""
    now = time.time() if now is None else now
    result: dict[str, Any] = {
        "mode": request.mode,
        "date": request.date,
        "attempt": request.attempt,
        "ready": True,
        "wait_seconds": 0,
        "groups": [],
        "files": 0,
        "dashboard": {"date": request.date} if request.mode == "daily" else {},
    }
    if request.mode == "since-deploy":
        from . import since_deploy  # it builds on Group, defined here

        # Nothing to merge from raw files: the version's data is rebuilt here from its day groups, then reported.
        rebuilt = since_deploy.rebuild(s3, settings, request.function, request.version)  # type: ignore[arg-type]
        if not rebuilt["days"]:
            raise InvalidCombineInput(f"code version {request.version} of {request.function} has no combined day group to rebuild from")
        return {**result, "since_deploy": {"function": request.function, "version": request.version,
                                           "date": rebuilt["last_seen"], "days": rebuilt["days"]}}
    wait = request.seconds_until_settled(now, settings.window_seconds)
    if wait:
        return {**result, "ready": False, "wait_seconds": wait}
    token = uuid.uuid4().hex[:12]
    planned = [plan_group(s3, settings, group, request.rebuild, token) for group in groups_of(s3, settings, request)]
    result["groups"] = [p for p in planned if p is not None]
    result["files"] = sum(p["files"] for p in result["groups"])
    return result

