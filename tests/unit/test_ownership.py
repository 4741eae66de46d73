"""Whether a record's holder can still act (the layer's ``ownership.py``), asked of moto's Step Functions.

Executions started on moto stay RUNNING until stopped (ABORTED, with a real stop date). Exact
stop dates, other end states and faults come from a small fake client instead.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from idempotency import decision, ownership, record, take, vocabulary
from idempotency.errors import IdempotencyConfigurationError
from idempotency.store import RecordStore
from tests.unit.conftest import RECORDS_TABLE as TABLE

LONGEST_CALL = 60
ROLE = "arn:aws:iam::123456789012:role/states"
PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
PREFIX = "arn:aws:states:us-east-1:123456789012:execution"


class Machines(SimpleNamespace):
    client: Any
    parent: str
    child: str

    def start(self, machine: str, name: str) -> str:
        return self.client.start_execution(stateMachineArn=machine, name=name)["executionArn"]

    def stop(self, execution_arn: str) -> datetime:
        self.client.stop_execution(executionArn=execution_arn)
        return self.client.describe_execution(executionArn=execution_arn)["stopDate"]


@pytest.fixture
def machines(aws_credentials: None) -> Iterator[Machines]:
    """A parent and a child state machine on moto."""
    with mock_aws():
        client = boto3.client("stepfunctions", region_name="us-east-1")
        parent = client.create_state_machine(name="wf", definition=PASS, roleArn=ROLE)["stateMachineArn"]
        child = client.create_state_machine(name="child", definition=PASS, roleArn=ROLE)["stateMachineArn"]
        yield Machines(client=client, parent=parent, child=child)


def _checker(client: Any) -> Any:
    return ownership.LivenessChecker(lambda: client, LONGEST_CALL)


def _holder(execution_id: str, child: str | None = None) -> Any:
    return record.Holder(execution_id=execution_id, run_id="run", lease_expiry=0, child_execution=child)


class FakeStepFunctions:
    """``describe_execution`` answering from ``executions`` (ARN -> description, or an exception to raise)."""

    def __init__(
        self,
        executions: dict[str, Any],
        redrives: dict[str, Any] | None = None,
        histories: dict[str, list[str]] | None = None,
    ) -> None:
        self.executions = executions
        # GetExecutionHistory's answers: ARN -> the types of its events, oldest first (else refused).
        self.histories = histories or {}
        self.described: list[str] = []
        # RedriveExecution's answers: ARN -> an exception to raise (else the redrive succeeds).
        self.redrives = redrives or {}
        self.redriven: list[str] = []

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.described.append(executionArn)
        answer = self.executions.get(executionArn)
        if answer is None:
            raise ClientError({"Error": {"Code": "ExecutionDoesNotExist", "Message": "gone"}}, "DescribeExecution")
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get_execution_history(
        self,
        executionArn: str,  # noqa: N803 - boto3's names
        reverseOrder: bool = False,  # noqa: N803
        maxResults: int = 1000,  # noqa: N803
    ) -> dict[str, Any]:
        types = self.histories.get(executionArn)
        if types is None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetExecutionHistory")
        events = [
            {"id": number, "previousEventId": number - 1, "type": kind} for number, kind in enumerate(types, start=1)
        ]
        if types[-1] == "LateBranchCall":  # a call of an aborted branch that ended after the execution did
            events[-1]["previousEventId"] = 2
        return {"events": (events[::-1] if reverseOrder else events)[:maxResults]}

    def redrive_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.redriven.append(executionArn)
        answer = self.redrives.get(executionArn)
        if isinstance(answer, Exception):
            raise answer
        self.executions[executionArn] = {"status": "RUNNING"}
        return {"redriveDate": datetime.now(UTC)}


def _ended(status: str, stop: float) -> dict[str, Any]:
    return {"status": status, "stopDate": datetime.fromtimestamp(stop, UTC)}


NOW = 1_800_000_000
HOLDER = f"{PREFIX}:wf:holder"
CHILD = f"{PREFIX}:child:holder"


def test_a_running_holder_can_act(machines: Machines) -> None:
    holder = machines.start(machines.parent, "holder")

    answer = _checker(machines.client)(_holder(holder), int(time.time()))

    assert answer == record.Liveness(can_act=True)


def test_a_stopped_holder_whose_child_still_runs_can_act(machines: Machines) -> None:
    holder = machines.start(machines.parent, "holder")
    child = machines.start(machines.child, "holder")
    machines.stop(holder)

    answer = _checker(machines.client)(_holder(holder, child), int(time.time()))

    assert answer.can_act is True


def test_a_holder_and_child_both_stopped_free_the_key_a_longest_call_after_the_later_stop(machines: Machines) -> None:
    holder = machines.start(machines.parent, "holder")
    child = machines.start(machines.child, "holder")
    stops = [machines.stop(child), machines.stop(holder)]
    later = math.ceil(max(stops).timestamp())

    answer = _checker(machines.client)(_holder(holder, child), int(time.time()))

    assert answer.can_act is False
    assert later + LONGEST_CALL <= answer.free_at <= later + LONGEST_CALL + 1  # never early


@pytest.mark.parametrize("status", ["ABORTED", "TIMED_OUT", "FAILED", "SUCCEEDED"])
def test_the_key_is_free_at_the_later_stop_rounded_up_plus_the_longest_call(status: str) -> None:
    sfn = FakeStepFunctions({HOLDER: _ended(status, NOW + 7.5), CHILD: _ended("SUCCEEDED", NOW + 0.25)})

    answer = _checker(sfn)(_holder(HOLDER, CHILD), NOW + 100)

    assert answer == record.Liveness(can_act=False, free_at=NOW + 8 + LONGEST_CALL)
    assert sfn.described == [HOLDER, CHILD]


@pytest.mark.parametrize("status", ["RUNNING", "PENDING_REDRIVE"])
def test_a_holder_that_runs_or_may_be_redriven_can_act_and_its_child_is_not_asked(status: str) -> None:
    sfn = FakeStepFunctions({HOLDER: {"status": status}})

    assert _checker(sfn)(_holder(HOLDER, CHILD), NOW).can_act is True
    assert sfn.described == [HOLDER]


def test_a_child_that_was_never_started_counts_as_ended(machines: Machines) -> None:
    holder = machines.start(machines.parent, "holder")
    stopped = math.ceil(machines.stop(holder).timestamp())
    never_started = f"{machines.child.replace(':stateMachine:', ':execution:')}:holder"

    answer = _checker(machines.client)(_holder(holder, never_started), int(time.time()))

    assert answer.can_act is False
    assert stopped + LONGEST_CALL <= answer.free_at <= stopped + LONGEST_CALL + 1


def test_an_unknown_holder_counts_as_ended(machines: Machines) -> None:
    # Its history is gone (Step Functions keeps a closed execution for 90 days): nothing of it can still run.
    now = int(time.time())

    answer = _checker(machines.client)(_holder(f"{PREFIX}:wf:long-gone"), now)

    assert answer.can_act is False and answer.free_at <= now


@pytest.mark.parametrize(
    "fault",
    [
        ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DescribeExecution"),
        ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "later"}}, "DescribeExecution"),
        EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com"),
    ],
    ids=["throttled", "unavailable", "unreachable"],
)
@pytest.mark.parametrize("asked_about", ["holder", "child"])
def test_any_doubt_about_the_holder_or_its_child_counts_as_can_act(fault: Exception, asked_about: str) -> None:
    executions: dict[str, Any] = {HOLDER: _ended("ABORTED", NOW), CHILD: _ended("ABORTED", NOW)}
    executions[HOLDER if asked_about == "holder" else CHILD] = fault

    answer = _checker(FakeStepFunctions(executions))(_holder(HOLDER, CHILD), NOW + 1000)

    assert answer == record.Liveness(can_act=True)


def test_the_step_functions_client_is_made_on_first_use_only() -> None:
    made: list[FakeStepFunctions] = []

    def make_client() -> FakeStepFunctions:
        made.append(FakeStepFunctions({HOLDER: {"status": "RUNNING"}}))
        return made[-1]

    checker = ownership.LivenessChecker(make_client, LONGEST_CALL)
    assert made == [] and checker.checks == 0

    checker(_holder(HOLDER), NOW)
    checker(_holder(HOLDER), NOW)

    assert len(made) == 1 and checker.checks == 2
    assert made[0].described == [HOLDER, HOLDER]


def test_the_childs_arn_is_named_after_its_parent_execution() -> None:
    child_machine = "arn:aws:states:us-east-1:123456789012:stateMachine:child"

    assert ownership.execution_arn_of_child(child_machine, f"{PREFIX}:wf:order-42") == f"{PREFIX}:child:order-42"


# --------------------------------------------------------------------------- with the record
@pytest.fixture
def tables_and_machines(dynamodb: Any, aws_credentials: None) -> Machines:
    """The record table and the state machines in one moto (the ``dynamodb`` fixture's)."""
    client = boto3.client("stepfunctions", region_name="us-east-1")
    parent = client.create_state_machine(name="wf", definition=PASS, roleArn=ROLE)["stateMachineArn"]
    child = client.create_state_machine(name="child", definition=PASS, roleArn=ROLE)["stateMachineArn"]
    return Machines(client=client, parent=parent, child=child)


def _take(dynamodb: Any, execution_id: str, now: int, checker: Any) -> Any:
    store = RecordStore(dynamodb, TABLE, record_ttl_seconds=10_000, lease_seconds=30)
    request = decision.TakeRequest("wf#key", record.Owner(execution_id, "run", "2026-11-23T00:00:00Z"))
    return take.take_record(store, request, now, take.HolderChecks(liveness=checker))


def test_an_expired_lease_of_a_running_holder_is_extended_and_of_a_stopped_one_taken_over_once_its_calls_ended(
    dynamodb: Any, tables_and_machines: Machines
) -> None:
    machines = tables_and_machines
    holder = machines.start(machines.parent, "holder")
    checker = ownership.LivenessChecker(lambda: machines.client, 600)
    now = int(time.time())
    assert _take(dynamodb, holder, now, checker).outcome == vocabulary.Outcome.ACQUIRED

    still_running = _take(dynamodb, f"{PREFIX}:wf:other", now + 31, checker)
    assert (still_running.outcome, still_running.look_again_at) == (
        vocabulary.Outcome.BUSY,
        now + 61,
    )  # lease extended by 30 s

    stopped = math.ceil(machines.stop(holder).timestamp())
    waiting = _take(dynamodb, f"{PREFIX}:wf:other", now + 62, checker)
    assert waiting.outcome == vocabulary.Outcome.BUSY
    assert stopped + 600 + 1 <= waiting.look_again_at <= stopped + 600 + 2

    assert _take(dynamodb, f"{PREFIX}:wf:other", waiting.look_again_at - 2, checker).outcome == vocabulary.Outcome.BUSY
    taken = _take(dynamodb, f"{PREFIX}:wf:other", waiting.look_again_at, checker)
    assert (taken.outcome, taken.taken_over) == (vocabulary.Outcome.ACQUIRED, True)
    assert checker.checks == 4


def test_a_holder_step_functions_will_not_describe_is_left_to_its_lease() -> None:
    # Another workflow given the same IdempotencyScope: these functions may not describe its executions.
    # Asking again would never be answered, so the expired lease decides, as for an Express owner.
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "DescribeExecution")
    answer = _checker(FakeStepFunctions({HOLDER: denied}))(_holder(HOLDER, None), NOW + 1000)

    assert answer.can_act is False


