"""The EventBridge → Step Functions hop moto does not make: rule matches land in SQS, this starts intake from there.

moto's S3 sends `Object Created` events to EventBridge, and its rules match them with the pipeline's
own pattern, but its rules cannot target Step Functions. The rule therefore targets a queue (a
target moto delivers to), and this thread turns each queued event into an intake execution with
the event as input, as the AWS rule target does.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

from .faults import EventFaults

_log = logging.getLogger(__name__)


class EventBridgeToStepFunctions:
    def __init__(self, sqs: Any, sfn: Any, queue_url: str, state_machine_arn: str, faults: EventFaults | None = None) -> None:
        self.sqs = sqs
        self.sfn = sfn
        self.queue_url = queue_url
        self.state_machine_arn = state_machine_arn
        self.faults = faults or EventFaults()
        self.delivered = 0
        self.received = 0
        self.in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eventbridge-sfn-bridge", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    @property
    def busy(self) -> bool:
        """Events received but not yet started, or still waiting in the queue."""
        with self._lock:
            if self.in_flight:
                return True
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return any(int(v) for v in attributes.values())

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._poll()
            except Exception:  # the emulation keeps delivering; one bad poll is logged, not fatal
                if not self._stopping.is_set():
                    _log.exception("bridge poll failed")
                    self._stopping.wait(0.2)

    def _poll(self) -> None:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if self.faults.reverse:
            messages.reverse()
        with self._lock:
            self.in_flight += len(messages)
        for message in messages:
            self.received += 1
            held = self.faults.delay_every and self.received % self.faults.delay_every == 0
            try:
                if held:
                    # Late delivery (EventBridge retrying, say): the intake runs after the upload's window closed.
                    with self._lock:
                        self.in_flight += 1
                    timer = threading.Timer(self.faults.delay_seconds, self._deliver_late, args=(message["Body"],))
                    timer.daemon = True
                    timer.start()
                else:
                    self._deliver(message["Body"])
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            finally:
                with self._lock:
                    self.in_flight -= 1

    def _deliver(self, body: str) -> None:
        # EventBridge names each execution it starts; moto would otherwise name them all "None".
        for _ in range(2 if self.faults.duplicate else 1):
            self.sfn.start_execution(stateMachineArn=self.state_machine_arn, name=uuid.uuid4().hex, input=body)
            self.delivered += 1
        _log.info("intake started for %s", _object_key(body))

    def _deliver_late(self, body: str) -> None:
        try:
            if not self._stopping.is_set():
                self._deliver(body)
        except Exception:  # a late delivery that fails is logged like a failed poll
            _log.exception("late delivery failed")
        finally:
            with self._lock:
                self.in_flight -= 1


def _object_key(body: str) -> str:
    try:
        return str(json.loads(body)["detail"]["object"]["key"])
    except (ValueError, KeyError, TypeError):
        return "?"
