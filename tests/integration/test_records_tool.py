"""scripts/records.py against the emulator: list, show, release and delete real records."""

from __future__ import annotations

import importlib.util
import io
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from emulator import OfflineStack
from emulator.template import PROJECT_ROOT
from tests.integration.support import compute_idempotency_key, held_owner, start_registered_waiter

pytestmark = pytest.mark.offline_only(reason="holds Lambda calls with an interceptor")


def _load_records_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("records_tool", PROJECT_ROOT / "scripts" / "records.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


records = _load_records_tool()


def tool(stack: OfflineStack, *arguments: str, answer: str | None = None) -> tuple[int, str]:
    """Run the tool on the stack's table; its exit status and what it printed. ``answer`` answers a prompt."""
    out = io.StringIO()

    def ask(question: str) -> str:
        if answer is None:
            pytest.fail(f"the tool asked {question!r}")
        out.write(question)
        return answer

    status = records.main(["--table", stack.table_name, *arguments], out=out, ask=ask)
    return status, out.getvalue()


def put_record(stack: OfflineStack, status: str, ttl: int, owner: str = "arn:aws:states:us-east-1:123456789012:execution:x:by-hand") -> str:
    key = uuid.uuid4().hex * 2  # as long as a SHA-256 key; its own
    stack.dynamodb.put_item(
        TableName=stack.table_name,
        Item={
            "id": {"S": key},
            "executionstatus": {"S": status},
            "executionid": {"S": owner},
            "starttime": {"S": "2026-01-01T00:00:00Z"},
            "ttl": {"N": str(ttl)},
        },
    )
    return key


def row_of(listing: str, key: str) -> list[str]:
    (line,) = [line for line in listing.splitlines() if line.startswith(key)]
    return line.split()


def utc_date(seconds: Any) -> str:
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_list_shows_key_status_owner_ttl_as_a_date_and_whether_expired(stack: OfflineStack, unique: str) -> None:
    run = stack.run({"orderId": unique, "forceFailure": False})
    live_key = compute_idempotency_key({"orderId": unique, "forceFailure": False})
    live = stack.get_record(live_key)
    expired_ttl = int(time.time()) - 60
    expired_key = put_record(stack, "FAILED", ttl=expired_ttl)

    status, listing = tool(stack, "list")

    assert status == 0
    assert listing.splitlines()[0].split() == ["KEY", "STATUS", "OWNER", "TTL", "(UTC)", "EXPIRED"]
    assert live is not None
    assert row_of(listing, live_key) == [live_key, "SUCCESS", run.execution_arn, utc_date(live["ttl"]), "no"]
    assert row_of(listing, expired_key) == [expired_key, "FAILED", "arn:aws:states:us-east-1:123456789012:execution:x:by-hand", utc_date(expired_ttl), "yes"]


def test_list_filters_by_status_and_speaks_json(stack: OfflineStack, unique: str) -> None:
    stack.run({"orderId": unique, "forceFailure": True})
    failed_key = compute_idempotency_key({"orderId": unique, "forceFailure": True})

    status, printed = tool(stack, "list", "--status", "FAILED", "--json")

    listed = json.loads(printed)
    assert status == 0
    assert {item["executionstatus"] for item in listed} == {"FAILED"}
    (failed,) = [item for item in listed if item["id"] == failed_key]
    assert failed == json.loads(json.dumps(stack.get_record(failed_key), default=int))


def test_show_finds_a_record_by_key_or_by_an_input_as_text_or_file(stack: OfflineStack, unique: str, tmp_path: Path) -> None:
    execution_input = {"orderId": unique, "forceFailure": False, "nested": {"a": 1, "b": 2}}
    run = stack.run(execution_input)
    key = compute_idempotency_key(execution_input)
    input_file = tmp_path / "input.json"
    input_file.write_text(json.dumps(execution_input, indent=4), encoding="utf-8")

    # Same JSON value in another key order and spacing: the workflow's key, computed by the layer.
    by_text = tool(stack, "show", "--input", f'{{"nested": {{"b": 2, "a": 1}}, "forceFailure": false, "orderId": "{unique}"}}')
    by_file = tool(stack, "show", "--input", str(input_file))
    by_key = tool(stack, "show", key)
    as_json = tool(stack, "show", key, "--json")

    for status, printed in (by_text, by_file, by_key):
        assert status == 0
        assert run.execution_arn in printed and "SUCCESS" in printed
        assert '"randomFailureFunc": "All good"' in printed  # the stored result, as indented JSON
    assert f"key {key} (computed from the input)" in by_text[1]
    assert json.loads(as_json[1]) == json.loads(json.dumps(stack.get_record(key), default=int))


def test_show_says_when_there_is_no_record_or_the_input_has_no_key(stack: OfflineStack, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tool(stack, "show", "0" * 64)
    not_an_object = tool(stack, "show", "--input", "[1, 2]")

    assert missing[0] == 1 and "No record for key" in missing[1]
    assert not_an_object[0] == 2
    assert "IdempotencyInputNotObjectError" in capsys.readouterr().err


def test_release_frees_a_record_only_while_the_owner_given_still_holds_it(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    with held_owner(stack, execution_input) as (owner_arn, gate):

        refused = tool(stack, "release", key, "--owner", owner_arn + "-someone-else")
        still_held = stack.get_record(key)
        released = tool(stack, "release", "--input", json.dumps(execution_input), "--owner", owner_arn)
        after_release = stack.get_record(key)
        gate.open()
        owner = stack.wait_for(owner_arn)
    next_execution = stack.run(execution_input)

    assert refused[0] == 1 and f"held by {owner_arn}, not by {owner_arn}-someone-else" in refused[1]
    assert still_held is not None and (still_held["executionstatus"], still_held["executionid"]) == ("IN_PROGRESS", owner_arn)
    assert released[0] == 0 and f"Released {key}" in released[1]
    assert after_release is None
    # The released owner cannot save; the next execution takes the key and runs the steps.
    assert owner.error == "IdempotencyRecordLostError"
    assert next_execution.status == "SUCCEEDED" and "Run the business steps" in next_execution.states_entered
    record = stack.get_record(key)
    assert record is not None and record["executionid"] == next_execution.execution_arn


def test_show_prints_the_waiters_as_json_and_release_wakes_them(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    with held_owner(stack, execution_input) as (owner_arn, gate):
        waiter_arn = start_registered_waiter(stack, execution_input)
        shown = tool(stack, "show", key)
        waiters = (stack.get_record(key) or {}).get("waiters")
        released = tool(stack, "release", key, "--owner", owner_arn)
        gate.open()
        waiter = stack.wait_for(waiter_arn)

    assert shown[0] == 0 and isinstance(waiters, dict) and list(waiters) == [waiter_arn]
    printed_waiters = shown[1].split("waiters", 1)[1].split("\n" + "ttl", 1)[0]
    assert json.loads(printed_waiters) == waiters  # JSON, not a Python repr
    assert released[0] == 0 and "1 waiting execution(s) woken" in released[1]
    # Woken, the waiter looked again, took the free record and ran the steps.
    assert waiter.status == "SUCCEEDED" and "Run the business steps" in waiter.states_entered
    record = stack.get_record(key)
    assert record is not None and record["executionid"] == waiter_arn


def test_release_refuses_a_finished_or_absent_record(stack: OfflineStack, unique: str) -> None:
    run = stack.run({"orderId": unique, "forceFailure": False})
    key = compute_idempotency_key({"orderId": unique, "forceFailure": False})

    finished = tool(stack, "release", key, "--owner", run.execution_arn)
    absent = tool(stack, "release", "f" * 64, "--owner", run.execution_arn)

    assert finished[0] == 1 and "the record is SUCCESS, not IN_PROGRESS" in finished[1]
    record = stack.get_record(key)
    assert record is not None and record["executionstatus"] == "SUCCESS"
    assert absent[0] == 1 and "no record with this key" in absent[1]


def test_delete_asks_first_unless_told_yes(stack: OfflineStack) -> None:
    kept_then_deleted = put_record(stack, "FAILED", ttl=int(time.time()) + 600)
    deleted_at_once = put_record(stack, "SUCCESS", ttl=int(time.time()) + 600)

    declined = tool(stack, "delete", kept_then_deleted, answer="n")
    kept = stack.get_record(kept_then_deleted)
    confirmed = tool(stack, "delete", kept_then_deleted, answer="y")
    without_asking = tool(stack, "delete", deleted_at_once, "--yes")
    again = tool(stack, "delete", deleted_at_once, "--yes")

    assert declined[0] == 1 and f"Delete record {kept_then_deleted} (FAILED" in declined[1] and "Not deleted" in declined[1]
    assert kept is not None
    assert confirmed[0] == 0 and stack.get_record(kept_then_deleted) is None
    assert without_asking[0] == 0 and "it was SUCCESS" in without_asking[1]
    assert stack.get_record(deleted_at_once) is None
    assert again[0] == 1 and "No record for key" in again[1]
