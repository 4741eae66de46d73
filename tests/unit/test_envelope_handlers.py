"""The envelope's handlers as plain functions, on moto's DynamoDB and Step Functions."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulator.adapters import LambdaContext, load_module
from emulator.template import Template

TABLE = "records"
NOW = 1_800_000_000
OWNER = "arn:aws:states:us-east-1:123456789012:execution:wf:owner"
WAITER = "arn:aws:states:us-east-1:123456789012:execution:wf:waiter"
ENVIRONMENT = {
    "IDEMPOTENCY_TABLE_NAME": TABLE,
    "RECORD_TTL_SECONDS": "100",
    "LOCK_LEASE_SECONDS": "10",
    "POLL_INTERVAL_SECONDS": "10",
    "WAIT_TIMEOUT_SECONDS": "30",
    "WAITERS_ON_FAILURE": "TakeOver",
    "WORKFLOW_TYPE": "STANDARD",
    "EXECUTION_TIMEOUT_SECONDS": "1800",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_NAMESPACE": "IdempotentWorkflow",
}


class RecordingStepFunctions:
    """Stands in for the Step Functions client: records each task result sent."""

    def __init__(self, gone: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.sent: list[tuple[str, Any]] = []
        self._gone = gone

    def send_task_success(self, taskToken: str, output: str) -> None:  # noqa: N803 - boto3's names
        from botocore.exceptions import ClientError

        if taskToken in self._gone:
            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "gone"}}, "SendTaskSuccess")
        self.sent.append((taskToken, json.loads(output)))

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803
        return {"input": json.dumps({"orderId": executionArn.rsplit(":", 1)[1]})}


@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    """Each envelope function's app module, imported as Lambda would, with a table in moto."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    template = Template.load()
    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield {
            logical_id: load_module(template.import_roots(logical_id), "app")
            for logical_id in ("AcquireLockFunction", "WaitForOwnerFunction", "SaveOutcomeFunction", "ReleaseAbandonedRecordFunction")
        }


def _take(app: ModuleType, execution_id: str, now: int = NOW, **event: Any) -> dict[str, Any]:
    return app.take_record(
        {"input": {"orderId": "1"}, "executionId": execution_id, "startTime": "2026-11-23T00:00:00Z", "runId": "run-1", **event},
        app.dynamodb,
        app.settings,
        now=now,
    )


def test_a_waiter_looks_again_after_the_poll_interval_doubled_each_time_until_the_bound(handlers: dict[str, ModuleType]) -> None:
    take = handlers["AcquireLockFunction"]
    assert _take(take, OWNER)["outcome"] == "ACQUIRED"

    first = _take(take, WAITER)
    second = _take(take, WAITER, waiting={**first, "wakeUp": {"Error": "States.Timeout"}})
    woken = _take(take, WAITER, waiting={**second, "wakeUp": {"outcome": "RECORD_CHANGED"}})

    assert first == {
        "outcome": "BUSY", "key": first["key"], "heldBy": OWNER, "runId": "run-1",
        "waitBy": "TASK_TOKEN", "rechecks": 0, "waitedSeconds": 0, "recheckAfterSeconds": 10,
    }
    assert (second["rechecks"], second["waitedSeconds"], second["recheckAfterSeconds"]) == (1, 10, 20)
    # A wake-up that was news (not a timeout) does not count against the bound.
    assert (woken["rechecks"], woken["waitedSeconds"], woken["recheckAfterSeconds"]) == (1, 10, 20)
    with pytest.raises(take.IdempotencyWaitTimeoutError, match="after waiting 30s"):
        _take(take, WAITER, waiting={**second, "wakeUp": {"Error": "States.Timeout"}})


def test_take_record_logs_the_key_and_never_the_payload(handlers: dict[str, ModuleType]) -> None:
    take = handlers["AcquireLockFunction"]
    take.logger.setLevel("INFO")
    logs = io.StringIO()
    take.logger.registered_handler.setStream(logs)
    output = take.take_record(
        {"input": {"secret": "card-4111"}, "executionId": OWNER, "startTime": "2026-11-23T00:00:00Z", "runId": "run-1"},
        take.dynamodb,
        take.settings,
        now=NOW,
    )

    logged = logs.getvalue()
    assert output["key"] in logged
    assert "card-4111" not in logged


def test_a_waiter_registers_its_token_or_wakes_itself_when_the_record_changed(handlers: dict[str, ModuleType]) -> None:
    take, wait = handlers["AcquireLockFunction"], handlers["WaitForOwnerFunction"]
    key = _take(take, OWNER)["key"]
    sfn = RecordingStepFunctions()
    event = {"taskToken": "token-1", "key": key, "heldBy": OWNER, "executionId": WAITER}

    registered = wait.wait_for_owner(event, wait.dynamodb, sfn, wait.settings, now=NOW)
    stale = wait.wait_for_owner({**event, "heldBy": "someone-else"}, wait.dynamodb, sfn, wait.settings, now=NOW)

    assert registered == {"registered": True} and stale == {"registered": False}
    assert sfn.sent == [("token-1", {"outcome": "RECORD_CHANGED", "key": key})]


