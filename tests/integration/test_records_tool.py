"""scripts/records.py against the emulator: list, show, release and delete real records (record v2)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
import time
import uuid
import warnings
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from emulator import OfflineStack
from emulator.adapters import Gate
from emulator.stack import REGION
from idempotency.key import compute_idempotency_key
from tests.integration.support import QUIET, held_owner, start_registered_waiter, wait_until
from tools.template import PROJECT_ROOT

pytestmark = pytest.mark.offline_only(reason="holds Lambda calls with an interceptor")

OTHER_OWNER = "arn:aws:states:us-east-1:123456789012:execution:x:by-hand"


def _load_records_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("records_tool", PROJECT_ROOT / "scripts" / "records.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


records = _load_records_tool()


def run_tool(
    target: list[str], *arguments: str, answer: str | None = None, interactive: bool = False
) -> tuple[int, str, str]:
    """Run the tool; its exit status, what it printed (results), and its notes. ``answer`` answers a prompt."""
    out, err = io.StringIO(), io.StringIO()

    def ask(question: str) -> str:
        if answer is None:
            pytest.fail(f"the tool asked {question!r}")
        err.write(question)
        return answer

    status = records.main([*target, *arguments], out=out, ask=ask, err=err, interactive=interactive)
    return status, out.getvalue(), err.getvalue()


def tool(
    stack: OfflineStack, *arguments: str, answer: str | None = None, interactive: bool = False
) -> tuple[int, str, str]:
    """The tool on the stack's table (``--table``: the template's default key rules)."""
    return run_tool(["--table", stack.table_name], *arguments, answer=answer, interactive=interactive)


def machine_name(stack: OfflineStack) -> str:
    return stack.state_machine_arn.rsplit(":", 1)[-1]


def put_record(
    stack: OfflineStack, status: str, ttl: int, *, record_id: str | None = None, owner: str = OTHER_OWNER
) -> str:
    record_id = record_id or f"{machine_name(stack)}#{uuid.uuid4().hex * 2}"
    stack.dynamodb.put_item(
        TableName=stack.table_name,
        Item={
            "id": {"S": record_id},
            "executionstatus": {"S": status},
            "executionid": {"S": owner},
            "runid": {"S": ""},
            "starttime": {"S": "2026-01-01T00:00:00Z"},
            "ttl": {"N": str(ttl)},
        },
    )
    return record_id


def put_held_record(stack: OfflineStack, record_id: str, owner: str, *, waiters: int = 0) -> dict[str, Any]:
    """An IN_PROGRESS record held by ``owner`` under a 15-minute lease, with ``waiters`` slots written as waiters write
    them."""
    now = int(time.time())
    item = {
        "id": {"S": record_id},
        "executionstatus": {"S": "IN_PROGRESS"},
        "executionid": {"S": owner},
        "runid": {"S": ""},
        "starttime": {"S": "2026-01-01T00:00:00Z"},
        "ttl": {"N": str(now + 3600)},
        "leaseexpiry": {"N": str(now + 900)},
        "waiters": {"N": str(waiters)},
    }
    stack.dynamodb.put_item(TableName=stack.table_name, Item=item)
    tag = records.record.owner_tag(records.record.Owner(owner, ""))
    for number in range(1, waiters + 1):
        stack.dynamodb.put_item(
            TableName=stack.table_name,
            Item={
                "id": {"S": records.waiter_slots.waiter_slot_id(record_id, tag, number)},
                "tasktoken": {"S": f"token-{number}-" + "x" * number},
                "waitingon": {"S": owner},
                "ttl": {"N": str(now + 3600)},
            },
        )
    return item


def gone_owner(stack: OfflineStack, unique: str) -> str:
    """The ARN of an owner Step Functions does not know (it crashed long ago): nothing of it can still run."""
    return f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:crashed-{unique}"


def waiter_with_slot(stack: OfflineStack, execution_input: Any, record_id: str) -> tuple[str, list[str]]:
    """Start a waiter and return once its task token is in a slot: its ARN and the record's slots then."""
    waiter_arn = start_registered_waiter(stack, execution_input)
    wait_until(lambda: bool(slot_ids(stack, record_id)), message="the waiter's slot")
    return waiter_arn, slot_ids(stack, record_id)


def row_of(listing: str, record_id: str) -> list[str]:
    (line,) = [line for line in listing.splitlines() if line.startswith(record_id + " ")]
    return line.split()


