"""Waking the waiters of a record (the layer's ``wakeup.py``): slots read from moto's DynamoDB, tokens sent to a
fake Step Functions.

Step Functions is a small fake here: ``SendTaskSuccess`` needs the tokens of real waiting
executions, and the subject is what ``wakeup.py`` does with the calls, their failures and their
concurrency.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from idempotency import record, store, vocabulary, waiter_slots, wakeup
from tests.unit.conftest import RECORDS_TABLE as TABLE
from tests.unit.test_front_door import as_step_functions

NOW = 1_800_000_000
KEY = "wf#" + "a" * 64
OWNER = "arn:aws:states:us-east-1:123456789012:execution:wf:owner"
RUN = "2026-11-23T00:00:00.123Z"


def _store(client: Any, table_name: str) -> Any:
    """The layer's store of ``table_name`` (the wake-ups read and clear its waiter slots)."""
    return store.RecordStore(client, table_name, record_ttl_seconds=1_000, lease_seconds=100)


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "SendTaskSuccess")


class FakeStepFunctions:
    """``send_task_success`` only: records each token's message and attempts; ``failures[token]`` lists errors to raise
    first."""

    def __init__(self, failures: dict[str, list[str]] | None = None) -> None:
        self.failures = {token: list(codes) for token, codes in (failures or {}).items()}
        self.sent: dict[str, Any] = {}
        self.attempts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        with self._lock:
            self.attempts[taskToken] += 1
            codes = self.failures.get(taskToken)
            if codes:
                raise _error(codes.pop(0))
            self.sent[taskToken] = json.loads(output)
        return {}


class AlwaysFailing(FakeStepFunctions):
    """Every send of ``token`` fails with ``code``, however often it is tried."""

    def __init__(self, token: str, code: str) -> None:
        super().__init__()
        self._token, self._code = token, code

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:  # noqa: N803
        if taskToken == self._token:
            with self._lock:
                self.attempts[taskToken] += 1
            raise _error(self._code)
        return super().send_task_success(taskToken, output)


def _write_slots(dynamodb: Any, tokens: dict[int, str]) -> None:
    """Waiter slots as ``register_waiter`` leaves them (slot number -> token), written in batches."""
    tag = record.owner_tag(record.Owner(OWNER, RUN))
    requests = [
        {
            "PutRequest": {
                "Item": {
                    "id": {"S": waiter_slots.waiter_slot_id(KEY, tag, number)},
                    waiter_slots.TASK_TOKEN: {"S": token},
                    waiter_slots.WAITING_ON: {"S": OWNER},
                    record.TTL: {"N": str(NOW + 1000)},
                }
            }
        }
        for number, token in tokens.items()
    ]
    for start in range(0, len(requests), 25):
        dynamodb.batch_write_item(RequestItems={TABLE: requests[start : start + 25]})


def _saved(waiter_count: int, status: str = "SUCCESS") -> Any:
    return record.SavedOutcome(
        key=KEY,
        status=status,
        owner_tag=record.owner_tag(record.Owner(OWNER, RUN)),
        waiter_count=waiter_count,
    )


def _slots_left(dynamodb: Any) -> list[str]:
    return [item["id"]["S"] for item in dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]]


MESSAGE = {"outcome": "COMPLETED", "key": KEY, "result": {"ok": "é"}}


def test_every_waiters_token_receives_the_message_and_the_slots_are_cleared(dynamodb: Any) -> None:
    _write_slots(dynamodb, {1: "token-1", 2: "token-2", 3: "token-3"})
    sfn = FakeStepFunctions()

    report = wakeup.wake_waiters(_store(dynamodb, TABLE), as_step_functions(sfn), _saved(3), MESSAGE)

    assert report == wakeup.WakeUps(woken=3, gone=0, failed=0)
    assert sfn.sent == {f"token-{number}": MESSAGE for number in (1, 2, 3)}
    assert _slots_left(dynamodb) == []


