"""The external Lambda extension: registers for INVOKE and SHUTDOWN and ships the outbox off the response path."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.request
from typing import Any

from . import log
from .config import load_config
from .outbox import Outbox

EXTENSION_NAME = "lambda-coverage-shipper"
_API_VERSION = "2020-01-01"
_SHUTDOWN_MARGIN_S = 0.2


class ExtensionsApi:
    """A minimal client of the Lambda Extensions API."""

    def __init__(self, address: str, name: str = EXTENSION_NAME) -> None:
        self.base = f"http://{address}/{_API_VERSION}/extension"
        self.name = name
        self.identifier = ""

    def register(self) -> None:
        request = urllib.request.Request(
            f"{self.base}/register",
            data=json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
            headers={"Lambda-Extension-Name": self.name, "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request) as response:
            self.identifier = response.headers["Lambda-Extension-Identifier"]

    def next_event(self) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.base}/event/next", headers={"Lambda-Extension-Identifier": self.identifier}
        )
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read() or b"{}")


def run(api: ExtensionsApi) -> int:
    """Register, then ship the outbox at every INVOKE and everything left at SHUTDOWN."""
    config = load_config()
    outbox = Outbox(config.outbox_dir, config.outbox_max_files)
    api.register()
    outbox.announce_extension(os.getpid())
    log.debug("Coverage extension registered", operation="extension_register", extension=api.name)
    from .shipper import drain, s3_client

    clients: list = []

    def prepare_client() -> None:
        # botocore takes ~0.3 s of CPU to import: done once, early, so SHUTDOWN's 2 s go to uploading even
        # when an environment shuts down right after its first invocation. At the lowest priority this
        # thread only takes CPU the function's own init and invocations leave idle.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        try:
            clients.append(s3_client(config))
        except Exception as exc:
            log.warning("Coverage extension could not prepare its S3 client", error=str(exc))

    warming: threading.Thread | None = None
    if config.bucket:
        warming = threading.Thread(target=prepare_client, name="coverage-client", daemon=True)
        warming.start()
    while True:
        event = api.next_event()
        kind = event.get("eventType")
        if kind == "INVOKE":
            if outbox.due():
                if warming is not None:
                    warming.join()
                drain(outbox, config, client=clients[0] if clients else None)
        elif kind == "SHUTDOWN":
            deadline_ms = float(event.get("deadlineMs") or (time.time() + 1.8) * 1000)
            deadline = time.monotonic() + max(0.1, deadline_ms / 1000 - time.time() - _SHUTDOWN_MARGIN_S)
            if warming is not None:
                warming.join(max(0.0, deadline - time.monotonic()))
            summary = drain(outbox, config, everything=True, deadline=deadline, client=clients[0] if clients else None)
            log.info(
                "Coverage extension shutting down",
                operation="extension_shutdown",
                shutdown_reason=event.get("shutdownReason"),
                uploaded=len(summary["uploaded"]),
                remaining=summary.get("remaining", 0),
            )
            return 0


def main() -> int:
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        log.error("AWS_LAMBDA_RUNTIME_API is not set: the coverage extension cannot register")
        return 1
    try:
        return run(ExtensionsApi(address, os.path.basename(sys.argv[0]) or EXTENSION_NAME))
    except Exception as exc:
        log.error("Coverage extension failed", error=str(exc), error_type=type(exc).__name__)
        return 1


if __name__ == "__main__":
    sys.exit(main())
