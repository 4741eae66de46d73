"""The envelope's four functions end to end, as plain functions on moto's DynamoDB and Step Functions.

Each function's module is imported as Lambda imports it, with the environment the template gives
(its parameters' defaults). The owners and waiters are real moto executions, so the release
function's ``DescribeExecution`` and the take's liveness check ask moto; only ``SendTaskSuccess``
goes to a recorder, since it needs the tokens of executions really waiting.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator.adapters import LambdaContext
from tests.unit.conftest import RECORDS_TABLE as TABLE

NOW = 1_800_000_000
ROLE = "arn:aws:iam::123456789012:role/states"
PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
START = "2026-11-23T00:00:00.000Z"
INPUT = {"orderId": "1", "amount": 5}


class RecordingStepFunctions:
    """Step Functions for the functions: ``SendTaskSuccess`` recorded (``gone`` tokens answer TaskTimedOut), the rest
    moto's."""

    def __init__(self, gone: frozenset[str] = frozenset(), history: list[dict[str, Any]] | None = None) -> None:
        self.sent: list[tuple[str, Any]] = []
        self._gone = gone
        self._history = history
        self._moto = boto3.client("stepfunctions", region_name="us-east-1")

    def get_paginator(self, operation: str) -> Any:
        if operation != "get_execution_history" or self._history is None:
            # Any operation the functions page through, named at run time: the stubs type literal names only.
            return self._moto.get_paginator(operation)  # type: ignore[call-overload]
        pages = [{"events": list(reversed(self._history))}]
        return type("Pages", (), {"paginate": lambda _self, **_: iter(pages)})()

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        if taskToken in self._gone:
            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "gone"}}, "SendTaskSuccess")
        self.sent.append((taskToken, json.loads(output)))
        return {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._moto, name)


class Envelope:
    """The four functions' modules, a moto state machine to start executions of, and helpers that call them as the ASL
    does."""

    def __init__(self, modules: dict[str, ModuleType]) -> None:
        self.take, self.wait, self.save, self.release = (
            modules[name]
            for name in (
                "AcquireLockFunction",
                "WaitForOwnerFunction",
                "SaveOutcomeFunction",
                "ReleaseAbandonedRecordFunction",
            )
        )
        self.sfn = boto3.client("stepfunctions", region_name="us-east-1")
        self.machine = self.sfn.create_state_machine(name="wf", definition=PASS, roleArn=ROLE)["stateMachineArn"]

    def start(self, name: str, payload: Any = INPUT) -> str:
        return self.sfn.start_execution(stateMachineArn=self.machine, name=name, input=json.dumps(payload))[
            "executionArn"
        ]

    @staticmethod
    def deployment(function: ModuleType, settings: Any = None, sfn: Any = None) -> Any:
        """The deployment ``function`` made on its first call, with other ``settings`` or Step Functions client.

        Its liveness checker stays the container's own, whose calls some tests count.
        """
        deployment = function.deployment()
        if settings is None and sfn is None:
            return deployment
        changed = dataclasses.replace(
            deployment,
            settings=settings or deployment.settings,
            make_stepfunctions=(lambda: sfn) if sfn is not None else deployment.make_stepfunctions,
        )
        if sfn is None:
            vars(changed)["liveness"] = deployment.liveness
        return changed

    def look(
        self, execution: str, now: int = NOW, payload: Any = INPUT, config: Any = None, **event: Any
    ) -> dict[str, Any]:
        """What "Take the idempotency record" (or, with ``waiting``, "Look at the record again") gets back."""
        event = {
            "input": payload,
            "executionId": execution,
            "startTime": START,
            "stateMachine": self.machine,
            "runId": f"run-of-{execution[-8:]}",
            **event,
        }
        return self.take.look_and_take(event, self.deployment(self.take, config), now).output

    def register(
        self, busy: dict[str, Any], waiter: str, token: str, sfn: Any = None, now: int = NOW
    ) -> dict[str, Any]:
        event = {
            "taskToken": token,
            "key": busy["key"],
            "heldBy": busy["heldBy"],
            "heldByRun": busy["heldByRun"],
            "executionId": waiter,
        }
        deployment = self.deployment(self.wait, sfn=sfn or RecordingStepFunctions())
        return self.wait.wait_for_owner(event, deployment, now=now)

    def store(self, taken: dict[str, Any], owner: str, sfn: Any, **outcome: Any) -> dict[str, Any]:
        """What "Save the outcome" gets back; it fails, as the function does, with a result too large to keep."""
        event = {"key": taken["key"], "executionId": owner, "runId": taken["runId"], **outcome}
        answer = self.save.save_and_wake(event, self.deployment(self.save, sfn=sfn), now=int(time.time()))
        if answer.too_large is not None:
            raise answer.too_large
        return answer.output

    def release_ended(self, detail: dict[str, Any], sfn: Any = None, now: int | None = None) -> dict[str, Any]:
        """What the release function answers to the status-change ``detail``."""
        deployment = self.deployment(self.release, sfn=sfn or RecordingStepFunctions())
        answer = self.release.release_abandoned_record(detail, deployment, int(time.time()) if now is None else now)
        return answer.output

    @property
    def dynamodb(self) -> Any:
        """The take's DynamoDB client (every function's reaches the same moto table)."""
        return self.take.deployment().dynamodb

    def item(self, key: str) -> dict[str, Any] | None:
        return self.dynamodb.get_item(TableName=TABLE, Key={"id": {"S": key}}, ConsistentRead=True).get("Item")

    def slots(self, key: str) -> list[str]:
        items = self.dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
        return sorted(item["id"]["S"] for item in items if item["id"]["S"].startswith(f"{key}#waiter#"))