@pytest.mark.parametrize(
    ("status", "runs"),
    [("RUNNING", True), ("PENDING_REDRIVE", True), ("ABORTED", False), ("TIMED_OUT", False), ("FAILED", False)],
)
def test_whether_an_execution_still_runs_is_its_status(status: str, runs: bool) -> None:
    sfn = FakeStepFunctions({HOLDER: {"status": status}})

    assert _checker(sfn).runs(HOLDER) is runs
    assert sfn.described == [HOLDER]


def test_an_execution_that_cannot_be_described_counts_as_running() -> None:
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "DescribeExecution")
    sfn = FakeStepFunctions({HOLDER: throttled})

    assert _checker(sfn).runs(HOLDER) is True


def _not_redrivable() -> ClientError:
    return ClientError({"Error": {"Code": "ExecutionNotRedrivable", "Message": "no"}}, "RedriveExecution")


@pytest.mark.parametrize(
    ("redrive_status", "redrivable"), [("REDRIVABLE", True), ("NOT_REDRIVABLE", False), (None, False)]
)
def test_an_ended_holder_is_redrivable_as_step_functions_says(redrive_status: str | None, redrivable: bool) -> None:
    sfn = FakeStepFunctions({HOLDER: {**_ended("ABORTED", NOW), "redriveStatus": redrive_status}})

    answer = _checker(sfn)(_holder(HOLDER), NOW + 100)

    assert (answer.can_act, answer.redrivable) == (False, redrivable)


