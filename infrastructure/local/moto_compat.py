"""Gaps of moto's Step Functions interpreter closed for the emulation, so the ASL stays exactly what AWS runs."""

from __future__ import annotations

import threading
from typing import Any

_installed = False
_lock = threading.Lock()

# The optimized `states:startExecution` integration takes AWS's documented parameter names;
# boto3's StepFunctions client wants camelCase. LocalStack translates them, moto 5.2 passes them
# through, and botocore fails with KeyError('StateMachineArn') before any request is made.
_START_EXECUTION_PARAMETERS = {"StateMachineArn": "stateMachineArn", "Input": "input", "Name": "name", "TraceHeader": "traceHeader"}


def install() -> None:
    """Idempotent: patch the interpreter's StepFunctions task to translate startExecution parameters."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
            StateTaskServiceSfn,
        )

        original = StateTaskServiceSfn._normalise_parameters

        def normalise_parameters(self: Any, parameters: dict, boto_service_name: Any = None, service_action_name: Any = None) -> None:
            original(self, parameters, boto_service_name=boto_service_name, service_action_name=service_action_name)
            if service_action_name is None and self._get_boto_service_action() == "start_execution":
                for documented, boto_name in _START_EXECUTION_PARAMETERS.items():
                    if documented in parameters:
                        parameters[boto_name] = parameters.pop(documented)

        StateTaskServiceSfn._normalise_parameters = normalise_parameters
        _installed = True