def test_the_save_wakes_every_waiter_with_the_result_and_skips_those_gone(handlers: dict[str, ModuleType]) -> None:
    take, wait, save = handlers["AcquireLockFunction"], handlers["WaitForOwnerFunction"], handlers["SaveOutcomeFunction"]
    key = _take(take, OWNER)["key"]
    for number in (1, 2, 3):
        event = {"taskToken": f"token-{number}", "key": key, "heldBy": OWNER, "executionId": f"{WAITER}-{number}"}
        wait.wait_for_owner(event, wait.dynamodb, RecordingStepFunctions(), wait.settings, now=NOW)
    sfn = RecordingStepFunctions(gone={"token-2"})

    answer = save.save_and_wake({"key": key, "executionId": OWNER, "runId": "run-1", "result": {"ok": 1}}, save.dynamodb, sfn, save.settings)

    assert answer == {"status": "SUCCESS", "wokenWaiters": 2}
    message = {"outcome": "COMPLETED", "key": key, "result": {"ok": 1}}
    assert sorted(sfn.sent) == [("token-1", message), ("token-3", message)]


def test_a_failure_is_saved_and_sent_to_the_waiters(handlers: dict[str, ModuleType]) -> None:
    take, wait, save = handlers["AcquireLockFunction"], handlers["WaitForOwnerFunction"], handlers["SaveOutcomeFunction"]
    key = _take(take, OWNER)["key"]
    wait.wait_for_owner(
        {"taskToken": "t", "key": key, "heldBy": OWNER, "executionId": WAITER}, wait.dynamodb, RecordingStepFunctions(), wait.settings, now=NOW
    )
    sfn = RecordingStepFunctions()

    answer = save.save_and_wake(
        {"key": key, "executionId": OWNER, "runId": "run-1", "failure": {"Error": "Boom", "Cause": "why"}}, save.dynamodb, sfn, save.settings
    )

    assert answer["status"] == "FAILED"
    assert sfn.sent == [("t", {"outcome": "FAILED", "key": key, "error": "Boom", "cause": "why"})]


def test_the_release_frees_the_record_of_the_execution_that_ended_and_wakes_its_waiters(handlers: dict[str, ModuleType]) -> None:
    take, wait, release = handlers["AcquireLockFunction"], handlers["WaitForOwnerFunction"], handlers["ReleaseAbandonedRecordFunction"]
    owner = OWNER[: OWNER.rindex(":") + 1] + "1"  # describe_execution's stand-in gives input {"orderId": "1"}
    key = _take(take, owner)["key"]
    wait.wait_for_owner(
        {"taskToken": "t", "key": key, "heldBy": owner, "executionId": WAITER}, wait.dynamodb, RecordingStepFunctions(), wait.settings, now=NOW
    )
    sfn = RecordingStepFunctions()
    detail = {"executionArn": owner, "status": "ABORTED", "inputDetails": {"included": False}}

    answer = release.release_abandoned_record(detail, release.dynamodb, sfn, release.settings)
    again = release.release_abandoned_record(detail, release.dynamodb, sfn, release.settings)

    assert answer == {"released": True, "key": key, "wokenWaiters": 1}
    assert again == {"released": False, "key": key}
    assert sfn.sent == [("t", {"outcome": "RELEASED", "key": key})]


def test_the_release_ignores_executions_whose_input_has_no_key(handlers: dict[str, ModuleType]) -> None:
    release = handlers["ReleaseAbandonedRecordFunction"]
    detail = {"executionArn": OWNER, "status": "FAILED", "input": "[1, 2]", "inputDetails": {"included": True}}

    answer = release.release_abandoned_record(detail, release.dynamodb, RecordingStepFunctions(), release.settings)

    assert answer == {"released": False, "reason": "IdempotencyInputNotObjectError"}


def test_the_take_handler_logs_the_execution_as_correlation_id_and_emits_outcome_metrics(
    handlers: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    take = handlers["AcquireLockFunction"]
    take.logger.setLevel("INFO")
    logs = io.StringIO()
    take.logger.registered_handler.setStream(logs)
    context = LambdaContext("take", "arn:aws:lambda:us-east-1:123456789012:function:take", 256, 10)
    event = {"input": {"orderId": "m"}, "executionId": OWNER, "startTime": "2026-11-23T00:00:00Z", "runId": "r"}

    take.lambda_handler(event, context)
    take.lambda_handler({**event, "executionId": WAITER}, context)
    with pytest.raises(take.IdempotencyError):
        take.lambda_handler({**event, "input": [1]}, context)

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    # Powertools Metrics share one metric set per process, so functions of other tests still
    # running in background threads may flush ours or add theirs: check what was emitted in all.
    names = [
        metric["Name"] for blob in emitted for directive in blob["_aws"]["CloudWatchMetrics"] for metric in directive["Metrics"]
    ]
    assert {"FreshRuns", "LockContention", "RejectedInputs"} <= set(names), emitted
    assert {directive["Namespace"] for blob in emitted for directive in blob["_aws"]["CloudWatchMetrics"]} == {"IdempotentWorkflow"}
    records = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert {record.get("correlation_id") for record in records if record["message"] == "Idempotency record looked at"} == {OWNER, WAITER}
