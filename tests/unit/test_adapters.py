"""The adapters that let moto run this project offline (the emulator/adapters package), each on its own."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.stepfunctions.parser.api import StateMachineType
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.evaluation_details import AWSExecutionDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.asl.eval.states import ContextObjectData, ExecutionData, StateMachineData
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from emulator.adapters import Gate, LambdaRegistry, atomic_dynamodb_writes, load_handler, load_module, scaled_waits

REGION = "us-east-1"


# --------------------------------------------------------------------------- load_module
def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def _function_folder(tmp_path: Path, name: str) -> Path:
    """A function folder whose ``app`` imports a local ``helper`` module, both named like every other function's."""
    return _write(
        tmp_path / name,
        {
            "app.py": (
                f"import helper\nVALUE = {name!r}\nCALLS = []\n\n"
                "def lambda_handler(event, context):\n    return helper.label()\n"
            ),
            "helper.py": f"def label():\n    return 'helper of {name}'\n",
        },
    )


@pytest.fixture
def import_state() -> Iterator[None]:
    """Fails the test if it leaves ``sys.modules`` or ``sys.path`` changed."""
    modules, path = set(sys.modules), list(sys.path)
    yield
    assert set(sys.modules) == modules
    assert sys.path == path


def test_two_functions_with_an_app_module_each_load_their_own(tmp_path: Path, import_state: None) -> None:
    one = load_module(_function_folder(tmp_path, "one"), "app")
    two = load_module(_function_folder(tmp_path, "two"), "app")

    assert (one.VALUE, two.VALUE) == ("one", "two")
    assert one.lambda_handler({}, None) == "helper of one"
    assert two.lambda_handler({}, None) == "helper of two"


def test_each_load_gets_its_own_module_state(tmp_path: Path, import_state: None) -> None:
    folder = _function_folder(tmp_path, "one")
    first = load_module(folder, "app")
    first.CALLS.append("from the first stack")

    second = load_module(folder, "app")

    assert second is not first
    assert second.CALLS == []


def test_a_module_already_imported_under_the_same_name_is_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    already_there = ModuleType("app")
    monkeypatch.setitem(sys.modules, "app", already_there)

    loaded = load_module(_function_folder(tmp_path, "one"), "app")

    assert loaded.VALUE == "one"
    assert sys.modules["app"] is already_there


def test_layer_packages_load_after_the_function_and_are_not_left_behind(tmp_path: Path, import_state: None) -> None:
    function = _write(tmp_path / "function", {"app.py": "from shared.names import NAME\n"})
    layer = _write(tmp_path / "layer", {"shared/__init__.py": "", "shared/names.py": "NAME = 'from the layer'\n"})

    assert load_module([function, layer], "app").NAME == "from the layer"


def test_a_module_that_fails_to_import_leaves_nothing_behind(tmp_path: Path, import_state: None) -> None:
    folder = _write(
        tmp_path / "broken", {"app.py": "import helper\nraise RuntimeError('bad module')\n", "helper.py": ""}
    )

    with pytest.raises(RuntimeError, match="bad module"):
        load_module(folder, "app")


def test_load_handler_takes_the_template_handler_string(tmp_path: Path, import_state: None) -> None:
    handler = load_handler(_function_folder(tmp_path, "one"), "app.lambda_handler")

    assert handler({}, None) == "helper of one"


# --------------------------------------------------------------------------- LambdaRegistry.invoke
@dataclass
class FunctionRecord:
    """The attributes of moto's ``LambdaFunction`` that ``LambdaRegistry.invoke`` reads."""

    function_name: str
    function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:fn"
    memory_size: int = 256
    timeout: int = 10


class OrderRejectedError(Exception):
    """A handler's own error: its class name is the error name Step Functions sees."""


def reject_order(event: Any, context: Any) -> Any:
    raise OrderRejectedError(f"order {event['orderId']} rejected")


def echo(event: Any, context: Any) -> Any:
    return {"event": event, "function": context.function_name, "remainingMs": context.get_remaining_time_in_millis()}


@pytest.fixture
def registry() -> LambdaRegistry:
    registry = LambdaRegistry()
    registry.register("echo-fn", "EchoFunction", echo)
    registry.register("reject-fn", "RejectFunction", reject_order)
    return registry


def _invoke(registry: LambdaRegistry, name: str, event: Any) -> tuple[Any, bool]:
    payload, errored, logs = registry.invoke(FunctionRecord(name), event)
    assert logs == ""
    return json.loads(payload), errored