def load_envelope(load_function: Any, template_environment: dict[str, str]) -> Envelope:
    """The four envelope functions, loaded with the template's environment (inside moto: see the fixture)."""
    environment = {**template_environment, "POWERTOOLS_METRICS_DISABLED": "false"}
    return Envelope(
        {
            logical_id: load_function(logical_id, environment)
            for logical_id in (
                "AcquireLockFunction",
                "WaitForOwnerFunction",
                "SaveOutcomeFunction",
                "ReleaseAbandonedRecordFunction",
            )
        }
    )


@pytest.fixture
def envelope(
    dynamodb: Any, load_function: Any, template_environment: dict[str, str], aws_credentials: None
) -> Envelope:
    """The four envelope functions, loaded with the template's environment inside the ``dynamodb`` fixture's moto."""
    return load_envelope(load_function, template_environment)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


# --------------------------------------------------------------------------- take, save, hit
def test_the_first_execution_takes_the_record_and_a_repeat_gets_its_stored_result(envelope: Envelope) -> None:
    owner = envelope.start("owner")
    taken = envelope.look(owner)
    assert set(taken) == {"outcome", "key", "runId"} and taken["outcome"] == "ACQUIRED"
    assert taken["key"].startswith("wf#") and len(taken["key"]) == len("wf#") + 64

    saved = envelope.store(taken, owner, RecordingStepFunctions(), result={"receipt": "Zoë", "n": [1, 2]})
    repeat = envelope.look(
        envelope.start("repeat"), payload={"amount": 5, "orderId": "1"}
    )  # same input, keys in another order

    assert saved == {"status": "SUCCESS", "wokenWaiters": 0, "wakeUpsFailed": 0}
    assert repeat["outcome"] == "COMPLETED" and repeat["key"] == taken["key"]
    assert repeat["result"] == {"receipt": "Zoë", "n": [1, 2]}
    stored = envelope.item(taken["key"])
    assert stored is not None and stored["executionresult"] == {"S": '{"receipt":"Zoë","n":[1,2]}'}


def test_a_repeat_whose_validated_payload_differs_fails_with_a_named_error_and_changes_nothing(
    envelope: Envelope,
) -> None:
    rules = type(envelope.deployment(envelope.take).settings.key_rules)(
        validation_expression="amount"
    )  # the take's own layer's KeyRules
    validating = dataclasses.replace(envelope.deployment(envelope.take).settings, key_rules=rules)
    keyed = {**INPUT, "idempotencyKeyJmespath": "orderId"}
    owner = envelope.start("owner", keyed)
    taken = envelope.look(owner, payload=keyed, config=validating)
    before = envelope.item(taken["key"])

    with pytest.raises(envelope.take.IdempotencyError) as refused:  # the take's own layer's errors
        envelope.look(envelope.start("other"), payload={**keyed, "amount": 6}, config=validating)
    assert type(refused.value).__name__ == "IdempotencyPayloadMismatchError"

    assert envelope.item(taken["key"]) == before
    # With the template's default (no payload validation) the same repeat is answered as the same request.
    assert envelope.look(envelope.start("again"), payload={**keyed, "amount": 6})["outcome"] == "BUSY"


