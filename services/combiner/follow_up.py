"""Follow-ups: a combine that leaves raw files of its group outside the manifest names the combine that takes them.

Whatever made a combine miss a file (its upload came after the listing, its intake never ran, the
combine failed), the window open now will list the group after it closes and take every file that
exists now. Starting that window's execution is idempotent: when uploads already started it, the
start is the same execution. So a missed file waits one window, not one day, and a steady stream of
uploads starts no execution it would not have started anyway.
"""

from __future__ import annotations

import time
from typing import Any

from lambda_coverage.services.settings import PipelineSettings

from .plan import Group, pending_raw_keys
from .request import MAX_ATTEMPTS, window_at


def follow_up(
    s3: Any,
    settings: PipelineSettings,
    group: Group,
    failed: bool = False,
    attempt: int = 0,
    progressed: bool = True,
    now: float | None = None,
) -> dict[str, Any]:
    """After a group's combine: the window combine to start, if files are still pending.

    A combine that `failed`, or committed without merging anything new (`progressed` False), counts as
    an attempt; follow-ups stop after MAX_ATTEMPTS such combines in a row, so a file that keeps
    breaking (or escaping) the combine does not start an execution per window forever: the daily sweep
    and the failed-executions alarm take over. A combine that merged files starts the count afresh.
    """
    pending = pending_raw_keys(s3, settings, group)
    result: dict[str, Any] = {**group.as_dict(), "pending": len(pending), "sample": pending[:3]}
    if not pending:
        return result
    next_attempt = 0 if progressed and not failed else attempt + 1
    if next_attempt >= MAX_ATTEMPTS:
        return {**result, "given_up": True}
    window = window_at(group.function, group.date, group.version, time.time() if now is None else now, settings.window_seconds)
    return {**result, "follow_up": {"execution_name": window.execution_name, "combine_input": window.combine_input(next_attempt)}}
