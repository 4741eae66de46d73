"""Issue 12, point 7: a hot key. Hundreds of duplicates wait for one owner, with task tokens as long as AWS's.

Each waiter's token lives in a waiter slot of its own, so the record never grows with the
waiters, and the owner wakes them concurrently. The steps run once, and every duplicate returns
the owner's output. The 500-duplicate run is in the slow tier (``make test-slow``).
"""

from __future__ import annotations

import inspect
import threading
from collections import defaultdict
from typing import Any

import pytest

from emulator import OfflineStack
from emulator.adapters import Gate
from idempotency.key import compute_idempotency_key
from tests.integration.support import QUIET, STEP_CALLS, business_step_calls, intercept_steps, wait_until

pytestmark = pytest.mark.offline_only(reason="holds the owner and reads the waiters' tokens with Lambda interceptors")

# The longest task token the Step Functions API accepts (``$$.Task.Token``); AWS's are long opaque strings.
TOKEN_LENGTH = 2048


def hot_key_stack() -> OfflineStack:
    """A stack whose waiters look on their own only after 60 s, with AWS-length tokens if the emulator can."""
    options: dict[str, Any] = {"environment": QUIET}
    if "task_token_length" in inspect.signature(OfflineStack).parameters:
        options["task_token_length"] = TOKEN_LENGTH
    # Real time (time_scale 1): the emulator starts hundreds of executions far slower than Step Functions
    # does, and scaled waits would make early waiters look again, and use up their wait bound, while
    # the last ones are still registering. Nobody looks on its own within 60 s: a wake-up ends each wait.
    return OfflineStack({"PollIntervalSeconds": 60}, time_scale=1.0, **options)


def run_hot_key(duplicates: int, unique: str, timeout: float) -> None:
    with hot_key_stack() as stack:
        execution_input = {"orderId": f"hot-{unique}", "forceFailure": False}
        token_lengths: dict[str, set[int]] = defaultdict(set)
        lock = threading.Lock()

        def note_token(handler: Any, event: Any, context: Any) -> Any:
            with lock:
                token_lengths[event["executionId"]].add(len(event["taskToken"]))
            return handler(event, context)

        def waiting() -> set[str]:
            with lock:
                return set(token_lengths)

        gate = Gate(timeout=timeout)
        calls = business_step_calls(stack)
        with stack.lambdas.intercept("WaitForOwnerFunction", note_token), intercept_steps(stack, gate):
            owner_arn = stack.start_execution(execution_input)
            assert gate.arrived.wait(timeout), "the owner never started its steps"
            waiter_arns = [stack.start_execution(execution_input) for _ in range(duplicates - 1)]
            # Every duplicate is waiting for the owner (it handed its token to the wait function) before the
            # owner goes on.
            wait_until(
                lambda: set(waiter_arns) <= waiting(), timeout=timeout, message="every duplicate to wait for the owner"
            )
            gate.open()
            owner = stack.wait_for(owner_arn, timeout=timeout)
            assert owner.status == "SUCCEEDED", (owner.error, owner.cause)
            waiters = {arn: stack.wait_for(arn, timeout=timeout) for arn in waiter_arns}
        record_id = stack.record_id(compute_idempotency_key(execution_input))
        slots_left = [item["id"] for item in stack.records() if item["id"].startswith(f"{record_id}#waiter#")]
        steps_run = business_step_calls(stack) - calls

    assert steps_run == STEP_CALLS  # the steps ran once
    failed = {arn: (result.status, result.error) for arn, result in waiters.items() if result.status != "SUCCEEDED"}
    # None failed: none timed out or ran out of its wait bound (IdempotencyWaitTimeoutError), all returned.
    assert failed == {}
    assert all(result.output == owner.output for result in waiters.values())
    assert slots_left == []  # the owner cleared every waiter slot it woke
    assert {length for lengths in token_lengths.values() for length in lengths} == {TOKEN_LENGTH}, (
        "the waiters did not receive task tokens of AWS's length: the emulator hands out shorter ones"
    )


def test_fifty_duplicates_at_a_hot_key_run_the_steps_once_and_all_return_the_output(unique: str) -> None:
    run_hot_key(50, unique, timeout=120)


@pytest.mark.slow
def test_five_hundred_duplicates_at_a_hot_key_run_the_steps_once_and_all_return_the_output(unique: str) -> None:
    run_hot_key(500, unique, timeout=900)