def test_a_record_without_waiters_costs_no_request(dynamodb: Any, dynamodb_calls: Any) -> None:
    sfn = FakeStepFunctions()

    assert wakeup.wake_waiters(_store(dynamodb, TABLE), as_step_functions(sfn), _saved(0), MESSAGE) == wakeup.WakeUps()
    assert dynamodb_calls == [] and sfn.attempts == Counter()


def test_only_the_slots_of_the_saving_owners_run_are_read(dynamodb: Any) -> None:
    _write_slots(dynamodb, {1: "token-1"})
    other_run = record.SavedOutcome(
        key=KEY,
        status="SUCCESS",
        owner_tag=record.owner_tag(record.Owner(OWNER, "another run")),
        waiter_count=1,
    )
    sfn = FakeStepFunctions()

    report = wakeup.wake_waiters(_store(dynamodb, TABLE), as_step_functions(sfn), other_run, MESSAGE)

    assert report == wakeup.WakeUps(failed=1)
    assert sfn.sent == {}
    assert len(_slots_left(dynamodb)) == 1  # another run's waiter is not woken, nor its slot cleared


def test_a_throttled_token_is_sent_again(dynamodb: Any) -> None:
    _write_slots(dynamodb, {1: "token-1", 2: "token-2"})
    sfn = FakeStepFunctions(failures={"token-2": ["ThrottlingException", "ThrottlingException"]})

    report = wakeup.wake_waiters(_store(dynamodb, TABLE), as_step_functions(sfn), _saved(2), MESSAGE)

    assert report == wakeup.WakeUps(woken=2)
    assert sfn.attempts == Counter({"token-1": 1, "token-2": 3})
    assert set(sfn.sent) == {"token-1", "token-2"}


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "AccessDeniedException"], ids=["throttled for good", "refused"]
)
def test_a_token_that_fails_for_good_is_counted_and_the_others_are_still_sent(dynamodb: Any, code: str) -> None:
    _write_slots(dynamodb, {1: "token-1", 2: "token-2", 3: "token-3"})
    sfn = AlwaysFailing("token-2", code)
    logged: list[str] = []
    logger = SimpleNamespace(warning=lambda message, **_: logged.append(message))

    report = wakeup.wake_waiters(_store(dynamodb, TABLE), as_step_functions(sfn), _saved(3), MESSAGE, logger)

    assert report == wakeup.WakeUps(woken=2, failed=1)
    assert set(sfn.sent) == {"token-1", "token-3"}
    assert sfn.attempts["token-2"] == (5 if code == "ThrottlingException" else 1)
    assert len(logged) == 1


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"])
def test_a_waiter_no_longer_waiting_counts_as_gone(dynamodb: Any, code: str) -> None:
    _write_slots(dynamodb, {1: "token-1", 2: "token-2"})
    sfn = AlwaysFailing("token-1", code)

    report = wakeup.wake_waiters(_store(dynamodb, TABLE), as_step_functions(sfn), _saved(2), MESSAGE)

    assert report == wakeup.WakeUps(woken=1, gone=1)
    assert sfn.attempts["token-1"] == 1
    assert _slots_left(dynamodb) == []


def test_a_slot_counted_but_never_written_is_read_again_briefly_then_counted_failed(
    dynamodb: Any, dynamodb_calls: Any
) -> None:
    _write_slots(dynamodb, {1: "token-1", 3: "token-3"})  # waiter 2 took its number and crashed
    sfn = FakeStepFunctions()

    report = wakeup.wake_waiters(_store(dynamodb, TABLE), as_step_functions(sfn), _saved(3), MESSAGE)

    assert report == wakeup.WakeUps(woken=2, failed=1)
    reads = [params for name, params in dynamodb_calls if name == "BatchGetItem"]
    assert len(reads) == 4  # one read, then three more of the missing slot only
    missing = waiter_slots.waiter_slot_id(KEY, record.owner_tag(record.Owner(OWNER, RUN)), 2)
    assert all(
        request[TABLE]["Keys"] == [{"id": {"S": missing}}]
        for request in (params["RequestItems"] for params in reads[1:])
    )
    assert all(params["RequestItems"][TABLE]["ConsistentRead"] is True for params in reads)


