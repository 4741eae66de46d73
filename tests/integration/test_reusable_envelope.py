"""The reusable envelope (``envelope/template.yaml``) around a workflow it has never seen.

The workflow is the test's own (``tests/integration/reusable_envelope/``): one Lambda step that
greets, or fails when the input asks it to, and whose calls the emulator counts. A test-only stack
defines it and nests the envelope as an ``AWS::Serverless::Application`` given its ARN, as a user's
stack would (README, "Make your workflow idempotent"). Nothing of the envelope knows the workflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from emulator import ExecutionResult, OfflineStack
from emulator.adapters import Gate
from idempotency.key import compute_idempotency_key
from scripts import child_envelope
from tests.integration.support import QUIET, wait_until
from tools.template import PROJECT_ROOT

pytestmark = pytest.mark.offline_only(reason="deploys a test-only workflow and counts its Lambda calls")

TEMPLATE = PROJECT_ROOT / "tests" / "integration" / "reusable_envelope" / "template.yaml"
APPLICATION = "Envelope"
WRAPPED = "WrappedWorkflow"
STEP = "CountedStepFunction"
# The envelope's states on a fresh run (envelope/README.md, "What it costs"): the wrapped
# workflow's own states are in its own history. A hit is the first two and "Return the stored result".
FRESH_RUN_STATES = [
    "Take the idempotency record",
    "Is the work done, ours to do, or running elsewhere?",
    child_envelope.LINK,
    child_envelope.RUN_CHILD,
    child_envelope.TAKE_OUTPUT,
    "Save the result and wake the waiters",
]
HIT_STATES = [*FRESH_RUN_STATES[:2], "Return the stored result"]
# Up to the run, then the chain that reads the workflow's own error, records it and fails with it.
FAILURE_STATES = 10


@pytest.fixture(scope="module", name="stack")
def stack_fixture() -> Iterator[OfflineStack]:
    """The test-only stack (a module that imports this fixture deploys its own)."""
    with OfflineStack(template_path=TEMPLATE, environment=QUIET) as deployed:
        yield deployed


@pytest.fixture(scope="module", name="envelope")
def envelope_fixture(stack: OfflineStack) -> OfflineStack:
    """The nested envelope: its state machine, table and records."""
    return stack.applications[APPLICATION]


def wrapped_executions(stack: OfflineStack, name: str) -> list[dict[str, Any]]:
    """The wrapped workflow's executions whose input greets ``name``."""
    executions = stack.sfn.list_executions(stateMachineArn=stack.physical_id(WRAPPED))["executions"]
    described = [stack.sfn.describe_execution(executionArn=execution["executionArn"]) for execution in executions]
    return [execution for execution in described if json.loads(execution["input"]).get("name") == name]


def test_the_envelope_is_deployed_around_the_workflow_given_by_arn(stack: OfflineStack, envelope: OfflineStack) -> None:
    assert envelope.parameters["WorkflowArn"] == stack.physical_id(WRAPPED)
    assert stack.outputs["IdempotentWorkflowArn"] == envelope.state_machine_arn
    assert stack.outputs["IdempotencyTableName"] == envelope.table_name
    definition = json.loads(
        envelope.sfn.describe_state_machine(stateMachineArn=envelope.state_machine_arn)["definition"]
    )
    run_child = definition["States"][child_envelope.RUN_CHILD]
    assert run_child["Parameters"]["StateMachineArn"] == stack.physical_id(WRAPPED)


