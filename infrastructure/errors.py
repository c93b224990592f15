"""`CommandError`: what went wrong in a `lambda-coverage` command and what to do, shown as one line."""

from __future__ import annotations


class CommandError(Exception):
    """Raised with one sentence that says what to do; the CLI prints it on one line and exits with status 2."""