def test_a_slot_written_just_after_the_save_read_it_is_still_woken(dynamodb: Any) -> None:
    _write_slots(dynamodb, {1: "token-1"})
    writes_late: list[bool] = []

    def waiter_2_writes_its_slot(**_: Any) -> None:
        if not writes_late:
            writes_late.append(True)
            _write_slots(dynamodb, {2: "token-2"})

    dynamodb.meta.events.register("after-call.dynamodb.BatchGetItem", waiter_2_writes_its_slot)
    sfn = FakeStepFunctions()

    report = wakeup.wake_waiters(_store(dynamodb, TABLE), as_step_functions(sfn), _saved(2), MESSAGE)

    assert report == wakeup.WakeUps(woken=2)
    assert set(sfn.sent) == {"token-1", "token-2"}


def test_slots_that_cannot_be_read_count_as_failed_and_nothing_is_raised(dynamodb: Any) -> None:
    sfn = FakeStepFunctions()

    report = wakeup.wake_waiters(_store(dynamodb, "no-such-table"), as_step_functions(sfn), _saved(4), MESSAGE)

    assert report == wakeup.WakeUps(failed=4)
    assert sfn.attempts == Counter()


@pytest.mark.parametrize(
    ("characters", "replaced"),
    [(131_000, False), (131_100, True)],
    ids=["under 256 KiB in UTF-8", "over 256 KiB in UTF-8 though under in characters"],
)
def test_a_message_over_256_kib_in_utf8_becomes_record_changed(characters: int, replaced: bool) -> None:
    message = {"outcome": "COMPLETED", "key": KEY, "result": "é" * characters}  # two bytes each in UTF-8
    sfn = FakeStepFunctions()

    report = wakeup.send_to_tokens(as_step_functions(sfn), ["token-1"], message)

    assert report == wakeup.WakeUps(woken=1)
    assert sfn.sent["token-1"] == ({"outcome": vocabulary.Outcome.RECORD_CHANGED, "key": KEY} if replaced else message)