def utc_date(seconds: Any) -> str:
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slot_ids(stack: OfflineStack, record_id: str) -> list[str]:
    return sorted(str(item["id"]) for item in stack.records() if str(item["id"]).startswith(record_id + "#waiter#"))


# --------------------------------------------------------------------------- list
def test_list_shows_records_not_waiter_slots_with_status_owner_ttl_lease_and_slots(
    stack: OfflineStack, unique: str
) -> None:
    done = stack.run({"orderId": unique, "forceFailure": False})
    done_id = stack.record_id(compute_idempotency_key({"orderId": unique, "forceFailure": False}))
    expired_ttl = int(time.time()) - 60
    expired_id = put_record(stack, "FAILED", ttl=expired_ttl)
    held_id = stack.record_id(compute_idempotency_key({"orderId": unique, "held": True}))
    held = put_held_record(stack, held_id, OTHER_OWNER, waiters=2)

    status, listing, notes = tool(stack, "list")
    in_progress = tool(stack, "list", "--status", "IN_PROGRESS", "--json")

    done_record = stack.get_record(done_id)
    assert status == 0 and "record(s) in" in notes
    assert listing.splitlines()[0].split() == ["ID", "STATUS", "OWNER", "TTL(UTC)", "LEASE(UTC)", "EXPIRED", "SLOTS"]
    assert "#waiter#" not in listing  # the slots are counted on their record's line, never listed
    assert done_record is not None
    assert row_of(listing, done_id) == [
        done_id,
        "SUCCESS",
        done.execution_arn,
        utc_date(done_record["ttl"]),
        "-",
        "no",
        "0",
    ]
    assert row_of(listing, expired_id) == [expired_id, "FAILED", OTHER_OWNER, utc_date(expired_ttl), "-", "yes", "0"]
    lease = utc_date(held["leaseexpiry"]["N"])
    assert row_of(listing, held_id) == [
        held_id,
        "IN_PROGRESS",
        OTHER_OWNER,
        utc_date(held["ttl"]["N"]),
        lease,
        "no",
        "2",
    ]
    listed = json.loads(in_progress[1])
    assert in_progress[0] == 0 and {item["executionstatus"] for item in listed} == {"IN_PROGRESS"}
    assert held_id in {item["id"] for item in listed} and not any("#waiter#" in item["id"] for item in listed)


def test_list_unscoped_finds_the_records_written_before_record_v2(stack: OfflineStack) -> None:
    old_key = uuid.uuid4().hex * 2  # an id that is a bare key: no scope
    put_record(stack, "SUCCESS", ttl=int(time.time()) + 600, record_id=old_key)
    scoped = put_record(stack, "SUCCESS", ttl=int(time.time()) + 600)

    status, printed, _ = tool(stack, "list", "--unscoped", "--json")

    listed = {item["id"] for item in json.loads(printed)}
    assert status == 0 and old_key in listed and scoped not in listed


# --------------------------------------------------------------------------- show
def test_show_finds_a_record_by_id_or_by_input_under_the_state_machine_scope(
    stack: OfflineStack, unique: str, tmp_path: Path
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False, "nested": {"a": 1, "b": 2}}
    run = stack.run(execution_input)
    record_id = f"{machine_name(stack)}#{compute_idempotency_key(execution_input)}"
    input_file = tmp_path / "input.json"
    input_file.write_text(json.dumps(execution_input, indent=4), encoding="utf-8")
    # Same JSON value in another key order and spacing: the workflow's id, computed by the layer.
    same_input = f'{{"nested": {{"b": 2, "a": 1}}, "forceFailure": false, "orderId": "{unique}"}}'

    by_name = tool(stack, "show", "--input", same_input, "--state-machine", machine_name(stack))
    by_arn = tool(stack, "show", "--input", str(input_file), "--state-machine", stack.state_machine_arn)
    by_id = tool(stack, "show", record_id)
    other_scope = tool(stack, "show", "--input", same_input, "--scope", "another-workflow")
    no_scope = tool(stack, "show", "--input", same_input)

    stored = json.loads(json.dumps(stack.get_record(record_id), default=int))
    for status, printed, _ in (by_name, by_arn, by_id):
        shown = json.loads(printed)  # the whole output is JSON
        assert status == 0
        assert shown["record"] == stored
        assert shown["record"]["executionid"] == run.execution_arn and shown["record"]["executionstatus"] == "SUCCESS"
        assert "payloadhash" not in shown["record"] and shown["waiterslots"] == []  # validation is off by default
        assert (
            shown["dates"]["ttl"] == utc_date(stored["ttl"])
            and shown["expired"] is False
            and shown["unscoped"] is False
        )
    assert f"id {record_id} (identified from the input under scope {machine_name(stack)})" in by_name[2]
    assert other_scope[0] == 1 and "No record another-workflow#" in other_scope[2]
    assert no_scope[0] == 2 and "--state-machine" in no_scope[2]


