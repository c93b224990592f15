"""Combine: plans batches and merges raw files into the combined data of a function/date/version."""

from .batch import merge_batch
from .commit import CommitConflict, commit
from .plan import Group, plan
from .request import CombineRequest, InvalidCombineInput

__all__ = ["CombineRequest", "CommitConflict", "Group", "InvalidCombineInput", "commit", "merge_batch", "plan"]
