"""Each template parameter really changes the deployed behaviour."""

from __future__ import annotations

import json
import time

import pytest

from emulator import OfflineStack
from emulator.adapters import Gate
from idempotency.key import compute_idempotency_key
from tests.integration.support import QUIET, held_owner, intercept_steps, wait_until

WAIT_STATE = "Wait for the other execution to finish"

pytestmark = pytest.mark.offline_only(reason="deploys the emulator with parameter overrides")


def test_lock_lease_parameter_sets_the_lease_of_an_in_progress_record() -> None:
    with OfflineStack({"LockLeaseSeconds": 45}, environment=QUIET) as stack:
        execution_input = {"orderId": "lease", "forceFailure": False}
        gate = Gate()
        with intercept_steps(stack, gate):
            before = int(time.time())
            arn = stack.start_execution(execution_input)
            assert gate.arrived.wait(10)
            held = stack.get_record(compute_idempotency_key(execution_input))
            after = int(time.time())
            gate.open()
            finished = stack.wait_for(arn)
        saved = stack.get_record(compute_idempotency_key(execution_input))

    assert held is not None and held["executionstatus"] == "IN_PROGRESS"
    assert before + 45 <= held["leaseexpiry"] <= after + 45
    assert finished.status == "SUCCEEDED"
    assert saved is not None and "leaseexpiry" not in saved  # a finished record holds no lease


def test_execution_timeout_parameter_bounds_the_execution_and_frees_the_record() -> None:
    # 60 s declared, 6 s here: the emulator scales ASL time, the execution's own timeout ten times less.
    parameters = {"ExecutionTimeoutSeconds": 60, "WaitTimeoutSeconds": 40, "LongestCallSeconds": 5}
    with OfflineStack(parameters, environment=QUIET) as stack:
        definition = json.loads(stack.sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn)["definition"])
        execution_input = {"orderId": "slow", "forceFailure": False}
        key = compute_idempotency_key(execution_input)
        started = time.monotonic()
        with held_owner(stack, execution_input) as (arn, gate):
            timed_out = stack.wait_for(arn, timeout=60 * stack.execution_timeout_scale + 20)
            lasted = time.monotonic() - started
            # The TIMED_OUT event reaches the release function. The step still runs (a timeout cancels
            # no Lambda call): the key is freed LongestCallSeconds after the stop, not at once.
            (delivery,) = stack.events.wait_until_delivered()
            stopped = -(-delivery.event["detail"]["stopDate"] // 1000)
            held = stack.get_record(key)
            gate.open()

    assert definition["TimeoutSeconds"] == 60
    assert timed_out.status == "TIMED_OUT"
    assert lasted >= 60 * stack.execution_timeout_scale
    assert held is not None and (held["executionstatus"], held["executionid"]) == ("IN_PROGRESS", arn)
    assert held["leaseexpiry"] == stopped + 5


def test_poll_interval_parameter_is_the_first_wait_before_looking_again() -> None:
    with OfflineStack({"PollIntervalSeconds": 7}, environment=QUIET) as stack:
        execution_input = {"orderId": "poll", "forceFailure": False}
        with held_owner(stack, execution_input) as (owner_arn, gate):
            waiter_arn = stack.start_execution(execution_input)
            wait_until(lambda: stack.lambdas.invocations("WaitForOwnerFunction") >= 1, message="the waiter to register")
            gate.open()
            stack.wait_for(owner_arn)
            waiter = stack.wait_for(waiter_arn)

    declared = [
        json.loads(event["stateEnteredEventDetails"]["input"])["idempotency"]["recheckAfterSeconds"]
        for event in waiter.history
        if event["type"] == "TaskStateEntered" and event["stateEnteredEventDetails"]["name"] == WAIT_STATE
    ]
    # The first look on its own is due after PollIntervalSeconds (test_waiting checks the waits last that long).
    assert declared[0] == 7


def test_failure_probability_parameter_drives_the_random_step() -> None:
    outcomes = {}
    for probability in (0, 1):
        with OfflineStack({"FailureProbability": probability}, environment=QUIET) as stack:
            outcomes[probability] = {stack.run({"orderId": str(n)}).status for n in range(4)}

    assert outcomes == {0: {"SUCCEEDED"}, 1: {"FAILED"}}