def test_a_result_too_large_to_return_is_recorded_as_failed_with_a_named_error(envelope: Envelope) -> None:
    owner = envelope.start("owner")
    taken = envelope.look(owner)

    with pytest.raises(Exception, match="256 KiB") as raised:  # the save's own layer's error
        envelope.store(
            taken, owner, RecordingStepFunctions(), result="é" * 130_000
        )  # under 256 Ki characters, over in UTF-8
    assert type(raised.value).__name__ == "IdempotencyResultTooLargeError"

    item = envelope.item(taken["key"])
    assert item is not None
    assert (item["executionstatus"], item["error"]) == ({"S": "FAILED"}, {"S": "IdempotencyResultTooLargeError"})


# --------------------------------------------------------------------------- waiting
def test_a_waiter_looks_again_after_the_poll_interval_doubled_each_time_until_the_bound(envelope: Envelope) -> None:
    owner = envelope.start("owner")
    taken = envelope.look(owner)
    waiter = envelope.start("waiter")
    settings = envelope.deployment(envelope.take).settings

    first = envelope.look(waiter)
    second = envelope.look(waiter, waiting={**first, "wakeUp": {"Error": "States.Timeout"}})
    woken = envelope.look(waiter, waiting={**second, "wakeUp": {"outcome": "RECORD_CHANGED"}})

    assert first == {
        "outcome": "BUSY",
        "key": taken["key"],
        "heldBy": owner,
        "heldByRun": taken["runId"],
        "runId": first["runId"],
        "waitBy": "TASK_TOKEN",
        "rechecks": 0,
        "waitedSeconds": 0,
        "recheckAfterSeconds": settings.poll_interval_seconds,
    }
    assert (second["rechecks"], second["waitedSeconds"], second["recheckAfterSeconds"]) == (1, 10, 20)
    # A wake-up that was news (not a timeout) does not count against the bound.
    assert (woken["rechecks"], woken["waitedSeconds"], woken["recheckAfterSeconds"]) == (1, 10, 20)
    last = {**second, "waitedSeconds": settings.wait_timeout_seconds - second["recheckAfterSeconds"]}
    with pytest.raises(envelope.take.IdempotencyError, match=f"after waiting {settings.wait_timeout_seconds}s") as late:
        envelope.look(waiter, waiting={**last, "wakeUp": {"Error": "States.Timeout"}})
    assert type(late.value).__name__ == "IdempotencyWaitTimeoutError"


def test_a_waiter_looks_again_when_the_holders_lease_runs_out_even_if_its_backoff_is_longer(envelope: Envelope) -> None:
    envelope.look(envelope.start("owner"))
    lease = envelope.deployment(envelope.take).settings.lease_seconds
    waiter = envelope.start("waiter")
    first = envelope.look(waiter)

    late = envelope.look(
        waiter, now=NOW + lease - 5, waiting={**first, "rechecks": 6, "wakeUp": {"outcome": "RECORD_CHANGED"}}
    )

    assert late["recheckAfterSeconds"] == 6  # the lease's last second is NOW + lease: look at NOW + lease + 1


def test_a_waiter_registers_its_token_or_wakes_itself_when_the_record_changed(envelope: Envelope) -> None:
    owner = envelope.start("owner")
    taken = envelope.look(owner)
    busy = envelope.look(envelope.start("waiter"))
    sfn = RecordingStepFunctions()

    registered = envelope.register(busy, "waiter", "token-1", sfn)
    stale = envelope.register({**busy, "heldByRun": "another run"}, "waiter", "token-2", sfn)

    assert registered == {"registered": True} and stale == {"registered": False}
    assert sfn.sent == [("token-2", {"outcome": "RECORD_CHANGED", "key": taken["key"]})]
    assert len(envelope.slots(taken["key"])) == 1