def test_running_the_stack_that_nests_the_envelope_runs_the_envelope_never_the_workflow_it_wraps(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    assert stack.envelope is envelope
    assert stack.state_machine_arn == envelope.state_machine_arn != stack.physical_id(WRAPPED)
    assert stack.table_name == envelope.table_name

    first, repeat = stack.run({"name": unique}), stack.run({"name": unique})

    assert [first.states_entered, repeat.states_entered] == [FRESH_RUN_STATES, HIT_STATES]
    assert len(wrapped_executions(stack, unique)) == 1
    record = stack.get_record(compute_idempotency_key({"name": unique}))
    assert record is not None and record["executionstatus"] == "SUCCESS"


def test_the_first_run_runs_the_workflow_once_and_stores_its_output(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    calls = stack.lambdas.invocations(STEP)

    result = envelope.run({"name": unique})

    assert result.status == "SUCCEEDED", result.cause
    assert result.output == {"greeting": f"Hello, {unique}!", "name": unique}
    assert stack.lambdas.invocations(STEP) - calls == 1
    (child,) = wrapped_executions(stack, unique)
    # What is stored and returned is the wrapped workflow's output, unchanged.
    assert json.loads(child["output"]) == result.output
    assert json.loads(child["input"])[child_envelope.STARTED_BY_FIELD] == result.execution_arn
    record = envelope.get_record(compute_idempotency_key({"name": unique}))
    assert record is not None
    assert record["executionstatus"] == "SUCCESS"
    assert json.loads(record["executionresult"]) == result.output
    assert record["childexecution"] == child["executionArn"]
    assert result.states_entered == FRESH_RUN_STATES


def test_a_repeat_returns_the_stored_output_without_starting_the_workflow(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    first = envelope.run({"name": unique})
    calls = stack.lambdas.invocations(STEP)

    repeat = envelope.run({"name": unique})

    assert repeat.status == "SUCCEEDED"
    assert repeat.output == first.output
    assert stack.lambdas.invocations(STEP) == calls
    assert len(wrapped_executions(stack, unique)) == 1
    assert repeat.states_entered == HIT_STATES


def test_concurrent_duplicates_start_the_workflow_once(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    gate = Gate()
    calls = stack.lambdas.invocations(STEP)
    with stack.lambdas.intercept(STEP, gate), ThreadPoolExecutor(max_workers=5) as pool:
        # Hold the first run's step until every duplicate has started.
        arns = list(pool.map(lambda _: envelope.start_execution({"name": unique}), range(5)))
        wait_until(gate.arrived.is_set, message="the wrapped workflow's step")
        gate.open()
        results: list[ExecutionResult] = list(pool.map(envelope.wait_for, arns))

    assert {result.status for result in results} == {"SUCCEEDED"}
    assert all(result.output == results[0].output for result in results)
    assert stack.lambdas.invocations(STEP) - calls == 1
    assert len(wrapped_executions(stack, unique)) == 1


def test_a_failure_of_the_workflow_is_recorded_with_its_error_and_resumed_where_it_failed_next_time(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    refused = {"name": unique, "refuse": "not today"}
    calls = stack.lambdas.invocations(STEP)

    failed = envelope.run(refused)

    assert (failed.status, failed.error) == ("FAILED", "GreetingRefusedError")
    assert "not today" in (failed.cause or "")
    assert len(failed.states_entered) == FAILURE_STATES
    record = envelope.get_record(compute_idempotency_key(refused))
    assert record is not None
    assert (record["executionstatus"], record["error"]) == ("FAILED", "GreetingRefusedError")
    assert "not today" in record["cause"]
    assert "executionresult" not in record

    # A failure is not an answer: the same input resumes the failed workflow where it failed (a redrive of
    # that execution, not a second one): its failed step runs again, with the first input.
    again = envelope.run(refused)

    assert (again.status, again.error) == ("FAILED", "GreetingRefusedError")
    assert stack.lambdas.invocations(STEP) - calls == 2
    (child,) = wrapped_executions(stack, unique)
    assert child["redriveCount"] == 1


def test_an_express_workflow_is_refused_by_name_before_any_record_or_run() -> None:
    with OfflineStack({"WrappedWorkflowType": "EXPRESS"}, template_path=TEMPLATE, environment=QUIET) as stack:
        envelope = stack.applications[APPLICATION]

        refused = envelope.run({"name": "express"})

        assert refused.status == "FAILED"
        assert refused.error == "IdempotencyConfigurationError"
        assert stack.physical_id(WRAPPED) in str(refused.cause) and "Express" in str(refused.cause)
        # The take wrote nothing; the release of the failed execution left its usual short record
        # (held by it, no run, until its calls can have ended), never a record of a run.
        envelope.events.wait_until_delivered()
        records = envelope.records()
        assert [(record["executionid"], record["runid"]) for record in records] in ([], [(refused.execution_arn, "")])
        assert stack.lambdas.invocations(STEP) == 0
        assert stack.sfn.list_executions(stateMachineArn=stack.physical_id(WRAPPED))["executions"] == []
