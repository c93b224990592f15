"""Invocations counted in the Lambda runtime's own loop, so that the runtime calls the handler unwrapped.

Every managed Python runtime runs `awslambdaric`: its `bootstrap.run` loads the handler (through
`_get_handler`), then loops: `wait_next_invocation()`, the handler, post the response. Loaded there,
`coverage_handler` hands the runtime the user's own function and wraps the client's
`wait_next_invocation` instead: the end of an invocation (count it, flush by policy) runs when the
runtime asks for the next one, after it posted the response, and measuring starts (decorator mode)
when the first invocation arrives. The response path is the bare handler's. Loaded anywhere else
(unit tests, another runtime, a handler calling a decorated function), the handler is wrapped as before.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import CoverageSession


def _loading_client() -> Any | None:
    """The runtime client of the `awslambdaric` loop that is loading the handler right now, or None."""
    bootstrap = sys.modules.get("awslambdaric.bootstrap")
    run_code = getattr(getattr(bootstrap, "run", None), "__code__", None)
    load_code = getattr(getattr(bootstrap, "_get_handler", None), "__code__", None)
    if run_code is None or load_code is None:
        return None
    loading = False
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code is load_code:
            loading = True
        elif frame.f_code is run_code:
            client = frame.f_locals.get("lambda_runtime_client") if loading else None
            return client if callable(getattr(client, "wait_next_invocation", None)) else None
        frame = frame.f_back
    return None


def count_in_runtime_loop(session: CoverageSession) -> bool:
    """Have the runtime loop loading the handler count its invocations; False when none is loading it."""
    client = _loading_client()
    if client is None:
        return False
    if getattr(client.wait_next_invocation, "__counts_invocations__", False):  # zero-code over a decorated handler
        return True
    client.wait_next_invocation = session.measure_runtime_loop(client.wait_next_invocation)
    return True