def test_resuming_a_holder_redrives_it() -> None:
    sfn = FakeStepFunctions({HOLDER: _ended("ABORTED", NOW)})

    assert _checker(sfn).resume(_holder(HOLDER)) is True
    assert sfn.redriven == [HOLDER]


def test_a_holder_with_a_child_workflow_is_resumed_by_redriving_the_parent_only() -> None:
    sfn = FakeStepFunctions({HOLDER: _ended("ABORTED", NOW), CHILD: _ended("ABORTED", NOW)})

    assert _checker(sfn).resume(_holder(HOLDER, CHILD)) is True
    # The redriven parent follows its child itself (the child ASL): it is not redriven from here.
    assert sfn.redriven == [HOLDER]


@pytest.mark.parametrize(
    ("child", "may_run_again"),
    [
        ({**_ended("ABORTED", NOW + 1), "redriveStatus": "REDRIVABLE"}, True),
        ({"status": "RUNNING"}, True),
        ({**_ended("ABORTED", NOW + 1), "redriveStatus": "NOT_REDRIVABLE"}, False),
        ({"status": "SUCCEEDED", "redriveStatus": "NOT_REDRIVABLE"}, False),
        (None, False),  # never started
        (ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "DescribeExecution"), True),
    ],
)
def test_a_parent_past_its_redrive_period_is_not_taken_over_while_its_child_may_still_run(
    child: Any, may_run_again: bool
) -> None:
    executions = {HOLDER: _ended("ABORTED", NOW)}
    if child is not None:
        executions[CHILD] = child
    sfn = FakeStepFunctions(executions, redrives={HOLDER: _not_redrivable()})

    assert _checker(sfn).resume(_holder(HOLDER, CHILD)) is may_run_again
    assert sfn.redriven == [HOLDER]