def test_the_save_wakes_every_waiter_with_the_result_skips_those_gone_and_clears_the_slots(envelope: Envelope) -> None:
    owner = envelope.start("owner")
    taken = envelope.look(owner)
    for number in (1, 2, 3):
        busy = envelope.look(envelope.start(f"waiter-{number}"))
        assert envelope.register(busy, f"waiter-{number}", f"token-{number}") == {"registered": True}
    sfn = RecordingStepFunctions(gone=frozenset({"token-2"}))

    answer = envelope.store(taken, owner, sfn, result={"ok": 1})

    assert answer == {"status": "SUCCESS", "wokenWaiters": 2, "wakeUpsFailed": 0}
    message = {"outcome": "COMPLETED", "key": taken["key"], "result": {"ok": 1}}
    assert sorted(sfn.sent) == [("token-1", message), ("token-3", message)]
    assert envelope.slots(taken["key"]) == []


def test_a_failure_is_saved_and_sent_to_the_waiters(envelope: Envelope) -> None:
    owner = envelope.start("owner")
    taken = envelope.look(owner)
    envelope.register(envelope.look(envelope.start("waiter")), "waiter", "t")
    sfn = RecordingStepFunctions()

    answer = envelope.store(taken, owner, sfn, failure={"Error": "Boom", "Cause": "why"})

    assert answer == {"status": "FAILED", "wokenWaiters": 1, "wakeUpsFailed": 0}
    assert sfn.sent == [
        ("t", {"outcome": "FAILED", "key": taken["key"]})
    ]  # the waiter reads error and cause from the record
    item = envelope.item(taken["key"])
    assert item is not None and (item["error"], item["cause"]) == ({"S": "Boom"}, {"S": "why"})


# The owner's history when one branch of "Run the business steps" failed while another's call still ran.
# The last TaskStarted is the save's own call, which records the failure.
BRANCH_STILL_RUNNING = [
    {"id": 10, "type": "TaskStarted"},
    {"id": 11, "type": "TaskStarted"},
    {"id": 12, "type": "TaskFailed", "previousEventId": 11},
    {"id": 20, "type": "TaskStarted"},
]
ALL_BRANCHES_ENDED = [
    *BRANCH_STILL_RUNNING[:3],
    {"id": 13, "type": "TaskSucceeded", "previousEventId": 10},
    BRANCH_STILL_RUNNING[3],
]


def test_a_failed_owners_record_is_not_taken_again_while_its_other_calls_may_still_run(envelope: Envelope) -> None:
    # Step Functions stops the Parallel, but the Lambda invocations of its other branches run on
    # for up to LongestCallSeconds.
    owner = envelope.start("owner")
    taken = envelope.look(owner)
    longest = envelope.deployment(envelope.take).settings.longest_call_seconds

    saved_at = int(time.time())
    envelope.store(
        taken, owner, RecordingStepFunctions(history=BRANCH_STILL_RUNNING), failure={"Error": "Boom", "Cause": "why"}
    )
    retry = envelope.start("retry")

    item = envelope.item(taken["key"])
    assert item is not None
    quiet_until = int(item["leaseexpiry"]["N"])  # read, not recomputed: the save reads the clock a moment later
    assert quiet_until >= saved_at + 1 + longest
    assert envelope.look(retry, now=saved_at)["outcome"] == "BUSY"
    assert envelope.look(retry, now=quiet_until)["outcome"] == "BUSY"
    assert envelope.look(retry, now=quiet_until + 1)["outcome"] == "ACQUIRED"


def test_a_failed_owners_record_is_taken_again_at_once_when_none_of_its_calls_still_runs(envelope: Envelope) -> None:
    owner = envelope.start("owner")
    taken = envelope.look(owner)

    saved_at = int(time.time())
    envelope.store(
        taken, owner, RecordingStepFunctions(history=ALL_BRANCHES_ENDED), failure={"Error": "Boom", "Cause": "why"}
    )
    retry = envelope.start("retry")

    assert envelope.look(retry, now=saved_at)["outcome"] == "ACQUIRED"