def test_show_prints_the_waiter_slots_without_their_tokens(stack: OfflineStack, unique: str) -> None:
    record_id = stack.record_id(compute_idempotency_key({"orderId": unique}))
    put_held_record(stack, record_id, OTHER_OWNER, waiters=2)
    slots = {str(item["id"]): item for item in stack.records() if str(item["id"]).startswith(record_id + "#waiter#")}

    status, printed, _ = tool(stack, "show", record_id)

    shown = json.loads(printed)
    assert status == 0 and shown["record"]["waiters"] == 2 and shown["record"]["executionid"] == OTHER_OWNER
    assert shown["leasepassed"] is False and set(shown["dates"]) == {"ttl", "leaseexpiry"}
    assert sorted(slot["id"] for slot in shown["waiterslots"]) == sorted(slots) and len(slots) == 2
    for slot in shown["waiterslots"]:
        assert slot["waitingon"] == OTHER_OWNER and slot["tokenlength"] == len(slots[slot["id"]]["tasktoken"])
    assert "tasktoken" not in printed and all(str(slot["tasktoken"]) not in printed for slot in slots.values())


def test_show_says_when_there_is_no_record_or_the_input_has_no_key(stack: OfflineStack) -> None:
    missing = tool(stack, "show", f"{machine_name(stack)}#{'0' * 64}")
    not_an_object = tool(stack, "show", "--input", "[1, 2]", "--state-machine", machine_name(stack))

    assert missing[0] == 1 and "No record" in missing[2] and missing[1] == ""
    assert not_an_object[0] == 2 and "IdempotencyInputNotObjectError" in not_an_object[2]


def _register_cloudformation_stack(stack: OfflineStack) -> None:
    """The stack's outputs and parameters, as CloudFormation describes a deployed stack (the local endpoint does this
    too)."""
    body = {
        "Parameters": {name: {"Type": "String"} for name in stack.parameters},
        "Resources": {"Outputs": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {name: {"Value": value} for name, value in stack.outputs.items()},
    }
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*WaitConditionHandle.*")
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=stack.stack_name,
            TemplateBody=json.dumps(body),
            Parameters=[{"ParameterKey": name, "ParameterValue": value} for name, value in stack.parameters.items()],
        )


def test_show_by_input_uses_the_scope_and_key_rules_of_the_stack(unique: str) -> None:
    # A stack of its own (entered in the test: two stacks alive at once would share the emulator's adapters).
    parameters = {
        "IdempotencyScope": "orders-ops",
        "IdempotencyKeyJmespath": "orderId",
        "PayloadValidationJmespath": "@",
    }
    with OfflineStack(parameters, environment=QUIET) as scoped_stack:
        _register_cloudformation_stack(scoped_stack)
        run = scoped_stack.run({"orderId": unique, "forceFailure": False})
        target = ["--stack-name", scoped_stack.stack_name, "--region", REGION]
        # Another field differs: the key expression (orderId) still finds the record; validation tells the difference.
        status, printed, notes = run_tool(
            target, "show", "--input", json.dumps({"orderId": unique, "forceFailure": True})
        )

    shown = json.loads(printed)
    assert status == 0 and shown["record"]["executionid"] == run.execution_arn
    assert shown["record"]["id"] == "orders-ops#" + hashlib.sha256(json.dumps(unique).encode()).hexdigest()
    assert "under scope orders-ops" in notes
    assert "IdempotencyPayloadMismatchError" in notes


