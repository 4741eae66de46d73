"""Each template parameter really changes the deployed behaviour."""

from __future__ import annotations

import json
import time

import pytest

from emulator import OfflineStack
from tests.integration.support import QUIET, Gate, compute_idempotency_key

pytestmark = pytest.mark.offline_only(reason="deploys the emulator with parameter overrides")


def test_lock_lease_parameter_sets_the_lease_of_an_in_progress_record() -> None:
    with OfflineStack({"LockLeaseSeconds": 45}, environment=QUIET) as stack:
        execution_input = {"orderId": "lease", "forceFailure": False}
        gate = Gate()
        with stack.lambdas.intercept("ExampleStepFunction", gate):
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


def test_execution_timeout_parameter_bounds_the_execution() -> None:
    # Real seconds: the timeout is not scaled like Wait and Retry.
    with OfflineStack({"ExecutionTimeoutSeconds": 1, "LockLeaseSeconds": 1}, environment=QUIET) as stack:
        definition = json.loads(stack.sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn)["definition"])
        gate = Gate()
        with stack.lambdas.intercept("ExampleStepFunction", gate):
            arn = stack.start_execution({"orderId": "slow", "forceFailure": False})
            assert gate.arrived.wait(10)
            timed_out = stack.wait_for(arn, timeout=10)
            gate.open()

    assert definition["TimeoutSeconds"] == 1
    assert timed_out.status == "TIMED_OUT"


def test_poll_interval_parameter_is_the_wait_between_looks() -> None:
    with OfflineStack({"PollIntervalSeconds": 7}, environment=QUIET) as stack:
        definition = json.loads(stack.sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn)["definition"])

    assert definition["States"]["Wait for the other execution to finish"]["Seconds"] == 7


def test_failure_probability_parameter_drives_the_random_step() -> None:
    outcomes = {}
    for probability in (0, 1):
        with OfflineStack({"FailureProbability": probability}, environment=QUIET) as stack:
            outcomes[probability] = {stack.run({"orderId": str(n)}).status for n in range(4)}

    assert outcomes == {0: {"SUCCEEDED"}, 1: {"FAILED"}}
