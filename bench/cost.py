"""The AWS cost model: dollars per 1M instrumented invocations for this design and for the seed's file per invocation.

Pure arithmetic over counts: the benchmark fills the counts from measurements on the local emulation
(requests and Lambda time per raw file and per combine, state transitions from a real execution's
history) and states every assumption it adds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices (first tier), checked 2026-11."""

    s3_put_per_1k: float = 0.005  # PUT, COPY, POST, LIST
    s3_get_per_1k: float = 0.0004  # GET, HEAD and other reads
    eventbridge_per_m: float = 1.00
    sfn_standard_per_1k_transitions: float = 0.025
    sfn_express_per_m_requests: float = 1.00
    sfn_express_per_gb_s: float = 0.00001667  # duration rounded up to 100 ms, memory in 64 MB chunks
    lambda_per_m_requests: float = 0.20
    lambda_per_gb_s_arm64: float = 0.0000133334


PUT_CLASS = ("PutObject", "CopyObject", "ListObjectsV2", "ListObjects", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")
GET_CLASS = ("GetObject", "HeadObject")


@dataclass
class Workload:
    """What it costs to do one unit of pipeline work: requests, Lambda time, workflow size."""

    s3_put: float = 0.0
    s3_get: float = 0.0
    lambda_requests: float = 0.0
    lambda_gb_s: float = 0.0
    express_requests: float = 0.0
    express_gb_s: float = 0.0
    transitions: float = 0.0
    events: float = 0.0

    def scaled(self, factor: float) -> Workload:
        return Workload(**{name: value * factor for name, value in self.__dict__.items()})

    def __add__(self, other: Workload) -> Workload:
        return Workload(**{name: value + getattr(other, name) for name, value in self.__dict__.items()})


def dollars(work: Workload, prices: Prices = Prices()) -> dict[str, float]:
    """Each line item of a workload in dollars, and the total."""
    items = {
        "S3 PUT/LIST": work.s3_put / 1000 * prices.s3_put_per_1k,
        "S3 GET/HEAD": work.s3_get / 1000 * prices.s3_get_per_1k,
        "EventBridge events": work.events / 1e6 * prices.eventbridge_per_m,
        "Step Functions Express": work.express_requests / 1e6 * prices.sfn_express_per_m_requests + work.express_gb_s * prices.sfn_express_per_gb_s,
        "Step Functions Standard": work.transitions / 1000 * prices.sfn_standard_per_1k_transitions,
        "Lambda requests": work.lambda_requests / 1e6 * prices.lambda_per_m_requests,
        "Lambda GB-s": work.lambda_gb_s * prices.lambda_per_gb_s_arm64,
    }
    items["total"] = sum(items.values())
    return items


def express_gb_s(seconds: float, memory_mb: float = 64) -> float:
    """Express duration as billed: rounded up to 100 ms, memory in 64 MB chunks."""
    return math.ceil(max(seconds, 1e-9) * 10) / 10 * math.ceil(memory_mb / 64) * 64 / 1024


def combines_per_day(raw_files_per_day: float, window_seconds: float, groups: int = 1) -> float:
    """Expected combine executions when raw files arrive uniformly over a day: windows that receive at least one."""
    windows = 86400 / window_seconds * groups
    return windows * (1 - math.exp(-raw_files_per_day / windows)) if raw_files_per_day > 0 else 0.0


@dataclass(frozen=True)
class Scenario:
    """Assumptions about the traffic behind 1M invocations."""

    name: str
    invocations: float = 1e6
    days: float = 1.0  # over how many days the 1M invocations arrive
    environments: float = 1000  # execution environments that serve them
    files_per_environment: float = 3  # flushes where coverage grew (2) + the final flush at shutdown (1)
    groups: int = 1  # function × code version
    function_memory_mb: float = 512
    upload_seconds: float = 0.1  # extension time per raw file upload, billed at the function's memory
    window_seconds: float = 60


@dataclass
class PipelineCounts:
    """Measured on the emulation: the work of one raw file through intake and of one combine execution."""

    per_raw_file: Workload = field(default_factory=Workload)
    per_combine: Workload = field(default_factory=Workload)


def layer_cost(scenario: Scenario, counts: PipelineCounts, prices: Prices = Prices()) -> dict:
    """This design per 1M invocations: raw files by the flush policy, intake per file, one combine per busy window."""
    raw_files = scenario.environments * scenario.files_per_environment * scenario.invocations / 1e6
    function_side = Workload(
        s3_put=raw_files + scenario.environments,  # each raw file, and each environment's source-manifest claim
        lambda_gb_s=raw_files * scenario.upload_seconds * scenario.function_memory_mb / 1024,
        events=raw_files,
    )
    combines = combines_per_day(raw_files / scenario.days, scenario.window_seconds, scenario.groups) * scenario.days + scenario.days  # + daily sweeps
    work = function_side + counts.per_raw_file.scaled(raw_files) + counts.per_combine.scaled(combines)
    scale = 1e6 / scenario.invocations
    return {"raw_files": raw_files, "combines": combines, "items": dollars(work.scaled(scale), prices)}


def seed_cost(invocations: float, added_ms_per_invocation: float, function_memory_mb: float = 512, prices: Prices = Prices()) -> dict:
    """The seed per 1M invocations: a data file and a JSON report PUT per invocation, on the response path; one combine reads them all."""
    work = Workload(
        s3_put=2 * invocations + invocations / 1000,  # two PUTs per invocation; LIST pages of 1,000 to combine
        s3_get=invocations,
        lambda_gb_s=invocations * added_ms_per_invocation / 1000 * function_memory_mb / 1024,
    )
    return {"raw_files": invocations, "items": dollars(work.scaled(1e6 / invocations), prices)}
