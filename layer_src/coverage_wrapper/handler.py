"""The seed's API: the `coverage_handler` decorator and the `CoverageContext` context manager."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, TypeVar

from .runtime_loop import count_in_runtime_loop
from .session import get_session

Handler = TypeVar("Handler", bound=Callable[..., Any])


def coverage_handler(func: Handler | None = None) -> Any:
    """Measure a Lambda handler across warm invocations; its result and exceptions pass through untouched.

    Usable as `@coverage_handler` or `@coverage_handler()`. With `COVERAGE_ENABLED=false`, or in an
    execution environment left out by `COVERAGE_SAMPLE_RATE`, the handler is returned unchanged. So it
    is when the Lambda runtime is loading it and no context is recorded per request: the runtime's loop
    counts the invocations instead (see `runtime_loop`), and the runtime calls the handler itself.
    """
    if func is None:
        return coverage_handler
    try:
        session = get_session()
        if not session.sampled:  # disabled by COVERAGE_ENABLED, or left out by COVERAGE_SAMPLE_RATE
            return func
        if session.config.contexts == "off" and count_in_runtime_loop(session):
            return func
        measured_handler = functools.wraps(func)(session.measure_handler(func))
    except Exception:  # the layer never breaks the user's module import
        return func
    measured_handler.__wrapped_by_coverage__ = True  # type: ignore[attr-defined]  # the marker against double wrapping
    return measured_handler


class CoverageContext:
    """Measure only the code inside the block; nested blocks and blocks inside a decorated handler are safe."""

    def __init__(self) -> None:
        self._outermost = False
        self._entered = False

    def __enter__(self) -> CoverageContext:
        try:
            session = get_session()
            self._entered = session.sampled
            self._outermost = session.enter_block(sys._getframe(1)) if self._entered else False
        except Exception:
            self._entered = False
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if self._entered:
            get_session().exit_block(self._outermost)
