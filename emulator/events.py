"""EventBridge, as far as the stack uses it: rules from the template, fed by the state machines.

moto's Step Functions does not emit "Step Functions Execution Status Change" events and its
EventBridge does not invoke Lambda targets in process. This module closes that gap:

* ``EventBus`` holds the rules of the template's functions (``Events`` of ``Type: EventBridgeRule``),
  matches each event against their patterns and invokes the matching functions through moto's
  Lambda (so the in-process adapter runs them and counts the calls), asynchronously, as
  EventBridge does.
* ``execution_status_events`` patches the end of every execution in moto's interpreter to publish
  the status-change event AWS would publish, with the same detail fields.

Pattern matching covers what this template uses (exact values, nested fields, ``prefix``,
``anything-but``, ``exists``); any other operator is refused by name rather than matched wrongly.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import boto3
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

from emulator.template import UnsupportedTemplateFeature

STATUS_CHANGE = "Step Functions Execution Status Change"
_OPERATORS = ("prefix", "anything-but", "exists")


@dataclass
class Rule:
    """One EventBridge rule with a Lambda function as its target."""

    name: str
    pattern: dict[str, Any]
    function_name: str


@dataclass
class Delivery:
    """One event delivered to one rule's target, and what the target answered."""

    rule: str
    event: dict[str, Any]
    payload: Any = None
    errored: bool = False


@dataclass
class EventBus:
    """The default event bus of the offline stack."""

    region: str
    account_id: str
    rules: list[Rule] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_rule(self, name: str, pattern: dict[str, Any], function_name: str) -> None:
        _check_pattern(name, pattern)
        self.rules.append(Rule(name, pattern, function_name))

    def put_event(self, source: str, detail_type: str, detail: dict[str, Any], resources: list[str]) -> dict[str, Any]:
        """Publish an event; each matching rule's target gets it on a thread of its own."""
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": self.account_id,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": resources,
            "detail": detail,
        }
        for rule in self.rules:
            if matches(rule.pattern, event):
                thread = threading.Thread(target=self._deliver, args=(rule, event), daemon=True)
                with self._lock:
                    # Listed only once started: wait_until_delivered may join it from another thread.
                    thread.start()
                    self._threads.append(thread)
        return event

    def _deliver(self, rule: Rule, event: dict[str, Any]) -> None:
        response = boto3.client("lambda", region_name=self.region).invoke(
            FunctionName=rule.function_name, Payload=json.dumps(event).encode()
        )
        delivery = Delivery(
            rule=rule.name,
            event=event,
            payload=json.loads(response["Payload"].read() or b"null"),
            errored="FunctionError" in response,
        )
        with self._lock:
            self.deliveries.append(delivery)

    def wait_until_delivered(self, timeout: float = 10.0) -> list[Delivery]:
        """Wait for every delivery started so far to finish; return all deliveries."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        with self._lock:
            return list(self.deliveries)


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether ``event`` matches the EventBridge ``pattern`` (the subset ``_check_pattern`` admits)."""
    for name, expected in pattern.items():
        present = name in event
        value = event.get(name)
        if isinstance(expected, dict):
            if not isinstance(value, dict) or not matches(expected, value):
                return False
        elif not any(_matches_one(option, present, value) for option in expected):
            return False
    return True


def _matches_one(option: Any, present: bool, value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    if not isinstance(option, dict):
        return present and option in values
    (operator, argument), *_ = option.items()
    if operator == "exists":
        return present is bool(argument)
    if operator == "prefix":
        return present and any(isinstance(item, str) and item.startswith(argument) for item in values)
    excluded = argument if isinstance(argument, list) else [argument]  # anything-but
    return present and all(item not in excluded for item in values)


def _check_pattern(rule: str, pattern: Any) -> None:
    for name, expected in pattern.items():
        if isinstance(expected, dict):
            _check_pattern(rule, expected)
            continue
        if not isinstance(expected, list):
            raise UnsupportedTemplateFeature(f"Rule {rule}: the pattern's {name!r} must be a list or an object")
        for option in expected:
            if isinstance(option, dict) and (len(option) != 1 or next(iter(option)) not in _OPERATORS):
                raise UnsupportedTemplateFeature(f"Rule {rule}: pattern operator {option} is not emulated")


@contextlib.contextmanager
def execution_status_events(bus: EventBus) -> Iterator[None]:
    """Publish a status-change event on ``bus`` whenever an execution ends, as Step Functions does."""
    original = BaseExecutionWorkerCommunication.terminated

    def terminated(self: BaseExecutionWorkerCommunication) -> None:
        original(self)
        execution = self.execution
        if getattr(execution.state_machine, "type", None) == "EXPRESS":  # moto leaves sm_type STANDARD
            return  # Express workflows send no status-change events to EventBridge
        status = getattr(execution.exec_status, "value", str(execution.exec_status))
        detail = {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": status,
            "startDate": _epoch_millis(execution.start_date),
            "stopDate": _epoch_millis(execution.stop_date),
            "input": json.dumps(execution.input_data),
            "output": json.dumps(execution.output) if execution.output is not None else None,
            "inputDetails": {"included": True},
            "error": execution.error,
            "cause": execution.cause,
        }
        bus.put_event("aws.states", STATUS_CHANGE, detail, [execution.exec_arn])

    with mock.patch.object(BaseExecutionWorkerCommunication, "terminated", terminated):
        yield


def _epoch_millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)
