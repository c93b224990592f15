"""Combine: plans batches and merges raw files into the combined data of a function/date/version."""

from .batch import merge_batch
from .commit import CommitConflict, commit
from .follow_up import follow_up
from .plan import Group, plan
from .request import CombineRequest, CombineWindow, InvalidCombineInput, window_for

__all__ = [
    "CombineRequest",
    "CombineWindow",
    "CommitConflict",
    "Group",
    "InvalidCombineInput",
    "commit",
    "follow_up",
    "merge_batch",
    "plan",
    "window_for",
]
