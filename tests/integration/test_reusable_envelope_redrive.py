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

from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import OfflineStack
from emulator.adapters import Gate
from scripts import child_envelope
from tests.integration.support import (
    compute_idempotency_key,
    past_the_redrive_period,
    start_registered_waiter,
    wait_until,
)

# The same fixtures (a stack of this module's own): the test-only stack and its nested envelope.
from tests.integration.test_reusable_envelope import (  # noqa: F401
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


def test_a_failed_envelope_redriven_after_another_execution_saved_its_key_runs_no_step(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    with stack.lambdas.intercept(STEP, _refused_once):
        failed = envelope.run({"name": unique})
    rerun = envelope.run({"name": unique})
    (old_child,) = [child for child in wrapped_executions(stack, unique) if child["status"] == "FAILED"]
    calls = stack.lambdas.invocations(STEP)

    stack.sfn.redrive_execution(executionArn=failed.execution_arn)
    redriven = envelope.wait_for(failed.execution_arn, timeout=60)
    # Not covered (docs/contract.md, Redrive): the child that failed on its own is the user's own
    # workflow, and Step Functions lets an operator redrive it: its failed step runs again, outside
    # the envelope, and no record changes.
    stack.sfn.redrive_execution(executionArn=old_child["executionArn"])
    old_child_again = stack.wait_for(old_child["executionArn"], timeout=60)

    assert (failed.status, failed.error) == ("FAILED", "RuntimeError")
    assert rerun.status == "SUCCEEDED", rerun.cause
    # The envelope's redrive reruns only its final Fail state: no child, no step.
    assert redriven.status == "FAILED"
    assert redriven.states_entered[len(failed.states_entered) :] == ["Fail with the steps' error"]
    assert old_child_again.status == "SUCCEEDED"
    assert stack.lambdas.invocations(STEP) - calls == 1
    assert _saved(envelope, unique) == ("SUCCESS", rerun.execution_arn)
