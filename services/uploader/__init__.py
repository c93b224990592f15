"""Intake: everything that happens to one uploaded raw file before it is combined."""

from .intake import IntakeResult, intake_object
from .quarantine import Quarantined, quarantine_object

__all__ = [
    "IntakeResult",
    "Quarantined",
    "intake_object",
    "quarantine_object",
]