@pytest.mark.parametrize(
    ("event", "received"),
    [
        pytest.param('{"orderId": "42"}', {"orderId": "42"}, id="JSON text, as moto passes it"),
        pytest.param(b'{"orderId": "42"}', {"orderId": "42"}, id="JSON bytes"),
        pytest.param("", {}, id="empty text is an empty event"),
        pytest.param({"orderId": "42"}, {"orderId": "42"}, id="already decoded"),
    ],
)
def test_the_handler_gets_the_decoded_event_and_a_context(registry: LambdaRegistry, event: Any, received: Any) -> None:
    output, errored = _invoke(registry, "echo-fn", event)

    assert errored is False
    assert output["event"] == received
    assert output["function"] == "echo-fn"
    assert 0 < output["remainingMs"] <= 10_000


def test_a_handler_error_comes_back_as_lambdas_error_payload(registry: LambdaRegistry) -> None:
    payload, errored = _invoke(registry, "reject-fn", '{"orderId": "42"}')

    assert errored is True
    assert list(payload) == ["errorMessage", "errorType", "requestId", "stackTrace"]  # the Python runtime's order
    assert payload["errorType"] == "OrderRejectedError"
    assert payload["errorMessage"] == "order 42 rejected"
    # Lambda's stack trace starts in the handler, not in the code that called it.
    assert "reject_order" in payload["stackTrace"][0]
    assert all(isinstance(frame, str) for frame in payload["stackTrace"])


@pytest.mark.parametrize(
    "result",
    [
        pytest.param(object(), id="an object"),
        pytest.param({1, 2}, id="a set"),
        pytest.param({"when": b"bytes"}, id="bytes inside"),
    ],
)
def test_a_result_that_is_not_json_is_a_marshal_error(registry: LambdaRegistry, result: Any) -> None:
    registry.register("bad-result-fn", "BadResultFunction", lambda event, context: result)

    payload, errored = _invoke(registry, "bad-result-fn", "{}")

    assert errored is True
    assert payload["errorType"] == "Runtime.MarshalError"
    assert payload["errorMessage"].startswith("Unable to marshal response")


def test_interceptors_wrap_the_handler_the_latest_outermost_and_leave_on_exit(registry: LambdaRegistry) -> None:
    calls: list[str] = []

    def interceptor(name: str) -> Any:
        def intercept(handler: Any, event: Any, context: Any) -> Any:
            calls.append(f"{name} before")
            result = handler({**event, "seenBy": [*event.get("seenBy", []), name]}, context)
            calls.append(f"{name} after")
            return result

        return intercept

    with (
        registry.intercept("EchoFunction", interceptor("first")),
        registry.intercept("EchoFunction", interceptor("second")),
    ):
        output, _ = _invoke(registry, "echo-fn", "{}")
    after_exit, _ = _invoke(registry, "echo-fn", "{}")

    assert calls == ["second before", "first before", "first after", "second after"]
    assert output["event"] == {"seenBy": ["second", "first"]}
    assert after_exit["event"] == {}
    assert len(calls) == 4  # nothing intercepted the call after the with-block


def test_an_interceptor_is_removed_even_when_the_block_fails(registry: LambdaRegistry) -> None:
    def fail(handler: Any, event: Any, context: Any) -> Any:
        raise ConnectionResetError("injected")

    with pytest.raises(KeyError), registry.intercept("EchoFunction", fail):
        failed, _ = _invoke(registry, "echo-fn", "{}")
        assert failed["errorType"] == "ConnectionResetError"  # an injected fault is reported like a handler's
        raise KeyError("the test's own error")

    output, errored = _invoke(registry, "echo-fn", "{}")
    assert errored is False and output["event"] == {}


def test_a_gate_holds_calls_until_opened_then_lets_them_through(registry: LambdaRegistry) -> None:
    gate = Gate()
    results: list[Any] = []
    with registry.intercept("EchoFunction", gate):
        caller = threading.Thread(target=lambda: results.append(_invoke(registry, "echo-fn", '{"n": 1}')))
        caller.start()
        assert gate.arrived.wait(5)
        time.sleep(0.1)
        held = results == []
        gate.open()
        caller.join(5)

    assert held
    ((output, errored),) = results
    assert errored is False and output["event"] == {"n": 1}