class ConcurrencyProbe(FakeStepFunctions):
    """Counts the sends in flight at once. The first send waits (up to a bound) until a second one is in flight, so
    sends made one at a time show a maximum of 1 (after that one wait) instead of passing by luck of timing."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.most_at_once = 0
        self._overlapped = threading.Event()

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            self.in_flight += 1
            self.most_at_once = max(self.most_at_once, self.in_flight)
            if self.in_flight > 1:
                self._overlapped.set()
        self._overlapped.wait(timeout=5)
        self._overlapped.set()  # one wait at most: sends made one at a time fail the test in seconds, not hours
        try:
            return super().send_task_success(taskToken, output)
        finally:
            with self._lock:
                self.in_flight -= 1


def test_five_hundred_tokens_are_sent_concurrently(dynamodb: Any) -> None:
    tokens = {number: f"token-{number}" for number in range(1, 501)}
    _write_slots(dynamodb, tokens)
    sfn = ConcurrencyProbe()

    report = wakeup.wake_waiters(_store(dynamodb, TABLE), as_step_functions(sfn), _saved(500), MESSAGE)

    assert report == wakeup.WakeUps(woken=500)
    assert set(sfn.sent) == set(tokens.values())
    assert sfn.attempts == Counter(dict.fromkeys(tokens.values(), 1))
    assert 1 < sfn.most_at_once <= wakeup.MAX_CONCURRENT_SENDS
    assert _slots_left(dynamodb) == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("SUCCESS", {"outcome": "COMPLETED", "key": KEY, "result": {"a": 1}}),
        # No error or cause: the waiter reads them from the record (they could be 32,768 characters).
        ("FAILED", {"outcome": "FAILED", "key": KEY}),
        ("IN_PROGRESS", {"outcome": "RELEASED", "key": KEY}),
    ],
)
def test_the_message_tells_the_waiters_the_result_or_to_look_again(status: str, expected: dict[str, Any]) -> None:
    saved = _saved(1, status)

    assert wakeup.wake_up_message(saved, result={"a": 1}) == expected


class LostReplies(FakeStepFunctions):
    """The first ``lost`` sends to ``token`` are delivered, but their reply is lost (a read timeout);
    a token already used answers ``InvalidToken``, as Step Functions does."""

    def __init__(self, token: str, lost: int) -> None:
        super().__init__()
        self._token, self._lost = token, lost

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:  # noqa: N803
        if taskToken == self._token:
            with self._lock:
                self.attempts[taskToken] += 1
                used = taskToken in self.sent
                self.sent[taskToken] = json.loads(output)
                lose = self.attempts[taskToken] <= self._lost
            if used:
                raise _error("InvalidToken")
            if lose:
                raise ReadTimeoutError(endpoint_url="https://states.us-east-1.amazonaws.com/")
            return {}
        return super().send_task_success(taskToken, output)


def test_a_wake_up_whose_reply_was_lost_is_sent_again_and_then_counts_as_gone(dynamodb: Any) -> None:
    _write_slots(dynamodb, {1: "token-1", 2: "token-2"})
    sfn = LostReplies("token-2", lost=1)

    report = wakeup.wake_waiters(_store(dynamodb, TABLE), as_step_functions(sfn), _saved(2), MESSAGE)

    # The lost send did wake its waiter: the repeat finds the token used, and nothing is raised.
    assert report == wakeup.WakeUps(woken=1, gone=1, failed=0)
    assert sfn.sent == {"token-1": MESSAGE, "token-2": MESSAGE}
    assert sfn.attempts["token-2"] == 2
    assert _slots_left(dynamodb) == []


class NoReplies(FakeStepFunctions):
    """Every send times out before its reply (Step Functions never answers)."""

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            self.attempts[taskToken] += 1
        raise ReadTimeoutError(endpoint_url="https://states.us-east-1.amazonaws.com/")


def test_a_wake_up_that_never_gets_a_reply_counts_as_failed_and_is_logged() -> None:
    sfn = NoReplies()
    logged: list[str] = []
    logger = SimpleNamespace(warning=lambda message, **_: logged.append(message))

    report = wakeup.send_to_tokens(as_step_functions(sfn), ["token-1"], MESSAGE, logger)

    assert report == wakeup.WakeUps(failed=1)
    assert sfn.attempts["token-1"] == 5  # as often as a throttled send
    assert logged == ["A waiter could not be woken: it will look again on its own"]


class SlotsNotCleared:
    """The DynamoDB client, but every ``BatchWriteItem`` (the clearing of slots) is refused."""

    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb

    def batch_write_item(self, **_: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "denied"}}, "BatchWriteItem")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dynamodb, name)


def test_slots_that_cannot_be_cleared_are_left_to_expire_and_the_waiters_are_still_woken(dynamodb: Any) -> None:
    _write_slots(dynamodb, {1: "token-1", 2: "token-2"})
    sfn = FakeStepFunctions()
    logged: list[str] = []
    logger = SimpleNamespace(warning=lambda message, **_: logged.append(message))

    report = wakeup.wake_waiters(
        _store(SlotsNotCleared(dynamodb), TABLE), as_step_functions(sfn), _saved(2), MESSAGE, logger
    )

    assert report == wakeup.WakeUps(woken=2)
    assert sfn.sent == {"token-1": MESSAGE, "token-2": MESSAGE}
    assert len(_slots_left(dynamodb)) == 2  # they expire with the record's ttl
    assert logged == ["Waiter slots could not be cleared"]
