"""Redrive and the reusable envelope (the child variant): one logical run of the wrapped workflow.

The envelope starts the wrapped workflow as a child named after itself (``startExecution.sync:2``).
Stopped while its child runs, it ends ABORTED, and Step Functions stops the child too. A redrive of
the envelope reruns that start under the same name, which Step Functions refuses once the child has
ended: the envelope then follows the child it started (redriving it, or taking its output) instead
of starting another. A duplicate resumes the ended envelope the same way; an operator may redrive
the child itself, and its output is then saved by the envelope's next run. Only once neither can
ever run again (14 days after their ends) is the record taken over, and then Step Functions refuses
to redrive either.

The wrapped workflow is the test's own (``tests/integration/reusable_envelope/``): one counted step.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions.responses import StepFunctionResponse

from emulator import ExecutionResult, OfflineStack
from emulator.adapters import Gate
from emulator.adapters.redrive import ExecutionNotRedrivable
from idempotency.key import compute_idempotency_key
from scripts import child_envelope
from tests.integration.support import (
    WAITING_STATES,
    past_the_redrive_period,
    start_registered_waiter,
    wait_until,
)

# The same fixtures (a stack of this module's own): the test-only stack and its nested envelope.
from tests.integration.test_records_tool import run_tool
from tests.integration.test_reusable_envelope import (  # noqa: F401
    FRESH_RUN_STATES,
    STEP,
    envelope_fixture,
    stack_fixture,
    wrapped_executions,
)

pytestmark = pytest.mark.offline_only(reason="stops, redrives and moves Step Functions' clock, and counts Lambda calls")

GREETING = "Hello, {}!"


def _status(stack: OfflineStack, execution_arn: str) -> str:
    return str(stack.sfn.describe_execution(executionArn=execution_arn)["status"])


def _stopped_while_its_child_runs(
    stack: OfflineStack, envelope: OfflineStack, name: str, *, with_waiter: bool = False
) -> tuple[str, str, str | None]:
    """Start the envelope, hold its child in its step, and stop the envelope: both end ABORTED.

    Returns the envelope's execution, its child, and (``with_waiter``) a duplicate waiting for it.
    """
    gate = Gate()
    waiter = None
    with stack.lambdas.intercept(STEP, gate):
        parent = envelope.start_execution({"name": name})
        assert gate.arrived.wait(60), "the child never reached its step"
        if with_waiter:
            waiter = start_registered_waiter(envelope, {"name": name})
        stack.sfn.stop_execution(executionArn=parent)
        wait_until(
            lambda: any(d.event["detail"]["executionArn"] == parent for d in envelope.events.wait_until_delivered()),
            message="the stop's event",
        )
        (child,) = wrapped_executions(stack, name)
        wait_until(lambda: _status(stack, child["executionArn"]) == "ABORTED", message="the child to be stopped")
        gate.open()  # its call in flight finishes on its own, its result ignored
    return parent, child["executionArn"], waiter


def _history_types(stack: OfflineStack, execution_arn: str) -> list[str]:
    return [event["type"] for event in stack.sfn.get_execution_history(executionArn=execution_arn)["events"]]


def _refusal(stack: OfflineStack, execution_arn: str) -> str:
    with pytest.raises(ClientError) as refused:
        stack.sfn.redrive_execution(executionArn=execution_arn)
    return str(refused.value.response["Error"]["Code"])


def _saved(envelope: OfflineStack, name: str) -> tuple[Any, Any]:
    record = envelope.get_record(compute_idempotency_key({"name": name}))
    assert record is not None
    return record["executionstatus"], record["executionid"]


def _one_logical_run(
    stack: OfflineStack, envelope: OfflineStack, name: str, calls: int, parent: str, child: str
) -> None:
    """One run of the wrapped workflow: one child, redriven once, its aborted step run again and no other,
    and its output saved by the envelope that started it."""
    assert [execution["executionArn"] for execution in wrapped_executions(stack, name)] == [child]
    assert stack.sfn.describe_execution(executionArn=child)["redriveCount"] == 1
    assert stack.lambdas.invocations(STEP) - calls == 2
    assert _saved(envelope, name) == ("SUCCESS", parent)


def test_an_envelope_redriven_while_it_holds_its_record_redrives_its_child_and_wakes_its_waiters(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    calls = stack.lambdas.invocations(STEP)
    parent, child, waiter = _stopped_while_its_child_runs(stack, envelope, unique, with_waiter=True)
    assert waiter is not None
    held = _saved(envelope, unique)

    stack.sfn.redrive_execution(executionArn=parent)
    redriven = envelope.wait_for(parent, timeout=60)
    woken = envelope.wait_for(waiter, timeout=60)

    assert held == ("IN_PROGRESS", parent)
    assert redriven.status == "SUCCEEDED", redriven.cause
    assert redriven.output == {"greeting": GREETING.format(unique), "name": unique}
    assert woken.status == "SUCCEEDED" and woken.output == redriven.output
    assert child_envelope.REDRIVE_CHILD in redriven.states_entered
    _one_logical_run(stack, envelope, unique, calls, parent, child)


def test_a_duplicate_resumes_an_envelope_stopped_with_its_child_instead_of_starting_another_child(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    calls = stack.lambdas.invocations(STEP)
    parent, child, _ = _stopped_while_its_child_runs(stack, envelope, unique)
    child_stopped = stack.sfn.describe_execution(executionArn=child)["stopDate"].timestamp()

    duplicate = envelope.run({"name": unique}, timeout=90)
    resumed = envelope.wait_for(parent, timeout=60)

    assert duplicate.status == "SUCCEEDED", duplicate.cause
    assert child_envelope.RUN_CHILD not in duplicate.states_entered
    # Resumed only once the stopped child's calls could have ended (its step was still running).
    redriven = stack.sfn.describe_execution(executionArn=child)["redriveDate"].timestamp()
    assert redriven >= child_stopped + int(envelope.parameters["LongestCallSeconds"]) - 1
    assert resumed.status == "SUCCEEDED" and duplicate.output == resumed.output
    assert stack.sfn.describe_execution(executionArn=parent)["redriveCount"] == 1
    _one_logical_run(stack, envelope, unique, calls, parent, child)
    # Whatever an operator redrives afterwards, Step Functions refuses: both succeeded.
    assert (_refusal(stack, parent), _refusal(stack, child)) == ("ExecutionNotRedrivable",) * 2


def test_a_child_an_operator_redrove_is_saved_once_by_the_envelope_resumed_after_it(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    calls = stack.lambdas.invocations(STEP)
    parent, child, _ = _stopped_while_its_child_runs(stack, envelope, unique)

    stack.sfn.redrive_execution(executionArn=child)
    finished = stack.wait_for(child, timeout=60)
    held = _saved(envelope, unique)
    duplicate = envelope.run({"name": unique}, timeout=90)
    resumed = envelope.wait_for(parent, timeout=60)

    assert finished.status == "SUCCEEDED", finished.cause
    assert held == ("IN_PROGRESS", parent)  # the child's output is nobody's until its envelope runs again
    assert duplicate.status == "SUCCEEDED", duplicate.cause
    assert resumed.status == "SUCCEEDED" and duplicate.output == resumed.output == finished.output
    # The resumed envelope took the finished child's output: no redrive, no second child, no step.
    assert child_envelope.TAKE_FINISHED_OUTPUT in resumed.states_entered
    assert child_envelope.REDRIVE_CHILD not in resumed.states_entered
    _one_logical_run(stack, envelope, unique, calls, parent, child)


def test_an_envelope_redriven_while_an_operator_redrives_its_child_follows_that_run(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    calls = stack.lambdas.invocations(STEP)
    parent, child, _ = _stopped_while_its_child_runs(stack, envelope, unique)
    gate = Gate()
    with stack.lambdas.intercept(STEP, gate):
        stack.sfn.redrive_execution(executionArn=child)
        assert gate.arrived.wait(60), "the redriven child never reached its step"
        stack.sfn.redrive_execution(executionArn=parent)
        # The parent's start again, under the same name and input, while the child runs: Step Functions
        # returns that execution, and the parent waits for it.
        wait_until(
            lambda: _history_types(stack, parent).count("TaskSubmitted") == 2,
            message="the redriven parent's start of its child to be answered",
        )
        gate.open()
    redriven = envelope.wait_for(parent, timeout=60)

    assert redriven.status == "SUCCEEDED", redriven.cause
    assert redriven.output == {"greeting": GREETING.format(unique), "name": unique}
    assert child_envelope.FIND_CHILD not in redriven.states_entered
    _one_logical_run(stack, envelope, unique, calls, parent, child)


def test_after_a_takeover_past_the_redrive_period_neither_the_old_envelope_nor_its_child_runs_again(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    parent, child, _ = _stopped_while_its_child_runs(stack, envelope, unique)
    calls = stack.lambdas.invocations(STEP)

    with past_the_redrive_period(stack):
        duplicate = envelope.run({"name": unique}, timeout=90)
        refusals = (_refusal(stack, parent), _refusal(stack, child))

    assert duplicate.status == "SUCCEEDED", duplicate.cause
    assert child_envelope.RUN_CHILD in duplicate.states_entered
    assert refusals == ("ExecutionNotRedrivable",) * 2
    # The duplicate's own child ran the step once; the old ones never ran again.
    assert stack.lambdas.invocations(STEP) - calls == 1
    assert len(wrapped_executions(stack, unique)) == 2
    assert _status(stack, child) == "ABORTED" and _status(stack, parent) == "ABORTED"
    assert _saved(envelope, unique) == ("SUCCESS", duplicate.execution_arn)


def test_a_child_of_the_same_name_started_by_another_execution_is_never_followed(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    name = f"taken-{unique}"
    gate = Gate()
    with stack.lambdas.intercept(STEP, gate):
        # Another execution's child holds the name while it runs (a second envelope given the same name).
        foreign = stack.start_execution({"name": unique}, name=name, state_machine="WrappedWorkflow")
        assert gate.arrived.wait(60), "the other child never reached its step"
        refused = envelope.wait_for(envelope.start_execution({"name": unique}, name=name), timeout=60)
        gate.open()
    other = stack.wait_for(foreign, timeout=60)

    # The start stays refused: the envelope neither waits for that child nor takes its output.
    assert (refused.status, refused.error) == ("FAILED", child_envelope.ALREADY_STARTED)
    assert child_envelope.NAME_TAKEN in refused.states_entered
    assert other.status == "SUCCEEDED"
    assert stack.sfn.describe_execution(executionArn=foreign)["redriveCount"] == 0
    assert _saved(envelope, unique) == ("FAILED", refused.execution_arn)


def _refused_once(handler: Any, event: Any, context: Any) -> Any:
    raise RuntimeError("the step failed this once")


def _failed_on_its_own(stack: OfflineStack, envelope: OfflineStack, name: str) -> tuple[ExecutionResult, str]:
    """An envelope whose child failed on its own (its step refused): the envelope and the child it started."""
    with stack.lambdas.intercept(STEP, _refused_once):
        failed = envelope.run({"name": name})
    assert (failed.status, failed.error) == ("FAILED", "RuntimeError")
    (child,) = wrapped_executions(stack, name)
    assert child["status"] == "FAILED"
    return failed, child["executionArn"]


def _waits(stack: OfflineStack, execution_arn: str) -> bool:
    return any(
        event.get("stateEnteredEventDetails", {}).get("name") in WAITING_STATES
        for event in stack.sfn.get_execution_history(executionArn=execution_arn)["events"]
    )


def _next_run_says(envelope: OfflineStack, name: str) -> str:
    """What the records tool says the next run does with the key's record."""
    record = envelope.get_record(compute_idempotency_key({"name": name}))
    assert record is not None
    status, _, notes = run_tool(["--table", envelope.table_name], "show", str(record["id"]))
    assert status == 0
    return notes


