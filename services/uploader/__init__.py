"""Intake: everything that happens to one uploaded raw file before it is combined."""

from .intake import CombineWindow, IntakeResult, intake_object, window_for
from .quarantine import Quarantined, quarantine_object
from .settings import PipelineSettings, s3_client

__all__ = [
    "CombineWindow",
    "IntakeResult",
    "PipelineSettings",
    "Quarantined",
    "intake_object",
    "quarantine_object",
    "s3_client",
    "window_for",
]