def test_a_holder_someone_else_redrove_counts_as_resumed() -> None:
    sfn = FakeStepFunctions({HOLDER: {"status": "RUNNING"}}, redrives={HOLDER: _not_redrivable()})

    assert _checker(sfn).resume(_holder(HOLDER)) is True


def test_a_holder_past_its_redrive_period_is_not_resumed() -> None:
    sfn = FakeStepFunctions({HOLDER: _ended("ABORTED", NOW)}, redrives={HOLDER: _not_redrivable()})

    assert _checker(sfn).resume(_holder(HOLDER)) is False


@pytest.mark.parametrize(
    "fault",
    [
        ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "RedriveExecution"),
        EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com"),
    ],
    ids=["throttled", "unreachable"],
)
def test_a_redrive_without_an_answer_counts_as_resumed(
    fault: Exception,
) -> None:
    # The holder may be running again: its record is waited for and looked at again, never taken.
    sfn = FakeStepFunctions({HOLDER: _ended("ABORTED", NOW)}, redrives={HOLDER: fault})

    assert _checker(sfn).resume(_holder(HOLDER)) is True
    assert sfn.redriven == [HOLDER] and sfn.described == []


@pytest.mark.parametrize(
    ("stop_date", "free_at"),
    [(NOW + 0.25, NOW + 1 + LONGEST_CALL), (NOW, NOW + 1 + LONGEST_CALL), (None, NOW + 500 + LONGEST_CALL)],
    ids=["epoch-seconds", "whole-epoch-seconds", "none"],
)
def test_a_stop_date_given_in_epoch_seconds_or_not_at_all_never_frees_a_key_early(
    stop_date: float | None, free_at: int
) -> None:
    # A stop given as a number is rounded up; without one, the holder is taken as stopped at the look.
    sfn = FakeStepFunctions({HOLDER: {"status": "ABORTED", "stopDate": stop_date}})

    answer = _checker(sfn)(_holder(HOLDER), NOW + 500)

    assert (answer.can_act, answer.free_at) == (False, free_at)


class StateMachines:
    """``describe_state_machine`` that fails ``failures`` times with a throttle, then answers ``machine_type``."""

    def __init__(self, machine_type: str, failures: int) -> None:
        self.machine_type, self.failures = machine_type, failures
        self.described: list[str] = []

    def describe_state_machine(self, stateMachineArn: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.described.append(stateMachineArn)
        if len(self.described) <= self.failures:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "later"}}, "DescribeStateMachine")
        return {"stateMachineArn": stateMachineArn, "type": self.machine_type}


def test_a_child_state_machine_that_cannot_be_described_is_let_through_and_asked_about_again() -> None:
    child_machine = "arn:aws:states:us-east-1:123456789012:stateMachine:child"
    sfn = StateMachines("EXPRESS", failures=1)
    checker = _checker(sfn)

    checker.refuse_express_child(child_machine)  # no answer: the take goes on
    with pytest.raises(IdempotencyConfigurationError, match="is an Express state machine"):
        checker.refuse_express_child(child_machine)  # asked again, and refused

    assert sfn.described == [child_machine, child_machine]


# --------------------------------------------------------------------------- the child a failed owner ran
RESUMER = f"{PREFIX}:wf:rerun"


def _child_of(parent: str | None, **description: Any) -> dict[str, Any]:
    """A description of CHILD, whose input says ``parent`` started it (None: nobody did)."""
    started_by = {} if parent is None else {ownership.STARTED_BY_FIELD: parent}
    return {"input": json.dumps({"orderId": "1", **started_by}), **description}


