"""The reporter: coverage.py reports, summaries, the dashboard, badges and the daily roll-up from combined data."""

from .dashboard import collect_summaries, refresh_dashboard, write_daily_rollup
from .render import Group, build_reports, render_group
from .sources import SourceSnapshot, materialize_sources

__all__ = [
    "Group",
    "SourceSnapshot",
    "build_reports",
    "collect_summaries",
    "materialize_sources",
    "refresh_dashboard",
    "render_group",
    "write_daily_rollup",
]