def test_a_gate_never_opened_fails_the_call_instead_of_hanging(registry: LambdaRegistry) -> None:
    with registry.intercept("EchoFunction", Gate(timeout=0.05)):
        payload, errored = _invoke(registry, "echo-fn", "{}")

    assert errored is True
    assert payload["errorType"] == "TimeoutError"
    assert "not opened within 0.05 s" in payload["errorMessage"]


def test_invocations_are_counted_by_logical_id_whatever_their_outcome(registry: LambdaRegistry) -> None:
    registry.register("echo-fn-copy", "EchoFunction", echo)  # a second physical name of the same function
    for name in ["echo-fn", "echo-fn-copy", "reject-fn", "reject-fn", "reject-fn"]:
        _invoke(registry, name, '{"orderId": "1"}')

    assert registry.invocations("EchoFunction") == 2
    assert registry.invocations("RejectFunction") == 3
    assert registry.invocations("NeverInvoked") == 0


def test_a_function_outside_the_stack_is_refused(registry: LambdaRegistry) -> None:
    with pytest.raises(RuntimeError, match="other-fn is not part of the offline stack"):
        registry.invoke(FunctionRecord("other-fn"), "{}")


# --------------------------------------------------------------------------- atomic_dynamodb_writes
@pytest.fixture
def table(aws_credentials: None) -> Iterator[Any]:
    """A DynamoDB client with an empty table ``records`` (key ``id``), in moto."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="records",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _take(client: Any, key: str, owner: int) -> bool:
    """One conditional write that only the first writer of ``key`` may win."""
    try:
        client.put_item(
            TableName="records",
            Item={"id": {"S": key}, "owner": {"N": str(owner)}},
            ConditionExpression="attribute_not_exists(id)",
        )
    except ClientError as refused:
        assert refused.response["Error"]["Code"] == "ConditionalCheckFailedException"
        return False
    return True


@contextlib.contextmanager
def short_thread_switch_interval() -> Iterator[None]:
    # Threads switch after every few bytecodes, so a read and a write are often interleaved.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def test_racing_conditional_writes_have_exactly_one_winner(table: Any) -> None:
    rounds, writers = 50, 8
    winners_per_round: list[int] = []
    with atomic_dynamodb_writes(), short_thread_switch_interval():
        for round_number in range(rounds):
            start = threading.Barrier(writers)
            wins: list[int] = []

            def write(
                owner: int, key: str = f"round-{round_number}", start: threading.Barrier = start, wins: list[int] = wins
            ) -> None:
                start.wait()
                if _take(table, key, owner):
                    wins.append(owner)

            threads = [threading.Thread(target=write, args=(owner,)) for owner in range(writers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            winners_per_round.append(len(wins))

    assert winners_per_round == [1] * rounds


# Bounds only against a hang: a paused writer is let go as soon as the other has written.
HANG_GUARD_SECONDS = 60


@pytest.mark.parametrize(
    ("atomic", "first_answer"),
    [
        pytest.param(False, 2, id="moto alone: answered with the later write"),
        pytest.param(True, 1, id="with the adapter: its own"),
    ],
)
def test_an_update_is_answered_with_the_item_it_wrote_even_if_another_write_follows_at_once(
    table: Any, atomic: bool, first_answer: int
) -> None:
    # Made to happen: the first increment is paused after its write, before moto reads its answer,
    # while a second increment lands.
    table.put_item(TableName="records", Item={"id": {"S": "counter"}, "n": {"N": "0"}})
    answers: dict[str, int] = {}
    first_wrote, second_answered = threading.Event(), threading.Event()

    def increment() -> None:
        answer = table.update_item(
            TableName="records",
            Key={"id": {"S": "counter"}},
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        answers[threading.current_thread().name] = int(answer["Attributes"]["n"]["N"])

    with atomic_dynamodb_writes() if atomic else contextlib.nullcontext():
        update = DynamoDBBackend.update_item

        def pause_the_first_answer(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
            item = update(self, *args, **kwargs)
            if threading.current_thread().name == "first":
                first_wrote.set()
                second_answered.wait(HANG_GUARD_SECONDS)
            return item

        with mock.patch.object(DynamoDBBackend, "update_item", pause_the_first_answer):
            first = threading.Thread(target=increment, name="first")
            first.start()
            assert first_wrote.wait(HANG_GUARD_SECONDS)
            increment()  # the second, in this thread
            second_answered.set()
            first.join(HANG_GUARD_SECONDS)

    assert answers == {"first": first_answer, threading.current_thread().name: 2}


@pytest.mark.parametrize(
    ("atomic", "winners"),
    [pytest.param(False, 2, id="moto alone: both win"), pytest.param(True, 1, id="with the adapter: one wins")],
)
def test_a_write_paused_between_its_read_and_its_write_shows_what_the_lock_closes(
    table: Any, monkeypatch: pytest.MonkeyPatch, atomic: bool, winners: int
) -> None:
    # The race the racing test looks for, made to happen: the first writer stops after reading the
    # (absent) item, and a second writer comes in before it writes.
    read_item = Table.get_item
    first_has_read, second_has_read = threading.Event(), threading.Event()
    readers = iter(["first", "second"])
    lock = threading.Lock()

    def get_item_then_pause(self: Table, *args: Any, **kwargs: Any) -> Any:
        current = read_item(self, *args, **kwargs)
        with lock:
            reader = next(readers, "later")
        if reader == "first":
            first_has_read.set()
            # Moto alone lets the second writer read now (waited for: it will come); with the lock it
            # cannot until this write ends, so the first writer goes on after a pause.
            second_has_read.wait(timeout=0.3 if atomic else 300)
        elif reader == "second":
            second_has_read.set()
        return current

    monkeypatch.setattr(Table, "get_item", get_item_then_pause)
    wins: list[int] = []
    with atomic_dynamodb_writes() if atomic else contextlib.nullcontext():
        first = threading.Thread(target=lambda: wins.append(1) if _take(table, "k", 1) else None)
        first.start()
        assert first_has_read.wait(timeout=5)
        if _take(table, "k", 2):
            wins.append(2)
        first.join()

    assert len(wins) == winners


def test_the_lock_is_taken_off_moto_on_exit() -> None:
    originals = {
        name: getattr(DynamoDBBackend, name) for name in ("put_item", "update_item", "delete_item", "get_item")
    }
    with atomic_dynamodb_writes():
        assert all(getattr(DynamoDBBackend, name) is not original for name, original in originals.items())

    assert all(getattr(DynamoDBBackend, name) is original for name, original in originals.items())


# --------------------------------------------------------------------------- scaled_waits
@pytest.fixture
def stepfunctions(aws_credentials: None) -> Iterator[Any]:
    """A Step Functions client in moto with execution turned on (its DynamoDB integration calls moto too)."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name=REGION)