@pytest.mark.parametrize(
    ("description", "may_run_again"),
    [
        ({"status": "FAILED", "redriveStatus": "REDRIVABLE", "redriveCount": 2}, True),
        ({"status": "TIMED_OUT", "redriveStatus": "REDRIVABLE"}, True),
        ({"status": "RUNNING", "redriveStatus": "NOT_REDRIVABLE", "redriveCount": 1}, True),  # an operator redrove it
        ({"status": "SUCCEEDED", "redriveStatus": "NOT_REDRIVABLE", "redriveCount": 1}, True),  # and it finished
        ({"status": "FAILED", "redriveStatus": "NOT_REDRIVABLE"}, False),  # past the 14 days
    ],
)
def test_a_failed_owners_child_may_run_again_while_it_runs_succeeded_or_can_be_redriven(
    description: dict[str, Any], may_run_again: bool
) -> None:
    sfn = FakeStepFunctions({CHILD: _child_of(HOLDER, **description)})

    answer = _checker(sfn).child_to_resume(CHILD, RESUMER)

    assert (answer.may_run_again, answer.in_doubt) == (may_run_again, False)
    if may_run_again:
        assert (answer.started_by, answer.redrive_count) == (HOLDER, description.get("redriveCount", 0))
    assert sfn.described == [CHILD]


@pytest.mark.parametrize(
    ("last_events", "may_run_again"),
    [
        # A workflow that caught its error (a rollback) and failed on purpose: a redrive runs that Fail state
        # alone, no step, so the next run starts a new child with its own input.
        (["TaskStateExited", "FailStateEntered", "ExecutionFailed"], False),
        (["FailStateEntered", "ExecutionFailed", "LateBranchCall"], False),
        (["TaskScheduled", "TaskStarted", "TaskFailed", "ExecutionFailed"], True),  # a redrive reruns the task
        (["FailStateEntered", "ParallelStateFailed", "ExecutionFailed"], True),  # and the Parallel's other branches
        (None, True),  # the history cannot be read: resumed, the side that never runs a step twice
    ],
    ids=[
        "fail state",
        "fail state then a late branch call",
        "task failed",
        "fail state in a parallel",
        "history refused",
    ],
)
def test_a_failed_child_is_resumed_unless_it_ended_in_a_fail_state(
    last_events: list[str] | None, may_run_again: bool
) -> None:
    description = _child_of(HOLDER, status="FAILED", redriveStatus="REDRIVABLE")
    histories = {} if last_events is None else {CHILD: ["ExecutionStarted", "TaskStateEntered", *last_events]}
    sfn = FakeStepFunctions({CHILD: description}, histories=histories)

    answer = _checker(sfn).child_to_resume(CHILD, RESUMER)

    assert (answer.may_run_again, answer.in_doubt) == (may_run_again, False)


@pytest.mark.parametrize(
    "started_by",
    [None, f"{PREFIX}:other-envelope:holder", RESUMER],
    ids=["started directly", "by another state machine's execution", "by an execution of another name"],
)
def test_a_child_of_that_name_started_by_another_execution_is_never_resumed(started_by: str | None) -> None:
    sfn = FakeStepFunctions({CHILD: _child_of(started_by, status="FAILED", redriveStatus="REDRIVABLE")})

    answer = _checker(sfn).child_to_resume(CHILD, RESUMER)

    assert answer == record.ChildState(may_run_again=False)


@pytest.mark.parametrize(
    ("fault", "in_doubt"),
    [
        (None, False),  # never started: nothing to resume
        (ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeExecution"), False),
        (ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "DescribeExecution"), True),
        (EndpointConnectionError(endpoint_url="https://states"), True),
    ],
)
def test_a_child_step_functions_does_not_describe_is_not_resumed_and_a_passing_doubt_is_said(
    fault: Exception | None, in_doubt: bool
) -> None:
    sfn = FakeStepFunctions({} if fault is None else {CHILD: fault})

    answer = _checker(sfn).child_to_resume(CHILD, RESUMER)

    assert (answer.may_run_again, answer.in_doubt) == (False, in_doubt)


def test_a_childs_parent_is_the_execution_of_the_askers_state_machine_named_as_the_child() -> None:
    assert ownership.parent_of_child(CHILD, RESUMER) == HOLDER
    assert (
        ownership.parent_of_child(
            ownership.execution_arn_of_child(f"{PREFIX[:-10]}:stateMachine:child", HOLDER), RESUMER
        )
        == HOLDER
    )
