"""Planning a combine: which groups, and which of their raw files, in batches described by key ranges.

Batches are key ranges, not key lists, so the plan stays small in the state machine's payload
(256 KB) however many files a day brings.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from coverage_wrapper import keys

from services import storage
from services.settings import PipelineSettings

from .provenance import is_merged, merged_objects
from .request import CombineRequest


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

    @classmethod
    def from_dict(cls, payload: Any) -> "Group":
        return cls(payload["function"], payload["date"], payload["version"])

    def as_dict(self) -> dict[str, str]:
        return {"function": self.function, "date": self.date, "version": self.version}


@dataclass
class GroupPlan:
    group: Group
    rebuild: bool
    token: str
    batches: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**self.group.as_dict(), "rebuild": self.rebuild, "token": self.token, "batches": self.batches}


def manifest_raw_keys(s3: Any, settings: PipelineSettings, group: Group) -> dict[str, set[str]]:
    """Raw keys the group's manifest says are merged, with the ETags of their merged contents; empty before the first combine."""
    manifest = storage.read_object(s3, settings.bucket, group.manifest_key(settings.prefix))
    return merged_objects(json.loads(manifest.body)) if manifest else {}


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


def plan_group(s3: Any, settings: PipelineSettings, group: Group, rebuild: bool, token: str) -> GroupPlan:
    """Split the group's raw files that still need merging into key ranges of at most `batch_size` files."""
    merged = {} if rebuild else manifest_raw_keys(s3, settings, group)
    listed = storage.list_objects(s3, settings.bucket, group.raw_prefix(settings.prefix))
    pending = [item["Key"] for item in listed if not is_merged(item["Key"], item["ETag"], merged)]
    plan = GroupPlan(group, rebuild, token)
    after = ""
    for start in range(0, len(pending), settings.batch_size):
        chunk = pending[start : start + settings.batch_size]
        plan.batches.append({"after": after, "last": chunk[-1], "count": len(chunk)})
        after = chunk[-1]
    return plan


def plan(s3: Any, settings: PipelineSettings, request: CombineRequest) -> dict[str, Any]:
    """The whole combine: groups with work to do (every group of a rebuild), and what the dashboard needs."""
    token = uuid.uuid4().hex[:12]
    plans = [plan_group(s3, settings, group, request.rebuild, token) for group in groups_of(s3, settings, request)]
    plans = [p for p in plans if p.batches or request.rebuild]
    return {
        "mode": request.mode,
        "date": request.date,
        "groups": [p.as_dict() for p in plans],
        "files": sum(b["count"] for p in plans for b in p.batches),
        "dashboard": {"date": request.date} if request.mode == "daily" else {},
    }