def test_a_waiter_whose_policy_is_to_fail_reports_the_owners_failure(envelope: Envelope) -> None:
    owner = envelope.start("owner")
    taken = envelope.look(owner)
    waiter = envelope.start("waiter")
    first = envelope.look(waiter)
    envelope.store(taken, owner, RecordingStepFunctions(), failure={"Error": "Boom", "Cause": "why"})
    fail = dataclasses.replace(envelope.deployment(envelope.take).settings, waiter_failure_policy="Fail")

    # far enough in the future for any quiet time the failure holds the record for
    answer = envelope.look(
        waiter, now=int(time.time()) + 3600, config=fail, waiting={**first, "wakeUp": {"outcome": "FAILED"}}
    )

    assert answer == {
        "outcome": "FAILED",
        "key": taken["key"],
        "error": "Boom",
        "cause": "why",
        "runId": first["runId"],
    }


def test_an_express_workflow_polls_and_never_asks_step_functions(envelope: Envelope) -> None:
    express = dataclasses.replace(
        envelope.deployment(envelope.take).settings,
        workflow_type="EXPRESS",
        execution_timeout_seconds=300,
        lease_seconds=360,
        wait_timeout_seconds=240,
    )
    owner = envelope.start("owner")
    envelope.look(owner, config=express)
    checks = envelope.deployment(envelope.take).liveness.checks

    busy = envelope.look(envelope.start("waiter"), config=express)
    taken = envelope.look(
        envelope.start("late"), now=NOW + 361, config=express
    )  # the owner still runs: the lease alone decides

    assert (busy["outcome"], busy["waitBy"]) == ("BUSY", "POLLING")
    assert taken["outcome"] == "ACQUIRED"
    assert envelope.deployment(envelope.take).liveness.checks == checks


# --------------------------------------------------------------------------- an owner that ended
def _stopped(envelope: Envelope, execution: str) -> dict[str, Any]:
    """The "Execution Status Change" detail EventBridge sends when ``execution`` was stopped (input left out)."""
    envelope.sfn.stop_execution(executionArn=execution)
    described = envelope.sfn.describe_execution(executionArn=execution)
    return {
        "executionArn": execution,
        "stateMachineArn": envelope.machine,
        "status": "ABORTED",
        "startDate": _ms(described["startDate"].timestamp()),
        "stopDate": _ms(described["stopDate"].timestamp()),
        "inputDetails": {"included": False},
    }