def _quiet_period_over(stack: OfflineStack, envelope: OfflineStack) -> contextlib.AbstractContextManager[None]:
    """The functions' clock past a failure's quiet period (its calls may still run): the next run looks at once."""
    return stack.functions_clock.moved_on(int(envelope.parameters["LongestCallSeconds"]) + 2)


def _resumed_once(
    stack: OfflineStack, envelope: OfflineStack, name: str, child: str, saved_by: str, redrives: int = 1
) -> None:
    """The key's one logical run: the first child only, redriven ``redrives`` times, its output saved."""
    assert [execution["executionArn"] for execution in wrapped_executions(stack, name)] == [child]
    assert stack.sfn.describe_execution(executionArn=child)["redriveCount"] == redrives
    record = envelope.get_record(compute_idempotency_key({"name": name}))
    assert record is not None
    assert (record["executionstatus"], record["executionid"], record["childexecution"]) == ("SUCCESS", saved_by, child)


def test_the_next_run_of_a_key_whose_child_failed_resumes_that_child_and_later_redrives_run_no_step(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    failed, child = _failed_on_its_own(stack, envelope, unique)
    calls = stack.lambdas.invocations(STEP)
    said = _next_run_says(envelope, unique)

    with _quiet_period_over(stack, envelope):
        rerun = envelope.run({"name": unique})
    calls_of_the_rerun = stack.lambdas.invocations(STEP) - calls
    # Whatever an operator redrives afterwards: the child succeeded (refused), the failed envelope reruns
    # only its Fail state.
    refused = _refusal(stack, child)
    stack.sfn.redrive_execution(executionArn=failed.execution_arn)
    redriven = envelope.wait_for(failed.execution_arn, timeout=60)

    assert f"The next run resumes child {child}" in said
    assert rerun.status == "SUCCEEDED", rerun.cause
    assert rerun.output == {"greeting": GREETING.format(unique), "name": unique}
    # The rerun redrove the failed child (its failed step ran again, once) instead of starting its own: its
    # start under the child's name is refused, the child looked at and redriven, and a start after the wait
    # follows it (or, once it has finished, is refused again and takes its output).
    assert rerun.states_entered[:9] == [
        *FRESH_RUN_STATES[:4],
        child_envelope.FIND_CHILD,
        child_envelope.IS_IT_OURS,
        child_envelope.REDRIVE_CHILD,
        child_envelope.WAIT_FOR_REDRIVE,
        child_envelope.RUN_CHILD,
    ]
    assert rerun.states_entered[-2:] == FRESH_RUN_STATES[-2:]
    assert rerun.states_entered.count(child_envelope.REDRIVE_CHILD) == 1
    assert calls_of_the_rerun == 1
    _resumed_once(stack, envelope, unique, child, saved_by=rerun.execution_arn)
    assert refused == "ExecutionNotRedrivable"
    assert redriven.status == "FAILED"
    assert redriven.states_entered[len(failed.states_entered) :] == ["Fail with the steps' error"]
    assert stack.lambdas.invocations(STEP) - calls == 1


def test_a_failed_child_an_operator_redrove_before_the_next_run_is_saved_by_it_and_not_run_again(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    _, child = _failed_on_its_own(stack, envelope, unique)
    stack.sfn.redrive_execution(executionArn=child)
    finished = stack.wait_for(child, timeout=60)
    calls = stack.lambdas.invocations(STEP)

    with _quiet_period_over(stack, envelope):
        rerun = envelope.run({"name": unique})

    assert finished.status == "SUCCEEDED", finished.cause
    assert rerun.status == "SUCCEEDED", rerun.cause
    assert rerun.output == finished.output
    # Its output taken as it finished: no redrive, no second child, no step.
    assert child_envelope.TAKE_FINISHED_OUTPUT in rerun.states_entered
    assert child_envelope.REDRIVE_CHILD not in rerun.states_entered
    assert stack.lambdas.invocations(STEP) == calls
    _resumed_once(stack, envelope, unique, child, saved_by=rerun.execution_arn)


def test_the_next_run_follows_a_failed_child_an_operator_redrives_while_it_runs(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    _, child = _failed_on_its_own(stack, envelope, unique)
    calls = stack.lambdas.invocations(STEP)
    gate = Gate()
    with stack.lambdas.intercept(STEP, gate), _quiet_period_over(stack, envelope):
        stack.sfn.redrive_execution(executionArn=child)
        assert gate.arrived.wait(60), "the redriven child never reached its step"
        rerun_arn = envelope.start_execution({"name": unique})
        # Its start, under the child's name and with its input, is answered with that running child.
        wait_until(
            lambda: "TaskSubmitted" in _history_types(stack, rerun_arn),
            message="the rerun's start of the running child to be answered",
        )
        gate.open()
    rerun = envelope.wait_for(rerun_arn, timeout=60)

    assert rerun.status == "SUCCEEDED", rerun.cause
    assert rerun.output == {"greeting": GREETING.format(unique), "name": unique}
    assert child_envelope.FIND_CHILD not in rerun.states_entered
    assert stack.lambdas.invocations(STEP) - calls == 1
    _resumed_once(stack, envelope, unique, child, saved_by=rerun_arn)


def test_an_operator_redrive_of_the_child_beside_the_next_runs_own_is_refused_and_that_run_follows_it(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    _, child = _failed_on_its_own(stack, envelope, unique)
    calls = stack.lambdas.invocations(STEP)
    answers: list[str] = []
    redrive: Any = StepFunctionResponse.redrive_execution  # type: ignore[attr-defined]  # the emulator adds it

    def operator_first(response: StepFunctionResponse) -> Any:
        # The rerun's redrive of the child arrives just after an operator's: the operator's lands, the rerun's
        # is refused.
        if not answers:
            answers.append("operator")
            stack.sfn.redrive_execution(executionArn=child)
        try:
            return redrive(response)
        except ExecutionNotRedrivable:
            answers.append("refused")
            raise

    with (
        mock.patch.object(StepFunctionResponse, "redrive_execution", operator_first),
        _quiet_period_over(stack, envelope),
    ):
        rerun = envelope.run({"name": unique}, timeout=90)

    assert answers == ["operator", "refused"]
    assert rerun.status == "SUCCEEDED", rerun.cause
    assert child_envelope.REDRIVE_CHILD in rerun.states_entered
    assert stack.lambdas.invocations(STEP) - calls == 1
    _resumed_once(stack, envelope, unique, child, saved_by=rerun.execution_arn)


def test_of_two_duplicates_of_a_failed_key_one_resumes_its_child_and_the_other_waits_for_its_result(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    _, child = _failed_on_its_own(stack, envelope, unique)
    calls = stack.lambdas.invocations(STEP)
    gate = Gate()
    with stack.lambdas.intercept(STEP, gate), _quiet_period_over(stack, envelope), ThreadPoolExecutor(2) as pool:
        arns = list(pool.map(lambda _: envelope.start_execution({"name": unique}), range(2)))
        assert gate.arrived.wait(60), "the resumed child never reached its step"
        wait_until(lambda: any(_waits(stack, arn) for arn in arns), message="one of them to wait for the other")
        gate.open()
        results = list(pool.map(lambda arn: envelope.wait_for(arn, timeout=90), arns))

    assert [result.status for result in results] == ["SUCCEEDED"] * 2, [result.cause for result in results]
    assert results[0].output == results[1].output == {"greeting": GREETING.format(unique), "name": unique}
    (resumer,) = [result for result in results if child_envelope.LINK in result.states_entered]
    (waiter,) = [result for result in results if result is not resumer]
    assert WAITING_STATES & set(waiter.states_entered)
    assert stack.lambdas.invocations(STEP) - calls == 1
    _resumed_once(stack, envelope, unique, child, saved_by=resumer.execution_arn)


def test_a_resumed_child_that_fails_again_is_recorded_and_resumed_again_by_the_next_run(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    _, child = _failed_on_its_own(stack, envelope, unique)
    with stack.lambdas.intercept(STEP, _refused_once), _quiet_period_over(stack, envelope):
        again = envelope.run({"name": unique})
    failed_again = envelope.get_record(compute_idempotency_key({"name": unique}))
    calls = stack.lambdas.invocations(STEP)

    with _quiet_period_over(stack, envelope):
        third = envelope.run({"name": unique})

    assert (again.status, again.error) == ("FAILED", "RuntimeError")
    assert failed_again is not None
    assert (failed_again["executionstatus"], failed_again["executionid"], failed_again["childexecution"]) == (
        "FAILED",
        again.execution_arn,
        child,
    )
    assert third.status == "SUCCEEDED", third.cause
    assert stack.lambdas.invocations(STEP) - calls == 1
    _resumed_once(stack, envelope, unique, child, saved_by=third.execution_arn, redrives=2)


def test_a_failed_child_that_can_no_longer_be_redriven_is_replaced_by_a_new_one(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    _, child = _failed_on_its_own(stack, envelope, unique)
    calls = stack.lambdas.invocations(STEP)

    with past_the_redrive_period(stack), _quiet_period_over(stack, envelope):
        said = _next_run_says(envelope, unique)
        rerun = envelope.run({"name": unique})
        refused = _refusal(stack, child)

    assert rerun.status == "SUCCEEDED", rerun.cause
    assert f"The next run starts a new child: {child} ended in a Fail state of its own" in said
    assert rerun.states_entered == FRESH_RUN_STATES  # its own child, started as on a first run
    assert refused == "ExecutionNotRedrivable"
    assert stack.lambdas.invocations(STEP) - calls == 1
    children = [execution["executionArn"] for execution in wrapped_executions(stack, unique)]
    assert len(children) == 2 and child in children
    assert _status(stack, child) == "FAILED"