def test_a_parallel_branch_whose_worker_starts_after_the_stop_runs_nothing_and_raises_nothing() -> None:
    # A Parallel stopped (or failed) before one branch's worker thread began: moto raised
    # RuntimeError("Could not set NextState value ...") in that thread. The branch never starts.
    arn = f"arn:aws:states:{REGION}:123456789012:execution:machine:run"
    branch = Environment(
        aws_execution_details=AWSExecutionDetails("123456789012", REGION, "arn:aws:iam::123456789012:role/r"),
        execution_type=StateMachineType.STANDARD,
        context=ContextObjectData(
            Execution=ExecutionData(Id=arn, Input={}, Name="run", RoleArn="r", StartTime="2026-12-07T00:00:00Z"),
            State=None,
            StateMachine=StateMachineData(Id=arn, Name="machine"),
            Task=None,
            Map=None,
        ),
        event_history_context=EventHistoryContext.of_program_start(),
        cloud_watch_logging_session=None,
        activity_store={},
    )
    branch.next_state_name = "Step"
    branch.set_stop(stop_date=datetime.now(UTC), cause=None, error=None)
    definition = {"StartAt": "Step", "States": {"Step": {"Type": "Pass", "End": True}}}
    program, _ = AmazonStateLanguageParser.parse(json.dumps(definition))

    with scaled_waits(0.01):
        program.eval(branch)

    assert isinstance(branch.program_state(), ProgramStopped)


CLOSING_EVENTS = ("ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted")


