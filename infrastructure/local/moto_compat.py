"""Gaps of moto's Step Functions closed for the emulation, so the ASL stays exactly what AWS runs and clients see AWS's behaviour."""

from __future__ import annotations

import threading
import uuid
from typing import Any

_installed = False
_lock = threading.Lock()

# The optimized `states:startExecution` integration takes AWS's documented parameter names;
# boto3's StepFunctions client wants camelCase. LocalStack translates them, moto 5.2 passes them
# through, and botocore fails with KeyError('StateMachineArn') before any request is made.
_START_EXECUTION_PARAMETERS = {"StateMachineArn": "stateMachineArn", "Input": "input", "Name": "name", "TraceHeader": "traceHeader"}


def install() -> None:
    """Idempotent: translate the interpreter's startExecution parameters; name unnamed executions with a UUID as AWS does."""
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
        _name_unnamed_executions()
        _fail_distributed_maps_over_their_tolerance()
        _parse_each_definition_once()
        _reuse_task_clients()
        _installed = True


def _reuse_task_clients() -> None:
    """moto's interpreter builds a new boto3 client, and so opens a new connection, for every task it runs (Lambda
    invoke, startExecution): ~10 ms of CPU and a name lookup each. Clients are thread-safe; one per service is kept."""
    import boto3
    from botocore.config import Config
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_sfn
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    clients: dict[tuple[str, str, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if boto_client.botocore_stubber.enabled:
            return original(region, service, state_credentials)
        key = (region, service, str(moto_server_port()))
        with lock:
            client = clients.get(key)
            if client is None:
                client = clients[key] = boto3.client(
                    service,
                    region_name=region,
                    aws_access_key_id="ak",
                    aws_secret_access_key="sk",
                    endpoint_url=f"http://localhost:{key[2]}",
                    config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1},
                                  connect_timeout=99999999, read_timeout=99999999, max_pool_connections=64),
                )
        return client

    modules: tuple[Any, ...] = (boto_client, lambda_eval_utils, state_task_service_sfn)
    for module in modules:
        module.boto_client_for = boto_client_for


def _parse_each_definition_once() -> None:
    """moto parses a state machine's definition with ANTLR (pure Python) at every execution start: 110 ms of CPU for
    the combine definition, the emulation's largest single cost under load. The syntax tree is kept per definition;
    each execution still gets its own freshly built program from it, as before."""
    from moto.stepfunctions.parser.asl.parse import asl_parser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    original = asl_parser.AmazonStateLanguageParser.parse
    trees: dict[str, Any] = {}

    def parse(definition: str) -> tuple[Any, Any]:
        tree = trees.get(definition)
        if tree is None:
            program, tree = original(definition)
            if len(trees) >= 64:  # one emulation holds two definitions; a test process starts a few dozen
                trees.clear()
            trees[definition] = tree
            return program, tree
        return Preprocessor().visit(tree), tree

    asl_parser.AmazonStateLanguageParser.parse = staticmethod(parse)


def _fail_distributed_maps_over_their_tolerance() -> None:
    """moto's Distributed Map counts failed child executions but succeeds anyway (its ToleratedFailure fields
    "have no effect"); AWS fails the Map with States.ExceedToleratedFailureThreshold when more children fail
    than ToleratedFailureCount/Percentage allow (none by default), and the state's Catch then decides."""
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent, FailureEventException
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original = DistributedIterationComponent._map_run

    def map_run(self: Any, env: Any, eval_input: Any) -> None:
        original(self, env, eval_input)
        record = eval_input.map_run_record
        counter = record.item_counter
        failed = counter.failed.get() + counter.timed_out.get() + counter.aborted.get()
        total = max(1, counter.total.get())
        if failed > (record.tolerated_failure_count or 0) or 100.0 * failed / total > (record.tolerated_failure_percentage or 0.0):
            error = StatesErrorNameType.StatesExceedToleratedFailureThreshold
            cause = f"The specified tolerated failure threshold was exceeded: {failed} of {counter.total.get()} child executions failed"
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=error),
                    event_type=HistoryEventType.ExecutionFailed,
                    # moto types every event detail as required; an event carries one, as on AWS
                    event_details=EventDetails(executionFailedEventDetails=ExecutionFailedEventDetails(error=error.to_name(), cause=cause)),  # type: ignore[typeddict-item]
                )
            )

    DistributedIterationComponent._map_run = map_run


def _name_unnamed_executions() -> None:
    """moto names every execution started without a name "None", so the second unnamed start of a state machine
    fails with ExecutionAlreadyExists; AWS gives each a UUID. moto also answers malformed input with an error
    without a code; AWS answers InvalidExecutionInput."""
    from moto.stepfunctions.models import StepFunctionBackend
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    for backend in (StepFunctionBackend, StepFunctionsParserBackend):
        original = backend.__dict__["start_execution"]

        def start_execution(self: Any, state_machine_arn: str, name: Any = None, execution_input: Any = None, *args: Any,
                            _original: Any = original, **kwargs: Any) -> Any:
            check_execution_input(execution_input)
            return _original(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, *args, **kwargs)

        backend.start_execution = start_execution


MAX_INPUT_BYTES = 256 * 1024
# moto's interpreter copies state data recursively and fails deeper than about 500 levels with a RecursionError
# (States.Runtime); the emulation refuses such input at the start instead, with AWS's error name.
MAX_INPUT_DEPTH = 256


def check_execution_input(execution_input: str | None) -> None:
    """Raise InvalidExecutionInput (as StartExecution on AWS) for input that is not JSON, too large, or nested too deep."""
    import json

    from moto.stepfunctions.exceptions import InvalidExecutionInput

    if execution_input is None:
        return
    if len(execution_input.encode()) > MAX_INPUT_BYTES:
        raise InvalidExecutionInput(f"Invalid State Machine Execution Input: the input is over {MAX_INPUT_BYTES} bytes")
    if _nesting_depth(execution_input) > MAX_INPUT_DEPTH:
        raise InvalidExecutionInput(f"Invalid State Machine Execution Input: nested deeper than {MAX_INPUT_DEPTH} levels")
    try:
        json.loads(execution_input)
    except ValueError as exc:
        raise InvalidExecutionInput(f"Invalid State Machine Execution Input: {exc}") from None


def _nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text, found without recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
