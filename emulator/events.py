"""EventBridge, as far as the stack uses it: rules from the template, fed by the state machines.

moto's Step Functions does not emit "Step Functions Execution Status Change" events and its
EventBridge does not invoke Lambda targets in process. This module closes that gap:

* ``EventBus`` holds the rules of the template's functions (``Events`` of ``Type: EventBridgeRule``),
  matches each event against their patterns and invokes the matching functions through moto's
  Lambda (so the in-process adapter runs them and counts the calls), asynchronously, as
  EventBridge does. Rules of the template's state machines start an execution instead, with the
  input their ``InputTransformer`` builds (``transform_input``).
* ``execution_status_events`` patches the end of every execution in moto's interpreter to publish
  the status-change event AWS would publish, with the same detail fields.
* ``s3_object_events`` publishes S3's "Object Created"/"Object Deleted" events for buckets with
  EventBridge notifications on, in the shape S3 documents.

Pattern matching covers what this template uses (exact values, nested fields, ``prefix``,
``anything-but`` with values or a ``prefix``, ``exists``); any other operator is refused by name
rather than matched wrongly.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import boto3
from moto.s3 import notifications as s3_notifications
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

from emulator.adapters.redrive import attempts_of, is_express, redrive_status
from tools.template import UnsupportedTemplateFeature

STATUS_CHANGE = "Step Functions Execution Status Change"
_OPERATORS = ("prefix", "anything-but", "exists")


@dataclass
class Rule:
    """One EventBridge rule with its target: a Lambda function, or a state machine to start."""

    name: str
    pattern: dict[str, Any]
    function_name: str | None = None
    state_machine_arn: str | None = None
    # The target's input built from the event (EventBridge's InputTransformer); else the event itself.
    input_transformer: dict[str, Any] | None = None


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
    _clients: dict[str, Any] = field(default_factory=dict)

    def connect(self) -> None:
        """Make the clients deliveries use, now, on the caller's thread. botocore reads ``os.environ``
        while it makes a client; made on a delivery thread, it raced a test changing the environment
        (a ``KeyError`` in the thread, and the event was lost)."""
        for service in ("lambda", "stepfunctions"):
            self._client(service)

    def _client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(service, region_name=self.region)  # type: ignore[call-overload]
            return self._clients[service]

    def add_rule(
        self, name: str, pattern: dict[str, Any], function_name: str, input_transformer: dict[str, Any] | None = None
    ) -> None:
        """A rule that invokes the function ``function_name`` (a name or ARN) with each matching event (or what
        ``input_transformer`` builds from it)."""
        _check_pattern(name, pattern)
        self.rules.append(Rule(name, pattern, function_name, input_transformer=input_transformer))

    def add_state_machine_rule(
        self,
        name: str,
        pattern: dict[str, Any],
        state_machine_arn: str,
        input_transformer: dict[str, Any] | None = None,
    ) -> None:
        """A rule that starts an execution of ``state_machine_arn`` for each matching event."""
        _check_pattern(name, pattern)
        self.rules.append(Rule(name, pattern, state_machine_arn=state_machine_arn, input_transformer=input_transformer))

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
        if rule.state_machine_arn is not None:
            delivery = self._start_execution(rule.state_machine_arn, rule, event)
        else:
            assert rule.function_name is not None  # a rule has one target or the other
            payload = transform_input(rule.input_transformer, event) if rule.input_transformer else json.dumps(event)
            response = self._client("lambda").invoke(FunctionName=rule.function_name, Payload=payload.encode())
            delivery = Delivery(
                rule=rule.name,
                event=event,
                payload=json.loads(response["Payload"].read() or b"null"),
                errored="FunctionError" in response,
            )
        with self._lock:
            self.deliveries.append(delivery)

    def _start_execution(self, state_machine_arn: str, rule: Rule, event: dict[str, Any]) -> Delivery:
        execution_input = (
            transform_input(rule.input_transformer, event) if rule.input_transformer else json.dumps(event)
        )
        # EventBridge names the execution itself; each delivery is a new execution.
        response = self._client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=uuid.uuid4().hex, input=execution_input
        )
        return Delivery(rule=rule.name, event=event, payload={"executionArn": response["executionArn"]})

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
    if isinstance(argument, dict):  # anything-but: {"prefix": ...}
        return present and not any(isinstance(item, str) and item.startswith(argument["prefix"]) for item in values)
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
            argument = option.get("anything-but") if isinstance(option, dict) else None
            if isinstance(argument, dict) and set(argument) != {"prefix"}:
                raise UnsupportedTemplateFeature(f"Rule {rule}: pattern operator {option} is not emulated")


class ExecutionEnds:
    """How many executions have ended, to wait on: a caller waiting for one execution to end sleeps
    until any ends, then looks again, instead of asking DescribeExecution every few milliseconds (that
    polling was a tenth of the suite's CPU time)."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    @property
    def count(self) -> int:
        with self._changed:
            return self._count

    def notify(self) -> None:
        with self._changed:
            self._count += 1
            self._changed.notify_all()

    def wait_after(self, count: int, timeout: float) -> None:
        """Return once an execution has ended since ``count`` was read, or after ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self._count != count, timeout)


@contextlib.contextmanager
def execution_status_events(bus: EventBus, ends: ExecutionEnds | None = None) -> Iterator[None]:
    """Publish a status-change event on ``bus`` whenever an execution ends, as Step Functions does
    (and count the end in ``ends``, Express executions' too, which publish nothing).

    A redriven execution's change back to RUNNING is published by ``publish_status_change`` too,
    given to ``adapters.redrivable_executions`` as its ``on_redrive``.
    """
    original = BaseExecutionWorkerCommunication.terminated

    def terminated(self: BaseExecutionWorkerCommunication) -> None:
        original(self)
        if ends is not None:
            ends.notify()
        publish_status_change(bus, self.execution)

    with mock.patch.object(BaseExecutionWorkerCommunication, "terminated", terminated):
        yield


def publish_status_change(bus: EventBus, execution: Any) -> None:
    """Publish the "Step Functions Execution Status Change" event of moto's ``execution`` in its current status."""
    if is_express(execution):
        return  # Express workflows send no status-change events to EventBridge
    status = getattr(execution.exec_status, "value", str(execution.exec_status))
    attempts = attempts_of(execution)
    redrive, reason = redrive_status(execution, execution.stop_date or datetime.now(UTC))
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
        "redriveCount": attempts.redrive_count,
        "redriveDate": _epoch_millis(attempts.redrive_date),
        "redriveStatus": redrive,
        "redriveStatusReason": reason,
    }
    bus.put_event("aws.states", STATUS_CHANGE, detail, [execution.exec_arn])


def _epoch_millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


# --------------------------------------------------------------------------- input transformers
_TEMPLATE_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|<([^<>\s"]+)>')


def transform_input(transformer: dict[str, Any], event: dict[str, Any]) -> str:
    """What a target receives from a rule's ``InputTransformer``, as EventBridge builds it.

    Each ``InputPathsMap`` path (``$.detail.object.key``: plain member names) is read from the
    event. In ``InputTemplate`` a ``<name>`` outside quotes becomes the value as JSON, and one
    inside a JSON string becomes the value's text. Placeholders that are not in the map (such as
    EventBridge's own ``<aws.events.event>``) are refused rather than left in.
    """
    values = {name: _select(event, path) for name, path in transformer.get("InputPathsMap", {}).items()}

    def placeholder(name: str, quoted: bool) -> str:
        if name not in values:
            raise UnsupportedTemplateFeature(f"InputTemplate placeholder <{name}> is not in InputPathsMap")
        value = values[name]
        if not quoted:
            return json.dumps(value)
        text = value if isinstance(value, str) else json.dumps(value)
        return json.dumps(text)[1:-1]

    def token(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return placeholder(match.group(1), quoted=False)
        return re.sub(r"<([^<>\s\"]+)>", lambda inner: placeholder(inner.group(1), quoted=True), match.group(0))

    return _TEMPLATE_TOKEN.sub(token, transformer["InputTemplate"])


def _select(event: dict[str, Any], path: str) -> Any:
    if path == "$":
        return event
    if not re.fullmatch(r"\$(\.[A-Za-z0-9_-]+)+", path):
        raise UnsupportedTemplateFeature(f"InputPathsMap path {path!r} is not emulated (only $.member.member)")
    value: Any = event
    for member in path[2:].split("."):
        value = value.get(member) if isinstance(value, dict) else None
    return value


# --------------------------------------------------------------------------- S3 to EventBridge
# S3's "reason" for each kind of object creation (moto's event names).
_S3_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
    "s3:ObjectRemoved:Delete": "DeleteObject",
}


def s3_event_detail(bucket_name: str, event_name: str, key: Any) -> tuple[str, dict[str, Any]]:
    """The detail-type and detail S3 sends to EventBridge for ``event_name`` on moto's ``key``.

    As documented for S3's EventBridge events: ``object.etag`` without quotes (moto's own event
    names it ``eTag``), ``version-id`` only for a versioned object.
    """
    detail_type = "Object Deleted" if event_name.startswith("s3:ObjectRemoved") else "Object Created"
    details: dict[str, Any] = {"key": key.name, "sequencer": uuid.uuid4().hex[:18].upper()}
    if detail_type == "Object Created":
        details.update(size=key.size, etag=key.etag.strip('"'))
    # moto sends no event for a delete marker (a delete in a versioned bucket); a real delete is permanent.
    deletion = {"s3:ObjectRemoved:Delete": "Permanently Deleted"}
    if getattr(key, "version_id", None) not in (None, "null"):
        details["version-id"] = key.version_id
    detail = {
        "version": "0",
        "bucket": {"name": bucket_name},
        "object": details,
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": "123456789012",
        "source-ip-address": "127.0.0.1",
        "reason": _S3_REASONS.get(event_name, event_name.rsplit(":", 1)[-1]),
    }
    if event_name in deletion:
        detail["deletion-type"] = deletion[event_name]
    return detail_type, detail


@contextlib.contextmanager
def s3_object_events(bus: EventBus) -> Iterator[None]:
    """Publish S3's "Object Created"/"Object Deleted" events on ``bus`` for buckets with EventBridge on.

    moto calls its own EventBridge sender for such buckets, which feeds moto's events backend only
    (not this bus) and names the ETag field differently from S3.
    """

    def send(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        if not event_name.startswith(("s3:ObjectCreated", "s3:ObjectRemoved")):
            return
        detail_type, detail = s3_event_detail(bucket.name, event_name, key)
        bus.put_event("aws.s3", detail_type, detail, [f"arn:aws:s3:::{bucket.name}"])

    with mock.patch.object(s3_notifications, "_send_event_bridge_message", send):
        yield