# --------------------------------------------------------------------------- release
def test_release_asks_first_and_refuses_without_a_terminal_or_a_record_in_progress(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    record_id = stack.record_id(compute_idempotency_key(execution_input))
    with held_owner(stack, execution_input) as (owner_arn, _gate):
        no_terminal = tool(stack, "release", record_id)
        declined = tool(stack, "release", record_id, answer="n", interactive=True)
        other_owner = tool(stack, "release", record_id, "--owner", OTHER_OWNER, "--yes")
        still_held = stack.get_record(record_id)
    finished = stack.wait_for(owner_arn)
    after_save = tool(stack, "release", record_id, "--yes")
    absent = tool(stack, "release", f"{machine_name(stack)}#{'f' * 64}", "--yes")

    assert no_terminal[0] == 2 and "--yes" in no_terminal[2]
    assert (
        declined[0] == 1
        and f"Release {record_id}, held by {owner_arn}?" in declined[2]
        and "yours to answer for" in declined[2]
    )
    assert other_owner[0] == 1 and f"held by {owner_arn}, not by {OTHER_OWNER}" in other_owner[2]
    assert (
        still_held is not None
        and still_held["executionstatus"] == "IN_PROGRESS"
        and still_held["leaseexpiry"] > time.time() + 60
    )
    assert finished.status == "SUCCEEDED"
    assert after_save[0] == 1 and "the record is SUCCESS, not IN_PROGRESS" in after_save[2]
    assert absent[0] == 1 and "no live record" in absent[2]


def test_release_help_says_the_operator_answers_for_calls_in_flight(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        records.main(["--table", "t", "release", "--help"])

    assert "YOURS to answer for" in " ".join(capsys.readouterr().out.split())


def test_release_of_a_gone_owner_wakes_a_registered_waiter_that_takes_over_at_once(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    record_id = stack.record_id(compute_idempotency_key(execution_input))
    # An owner that crashed long ago, under a lease of 15 minutes.
    owner = gone_owner(stack, unique)
    put_held_record(stack, record_id, owner)
    waiter_arn, slots_before = waiter_with_slot(stack, execution_input, record_id)

    released = tool(
        stack, "release", "--input", json.dumps(execution_input), "--state-machine", machine_name(stack), "--yes"
    )
    waiter = stack.wait_for(waiter_arn)

    assert slots_before and released[0] == 0
    assert (
        f"Released {record_id}: held by {owner}, its lease cut to now" in released[1] and "0 waiting" not in released[1]
    )
    assert "takes the key now" in released[2]
    assert not [slot for slot in slot_ids(stack, record_id) if slot in slots_before]  # woken: their slots were cleared
    # Woken, the waiter looked again, took the record and ran the steps, long before the lease would have run out.
    assert waiter.status == "SUCCEEDED", waiter.cause
    assert "Run the business steps" in waiter.states_entered
    assert "TaskSucceeded" in [event["type"] for event in waiter.history]  # its wait ended with the wake-up
    final = stack.get_record(record_id)
    assert final is not None and (final["executionstatus"], final["executionid"]) == ("SUCCESS", waiter_arn)


def test_release_of_an_owner_still_running_cuts_its_lease_but_the_envelope_keeps_it_owner(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    record_id = stack.record_id(compute_idempotency_key(execution_input))
    with held_owner(stack, execution_input) as (owner_arn, gate):
        waiter_arn = start_registered_waiter(stack, execution_input)
        # Woken by the release, the waiter looks again and, finding the owner running, gives it a new
        # lease: held until the record is read as the release left it.
        looks_again = Gate()
        with stack.lambdas.intercept("AcquireLockFunction", looks_again):
            before = int(time.time())
            released = tool(stack, "release", record_id, "--owner", owner_arn, "--yes")
            after_release = stack.get_record(record_id)
            looks_again.open()
        gate.open()
        owner = stack.wait_for(owner_arn)
        waiter = stack.wait_for(waiter_arn)

    assert released[0] == 0 and f"Released {record_id}" in released[1] and "0 waiting" not in released[1]
    assert "still shows" in released[2] and "Stop that execution" in released[2]
    # Never a delete: the owner still holds it, with its lease cut to the release.
    assert after_release is not None and (after_release["executionstatus"], after_release["executionid"]) == (
        "IN_PROGRESS",
        owner_arn,
    )
    assert before <= after_release["leaseexpiry"] <= time.time()
    # Step Functions showed the owner running: it kept the record, saved, and the waiter got its result.
    assert owner.status == "SUCCEEDED" and waiter.status == "SUCCEEDED"
    assert "Run the business steps" not in waiter.states_entered and waiter.output == owner.output


def test_release_of_a_stopped_owner_says_it_is_resumed_not_replaced_and_whose_quiet_period_it_assumed(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    record_id = stack.record_id(compute_idempotency_key(execution_input))
    with held_owner(stack, execution_input) as (owner_arn, _):
        stack.sfn.stop_execution(executionArn=owner_arn)
        wait_until(
            lambda: stack.sfn.describe_execution(executionArn=owner_arn)["status"] == "ABORTED", message="the stop"
        )
        stack.events.wait_until_delivered()
        # --table: the tool knows the template's defaults only (LongestCallSeconds=60), and says so.
        released = tool(stack, "release", record_id, "--owner", owner_arn, "--yes")

    assert released[0] == 0, released
    assert "can still redrive it" in released[2] and "resumes it (RedriveExecution)" in released[2]
    assert "LongestCallSeconds=60 by the template's default; --stack-name reads the deployment's own" in released[2]


# --------------------------------------------------------------------------- delete
def test_delete_asks_first_unless_told_yes(stack: OfflineStack) -> None:
    kept_then_deleted = put_record(stack, "FAILED", ttl=int(time.time()) + 600)
    deleted_at_once = put_record(stack, "SUCCESS", ttl=int(time.time()) + 600)

    declined = tool(stack, "delete", kept_then_deleted, answer="n", interactive=True)
    kept = stack.get_record(kept_then_deleted)
    no_terminal = tool(stack, "delete", kept_then_deleted)
    confirmed = tool(stack, "delete", kept_then_deleted, answer="y", interactive=True)
    without_asking = tool(stack, "delete", deleted_at_once, "--yes")
    again = tool(stack, "delete", deleted_at_once, "--yes")

    assert (
        declined[0] == 1
        and f"Delete record {kept_then_deleted} (FAILED" in declined[2]
        and "Not deleted" in declined[2]
    )
    assert kept is not None
    assert no_terminal[0] == 2 and "--yes" in no_terminal[2]
    assert confirmed[0] == 0 and stack.get_record(kept_then_deleted) is None
    assert without_asking[0] == 0 and "it was SUCCESS" in without_asking[1]
    assert stack.get_record(deleted_at_once) is None
    assert again[0] == 1 and "No record" in again[2]


def test_delete_removes_the_record_and_its_slots_and_a_woken_waiter_takes_the_key(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    record_id = stack.record_id(compute_idempotency_key(execution_input))
    owner = gone_owner(stack, unique)
    put_held_record(stack, record_id, owner)
    waiter_arn, slots_before = waiter_with_slot(stack, execution_input, record_id)

    deleted = tool(stack, "delete", record_id, "--yes")
    slots_after = slot_ids(stack, record_id)
    waiter = stack.wait_for(waiter_arn)

    assert slots_before
    assert (
        deleted[0] == 0
        and f"Deleted {record_id} (it was IN_PROGRESS, owner {owner}) and its waiter slots" in deleted[1]
    )
    assert "0 waiting" not in deleted[1]
    # The slots of the deleted record are gone (a woken waiter that registers again does so on the new record).
    assert not [slot for slot in slots_after if slot in slots_before]
    assert waiter.status == "SUCCEEDED", waiter.cause
    assert "Run the business steps" in waiter.states_entered
    final = stack.get_record(record_id)
    assert final is not None and (final["executionstatus"], final["executionid"]) == ("SUCCESS", waiter_arn)


def test_delete_removes_a_record_written_before_record_v2(stack: OfflineStack) -> None:
    old_key = uuid.uuid4().hex * 2
    stack.dynamodb.put_item(
        TableName=stack.table_name,
        Item={
            "id": {"S": old_key},
            "executionstatus": {"S": "IN_PROGRESS"},
            "executionid": {"S": OTHER_OWNER},
            "starttime": {"S": "2026-01-01T00:00:00Z"},
            "ttl": {"N": str(int(time.time()) + 600)},
            "waiters": {"M": {OTHER_OWNER + "-waiter": {"S": "a-token-nobody-waits-on"}}},
        },
    )

    shown = tool(stack, "show", old_key)
    deleted = tool(stack, "delete", old_key, "--yes")

    assert shown[0] == 0 and json.loads(shown[1])["unscoped"] is True
    assert json.loads(shown[1])["record"]["waiters"] == {
        OTHER_OWNER + "-waiter": {"tokenlength": len("a-token-nobody-waits-on")}
    }
    assert deleted[0] == 0 and stack.get_record(old_key) is None
