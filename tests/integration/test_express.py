"""The envelope deployed as an Express workflow (WorkflowType=EXPRESS).

Express workflows cannot wait for task tokens, last at most five minutes, run at least once and
send no status-change events: waiters poll, the lease alone frees an abandoned record, and the
parameters must fit in five minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from emulator import OfflineStack
from emulator.adapters import Gate
from idempotency.key import compute_idempotency_key
from tests.integration.support import QUIET, STEP_CALLS, business_step_calls, failing_steps, intercept_steps, wait_until

# An Express owner cannot be asked whether it still runs: its lease must outlive it and its calls.
EXPRESS = {
    "WorkflowType": "EXPRESS",
    "ExecutionTimeoutSeconds": 240,
    "LongestCallSeconds": 30,
    "LockLeaseSeconds": 270,
    "WaitTimeoutSeconds": 200,
}


@pytest.fixture(scope="module")
def express() -> Iterator[OfflineStack]:
    with OfflineStack(EXPRESS, environment=QUIET) as deployed:
        yield deployed


def test_an_express_workflow_runs_the_steps_once_and_returns_the_stored_result(express: OfflineStack) -> None:
    execution_input = {"orderId": "express-1", "forceFailure": False}
    calls = business_step_calls(express)

    first = express.run(execution_input)
    repeat = express.run(execution_input)

    assert first.status == repeat.status == "SUCCEEDED"
    assert repeat.output == first.output
    assert business_step_calls(express) - calls == STEP_CALLS
    record = express.get_record(compute_idempotency_key(execution_input))
    assert record is not None and record["executionstatus"] == "SUCCESS"


def test_express_waiters_poll_instead_of_waiting_for_a_task_token(express: OfflineStack) -> None:
    execution_input = {"orderId": "express-2", "forceFailure": False}
    gate = Gate()
    calls = business_step_calls(express)
    with intercept_steps(express, gate):
        owner_arn = express.start_execution(execution_input)
        assert gate.arrived.wait(10)
        looks = express.lambdas.invocations("AcquireLockFunction")
        waiter_arns = [express.start_execution(execution_input) for _ in range(5)]
        wait_until(
            lambda: express.lambdas.invocations("AcquireLockFunction") >= looks + 10, message="the waiters to poll"
        )
        gate.open()
        owner = express.wait_for(owner_arn)
        with ThreadPoolExecutor(max_workers=5) as pool:
            waiters = list(pool.map(express.wait_for, waiter_arns))

    assert owner.status == "SUCCEEDED"
    assert [waiter.status for waiter in waiters] == ["SUCCEEDED"] * 5
    assert all(waiter.output == owner.output for waiter in waiters)
    assert express.lambdas.invocations("WaitForOwnerFunction") == 0
    assert business_step_calls(express) - calls == STEP_CALLS


def test_an_express_owner_that_fails_is_not_released_by_an_event(express: OfflineStack) -> None:
    with failing_steps(express):
        failed = express.run({"orderId": "express-3", "forceFailure": False})
    express.events.wait_until_delivered()

    assert failed.status == "FAILED"
    assert express.lambdas.invocations("ReleaseAbandonedRecordFunction") == 0


@pytest.mark.parametrize(
    ("parameters", "problem"),
    [
        ({"WorkflowType": "EXPRESS"}, "an Express workflow lasts at most 300 s"),
        (
            {**EXPRESS, "LockLeaseSeconds": 120},
            "LockLeaseSeconds=120 must be at least ExecutionTimeoutSeconds + LongestCallSeconds (270) for an Express "
            "workflow",
        ),
        ({"WaitTimeoutSeconds": 1800}, "WaitTimeoutSeconds=1800 must be shorter than ExecutionTimeoutSeconds=1800"),
        (
            {"RecordTtlSeconds": 1800},
            "RecordTtlSeconds=1800 must be longer than ExecutionTimeoutSeconds + LongestCallSeconds (1860)",
        ),
    ],
    ids=[
        "express longer than 5 minutes",
        "express lease shorter than the execution",
        "wait outlives the execution",
        "record expires before its owner can end",
    ],
)
def test_contradicting_parameters_are_refused_when_the_functions_start(
    parameters: dict[str, object], problem: str
) -> None:
    with pytest.raises(Exception) as refused:
        OfflineStack(parameters, environment=QUIET).__enter__()

    assert type(refused.value).__name__ == "IdempotencyConfigurationError"
    assert problem in str(refused.value)
    assert "IdempotencyError" in [base.__name__ for base in type(refused.value).__mro__]