def _run(sfn: Any, definition: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Create a state machine, run it once and wait for the end: (status, history)."""
    arn = sfn.create_state_machine(
        name=f"machine-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/unit-test",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name=uuid.uuid4().hex, input="{}")["executionArn"]
    # Leaving mock_aws while an execution runs would send its calls to AWS: wait for the end.
    deadline = time.monotonic() + 10
    while (status := sfn.describe_execution(executionArn=execution)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, "execution did not finish"
        time.sleep(0.005)
    # moto sets a timed-out execution's status a moment before it records the closing event.
    while (history := sfn.get_execution_history(executionArn=execution)["events"])[-1]["type"] not in CLOSING_EVENTS:
        assert time.monotonic() < deadline, "execution history was not closed"
        time.sleep(0.005)
    return status, history


def _seconds_between(history: list[dict[str, Any]], first: str, then: str) -> float:
    """Seconds from the first event of type ``first`` to the next one of type ``then`` (history times, in ms)."""
    types = [event["type"] for event in history]
    start = types.index(first)
    end = types.index(then, start + 1)
    return float((history[end]["timestamp"] - history[start]["timestamp"]).total_seconds())


# Declared 10 s at scale 0.01: at least 0.1 s (less 1 ms of timestamp rounding), and less than
# the 10 s it would last unscaled (a busy machine may stretch the tenth of a second, never to 10 s).
SCALED_10_SECONDS = (0.099, 9.9)

WAIT_10_SECONDS = {
    "StartAt": "Wait",
    "States": {"Wait": {"Type": "Wait", "Seconds": 10, "Next": "Done"}, "Done": {"Type": "Pass", "End": True}},
}

RETRY_AFTER_10_SECONDS = {
    "StartAt": "Read a table that does not exist",
    "States": {
        "Read a table that does not exist": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:getItem",
            "Parameters": {"TableName": "no-such-table", "Key": {"id": {"S": "k"}}},
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "MaxAttempts": 1}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Gave up"}],
            "End": True,
        },
        "Gave up": {"Type": "Pass", "End": True},
    },
}

TIMEOUT_AFTER_10_SECONDS = {
    "TimeoutSeconds": 10,
    "StartAt": "Wait longer than the timeout",
    "States": {"Wait longer than the timeout": {"Type": "Wait", "Seconds": 1000, "End": True}},
}


def test_a_10_second_wait_lasts_a_tenth_of_a_second_at_scale_0_01(stepfunctions: Any) -> None:
    with scaled_waits(0.01):
        status, history = _run(stepfunctions, WAIT_10_SECONDS)

    assert status == "SUCCEEDED"
    low, high = SCALED_10_SECONDS
    assert low <= _seconds_between(history, "WaitStateEntered", "WaitStateExited") < high


def test_a_10_second_retry_interval_lasts_a_tenth_of_a_second_at_scale_0_01(stepfunctions: Any) -> None:
    with scaled_waits(0.01):
        status, history = _run(stepfunctions, RETRY_AFTER_10_SECONDS)

    assert status == "SUCCEEDED"
    assert [event["type"] for event in history].count("TaskScheduled") == 2  # the first attempt and its retry
    low, high = SCALED_10_SECONDS
    assert low <= _seconds_between(history, "TaskFailed", "TaskScheduled") < high


def test_the_execution_timeout_is_scaled_too(stepfunctions: Any) -> None:
    with scaled_waits(0.01):
        status, history = _run(stepfunctions, TIMEOUT_AFTER_10_SECONDS)

    assert status == "TIMED_OUT"
    low, high = SCALED_10_SECONDS
    assert low <= _seconds_between(history, "ExecutionStarted", "ExecutionTimedOut") < high


def test_moto_waits_are_its_own_again_after_the_block() -> None:
    original = WaitFunction._wait_interval
    with scaled_waits(0.01):
        assert WaitFunction._wait_interval is not original

    assert WaitFunction._wait_interval is original


def test_each_powertools_metrics_keeps_its_own_metrics_and_dimensions_as_in_a_process_of_its_own() -> None:
    from aws_lambda_powertools import Metrics

    from emulator.adapters import metrics_per_function

    # Without the adapter, two functions' Metrics share one set: one's metric is the other's.
    shared_take, shared_save = Metrics(namespace="N", service="s"), Metrics(namespace="N", service="s")
    shared_take.add_metric(name="Hits", unit="Count", value=1)
    assert "Hits" in shared_save.metric_set
    shared_take.clear_metrics()

    with metrics_per_function():
        take, save = Metrics(namespace="N", service="s"), Metrics(namespace="N", service="s")
        take.add_metric(name="Hits", unit="Count", value=1)
        save.add_dimension(name="extra", value="1")
        save.clear_metrics()

        assert "Hits" in take.metric_set and "Hits" not in save.metric_set
        assert "extra" not in take.dimension_set
        assert take.provider.metric_set is take.metric_set
