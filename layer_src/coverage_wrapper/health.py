"""Health and status: what the layer is doing in this execution environment, for humans and probes."""

from __future__ import annotations

import sys
from typing import Any

from .config import load_config
from .session import get_session


def get_coverage_status() -> dict[str, Any]:
    """The session's state: measuring, invocations, flushes, core, outbox and last upload."""
    try:
        session = get_session()
        status = session.status()
        status["outbox"] = session.outbox.size()
        status["extension_active"] = session.outbox.extension_active()
        status["last_upload"] = session.outbox.read_state().get("last_upload")
        return status
    except Exception as exc:
        return {"coverage_enabled": False, "errors": [f"{type(exc).__name__}: {exc}"]}


def health_check_handler(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
    """The seed's health check: status, coverage_enabled, layer_version, s3_config, core, outbox, errors.

    Accepts and ignores (event, context), so it can also be a Lambda handler by itself.
    """
    config = load_config()
    status = get_coverage_status()
    errors = list(status.get("errors", []))
    last_upload = status.get("last_upload") or {}
    if not config.enabled:
        state = "disabled"
    elif errors or last_upload.get("status") == "error" or not config.bucket:
        state = "degraded"
    else:
        state = "healthy"
    return {
        "status": state,
        "coverage_enabled": config.enabled,
        "sampled": status.get("sampled", False),
        "layer_version": status.get("layer_version"),
        "python_version": "%d.%d.%d" % sys.version_info[:3],
        "s3_config": {"bucket": config.bucket, "prefix": config.prefix, "configured": bool(config.bucket)},
        "core": config.core,
        "branch_coverage": config.branch,
        "invocations": status.get("invocations", 0),
        "flush_policy": status.get("flush_policy"),
        "outbox": status.get("outbox", {"files": 0, "bytes": 0}),
        "extension_active": status.get("extension_active", False),
        "last_flush": status.get("last_flush"),
        "last_upload": status.get("last_upload"),
        "errors": errors,
    }
