"""Zero-code mode: the handler Lambda calls when `AWS_LAMBDA_EXEC_WRAPPER=/opt/coverage-instrument`.

The exec wrapper moves the function's `_HANDLER` to `COVERAGE_ORIGINAL_HANDLER` and points `_HANDLER`
here. Importing this module starts measuring, then imports the user's module, so its init code is covered.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Callable

from .handler import coverage_handler
from .session import get_session


def load_handler(spec: str) -> Callable[..., Any]:
    """Resolve a Lambda handler string (`pkg/module.function` or `pkg.module.function`) as the runtime does.

    Under the Lambda runtime interface client (every managed Python runtime), its own resolver does it,
    so a missing module, a missing function or a syntax error ends in the runtime's own
    `Runtime.ImportModuleError`, `Runtime.HandlerNotFound` or `Runtime.UserCodeSyntaxError`, naming the
    user's module exactly as without the layer. Its exception passes through this module's import.
    """
    bootstrap = sys.modules.get("awslambdaric.bootstrap")
    resolve = getattr(bootstrap, "_get_handler", None)
    if callable(resolve):
        return resolve(spec)
    module_name, _, function_name = spec.rpartition(".")
    if not module_name or not function_name:
        raise ValueError(f"Bad handler '{spec}': expected module.function")
    module = importlib.import_module(module_name.replace("/", "."))
    return getattr(module, function_name)


def _wrapped_original() -> Callable[..., Any]:
    spec = os.environ.get("COVERAGE_ORIGINAL_HANDLER", "")
    try:
        get_session().start_continuous()
    except Exception as exc:  # never stop the runtime from loading the handler
        sys.stdout.write('{"level": "ERROR", "message": "Coverage zero-code start failed", "error": %r}\n' % str(exc))
    original = load_handler(spec)  # the user's import errors surface exactly as without the layer
    if getattr(original, "__wrapped_by_coverage__", False):
        return original
    return coverage_handler(original)


handler = _wrapped_original()
