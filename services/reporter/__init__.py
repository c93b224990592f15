"""The reporter: coverage.py reports, summaries, the dashboard, badges and the daily roll-up from combined data."""

from .config import ReporterConfig, normalize_path_prefix
from .dashboard import collect_summaries, refresh_dashboard, write_daily_rollup
from .render import Group, build_reports, render_group
from .sources import SourceSnapshot, materialize_sources

__all__ = [
    "Group",
    "ReporterConfig",
    "SourceSnapshot",
    "build_reports",
    "collect_summaries",
    "materialize_sources",
    "normalize_path_prefix",
    "refresh_dashboard",
    "render_group",
    "write_daily_rollup",
]