def test_the_release_cuts_the_stopped_owners_lease_wakes_its_waiters_and_lets_a_waiter_take_over_once_its_calls_ended(
    envelope: Envelope,
) -> None:
    owner = envelope.start("owner")
    now = int(time.time())
    taken = envelope.look(owner, now=now)
    waiter = envelope.start("waiter")
    busy = envelope.look(waiter, now=now)
    envelope.register(busy, waiter, "t", now=now)
    detail = _stopped(envelope, owner)
    free_at = -(-detail["stopDate"] // 1000) + envelope.deployment(envelope.release).settings.longest_call_seconds
    sfn = RecordingStepFunctions()

    answer = envelope.release_ended(detail, sfn, now=now + 1)

    assert answer == {
        "released": True,
        "key": taken["key"],
        "freeAt": free_at,
        "status": "IN_PROGRESS",
        "wokenWaiters": 1,
    }
    assert sfn.sent == [("t", {"outcome": "RELEASED", "key": taken["key"]})]
    item = envelope.item(taken["key"])
    assert item is not None and (item["executionstatus"], item["leaseexpiry"]) == (
        {"S": "IN_PROGRESS"},
        {"N": str(free_at)},
    )
    woken = {**busy, "wakeUp": {"outcome": "RELEASED"}}
    early = envelope.look(waiter, now=free_at - 1, waiting=woken)
    assert early["outcome"] == "BUSY" and early["recheckAfterSeconds"] <= 2
    assert envelope.look(waiter, now=free_at + 1, waiting=woken)["outcome"] == "ACQUIRED"


def test_the_release_of_a_failed_owner_records_its_error(envelope: Envelope) -> None:
    owner = envelope.start("owner")
    taken = envelope.look(owner)
    detail = {
        "executionArn": owner,
        "stateMachineArn": envelope.machine,
        "status": "FAILED",
        "stopDate": _ms(NOW + 10),
        "input": json.dumps(INPUT),
        "inputDetails": {"included": True},
        "error": "States.DataLimitExceeded",
        "cause": "too big",
    }

    answer = envelope.release_ended(detail, RecordingStepFunctions(), now=NOW + 11)

    assert (answer["released"], answer["status"]) == (True, "FAILED")
    item = envelope.item(taken["key"])
    assert item is not None
    assert (item["executionstatus"], item["error"], item["cause"]) == (
        {"S": "FAILED"},
        {"S": "States.DataLimitExceeded"},
        {"S": "too big"},
    )


def test_the_release_leaves_a_saved_record_alone(envelope: Envelope) -> None:
    owner = envelope.start("owner")
    taken = envelope.look(owner)
    envelope.store(taken, owner, RecordingStepFunctions(), result=1)
    before = envelope.item(taken["key"])

    answer = envelope.release_ended(_stopped(envelope, owner), RecordingStepFunctions(), now=int(time.time()))

    assert answer["released"] is False
    assert envelope.item(taken["key"]) == before


def test_the_release_of_an_owner_whose_take_has_not_landed_holds_the_key_for_it_until_its_calls_ended(
    envelope: Envelope,
) -> None:
    owner = envelope.start("owner")
    detail = _stopped(envelope, owner)
    now = int(time.time())

    answer = envelope.release_ended(detail, RecordingStepFunctions(), now=now)

    assert answer["released"] is False
    before = envelope.item(answer["key"])
    with pytest.raises(Exception) as late_take:  # the take that was still in flight lands now
        envelope.look(owner, now=now + 1)
    assert type(late_take.value).__name__ == "IdempotencyExecutionEndedError"
    assert envelope.item(answer["key"]) == before
    assert envelope.look(envelope.start("next"), now=answer["freeAt"] + 1)["outcome"] == "ACQUIRED"


def test_the_release_ignores_executions_whose_input_has_no_key(envelope: Envelope) -> None:
    detail = {
        "executionArn": envelope.start("owner", [1, 2]),
        "stateMachineArn": envelope.machine,
        "status": "FAILED",
        "input": "[1, 2]",
        "inputDetails": {"included": True},
    }

    answer = envelope.release_ended(detail, RecordingStepFunctions())

    assert answer == {"released": False, "reason": "IdempotencyInputNotObjectError"}


# --------------------------------------------------------------------------- logs and metrics
def test_the_take_logs_the_key_and_never_the_payload(envelope: Envelope) -> None:
    envelope.take.logger.setLevel("INFO")
    logs = io.StringIO()
    envelope.take.logger.registered_handler.setStream(logs)

    context = LambdaContext("take", "arn:aws:lambda:us-east-1:123456789012:function:take", 256, 10)
    event = {
        "input": {"secret": "card-4111"},
        "executionId": envelope.start("owner"),
        "startTime": START,
        "runId": "r",
        "stateMachine": envelope.machine,
    }

    output = envelope.take.lambda_handler(event, context)

    logged = logs.getvalue()
    assert output["key"] in logged
    assert "card-4111" not in logged


def test_the_take_handler_logs_the_execution_as_correlation_id_and_emits_outcome_metrics(
    envelope: Envelope, capsys: pytest.CaptureFixture[str]
) -> None:
    take = envelope.take
    take.logger.setLevel("INFO")
    logs = io.StringIO()
    take.logger.registered_handler.setStream(logs)
    context = LambdaContext("take", "arn:aws:lambda:us-east-1:123456789012:function:take", 256, 10)
    owner, waiter = envelope.start("owner"), envelope.start("waiter")
    event = {
        "input": {"orderId": "m"},
        "executionId": owner,
        "startTime": START,
        "runId": "r",
        "stateMachine": envelope.machine,
    }

    take.lambda_handler(event, context)
    take.lambda_handler({**event, "executionId": waiter}, context)
    with pytest.raises(take.IdempotencyError):
        take.lambda_handler({**event, "input": [1]}, context)

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    # Powertools Metrics share one metric set per process, so functions of other tests still
    # running in background threads may flush ours or add theirs: check what was emitted in all.
    names = [
        metric["Name"]
        for blob in emitted
        for directive in blob["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    ]
    assert {"FreshRuns", "LockContention", "RejectedInputs"} <= set(names), emitted
    assert {directive["Namespace"] for blob in emitted for directive in blob["_aws"]["CloudWatchMetrics"]} == {
        "IdempotentWorkflow"
    }
    records = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert {
        record.get("correlation_id") for record in records if record["message"] == "Idempotency record looked at"
    } == {owner, waiter}


# --------------------------------------------------------------------------- child variant: the workflow it wraps
def _look_with_child(envelope: Envelope, child_machine: str) -> dict[str, Any]:
    execution = envelope.start(f"child-{child_machine[-6:]}")
    return envelope.look(execution, runId="run", childStateMachine=child_machine)


def test_an_express_child_workflow_is_refused_by_name_before_any_write(envelope: Envelope) -> None:
    express = envelope.sfn.create_state_machine(name="express-child", definition=PASS, roleArn=ROLE, type="EXPRESS")[
        "stateMachineArn"
    ]

    with pytest.raises(Exception) as refused:
        _look_with_child(envelope, express)

    assert type(refused.value).__name__ == "IdempotencyConfigurationError"
    assert express in str(refused.value) and "Express" in str(refused.value)
    assert envelope.dynamodb.scan(TableName=TABLE)["Items"] == []


class CountingStateMachineLooks:
    """moto's Step Functions, counting ``DescribeStateMachine`` calls."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self._moto = boto3.client("stepfunctions", region_name="us-east-1")

    def describe_state_machine(self, stateMachineArn: str) -> Any:  # noqa: N803 - boto3's name
        self.asked.append(stateMachineArn)
        return self._moto.describe_state_machine(stateMachineArn=stateMachineArn)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._moto, name)


def test_a_standard_child_workflow_is_asked_about_once_per_container(envelope: Envelope) -> None:
    standard = envelope.sfn.create_state_machine(name="standard-child", definition=PASS, roleArn=ROLE)[
        "stateMachineArn"
    ]
    counting = CountingStateMachineLooks()
    envelope.deployment(envelope.take).liveness._client = counting

    assert _look_with_child(envelope, standard)["outcome"] == "ACQUIRED"
    envelope.deployment(envelope.take).liveness.refuse_express_child(standard)

    assert counting.asked == [standard]


def test_the_owner_is_told_where_its_child_runs(envelope: Envelope) -> None:
    standard = envelope.sfn.create_state_machine(name="followed-child", definition=PASS, roleArn=ROLE)[
        "stateMachineArn"
    ]

    owner = _look_with_child(envelope, standard)

    # A redriven owner whose start of the child is refused looks the child up under this ARN: its record's.
    recorded = [item["childexecution"]["S"] for item in envelope.dynamodb.scan(TableName=TABLE)["Items"]]
    assert owner["outcome"] == "ACQUIRED"
    assert owner["childExecution"] in recorded
    assert owner["childExecution"].startswith(standard.replace(":stateMachine:", ":execution:") + ":")
    # Its own child: named after it, started by it, never redriven yet.
    execution = next(
        item["executionid"]["S"]
        for item in envelope.dynamodb.scan(TableName=TABLE)["Items"]
        if "childexecution" in item
    )
    assert (owner["childName"], owner["childStartedBy"], owner["childRedriveCount"]) == (
        execution.rsplit(":", 1)[1],
        execution,
        0,
    )


# --------------------------------------------------------------------------- importing a handler
ENVELOPE_FUNCTIONS = (
    "AcquireLockFunction",
    "WaitForOwnerFunction",
    "SaveOutcomeFunction",
    "ReleaseAbandonedRecordFunction",
    "FrontDoorFunction",
)


@pytest.mark.parametrize("logical_id", ENVELOPE_FUNCTIONS)
def test_a_handler_imports_without_its_environment_and_reads_it_on_its_first_call(
    logical_id: str, load_function: Any, template_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in template_environment:
        monkeypatch.delenv(name, raising=False)

    handler = load_function(logical_id)  # nothing read, no client made

    with pytest.raises(KeyError, match="IDEMPOTENCY_TABLE_NAME"):
        handler.deployment()
