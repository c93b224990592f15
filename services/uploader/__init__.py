"""Intake: everything that happens to one uploaded raw file before it is combined."""

from .intake import CombineWindow, IntakeResult, intake_object, window_for
from .quarantine import Quarantined, quarantine_object

__all__ = [
    "CombineWindow",
    "IntakeResult",
    "Quarantined",
    "intake_object",
    "quarantine_object",
    "window_for",
]
