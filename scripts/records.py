"""Look at and repair idempotency records: on AWS, on the local endpoint, or in the emulator.

    make records ARGS="--stack-name idempotent-workflow list"       # with the project's virtualenv
    python scripts/records.py --stack-name idempotent-workflow list --status IN_PROGRESS
    python scripts/records.py --stack-name idempotent-workflow show --input events/execution_fresh.json
    python scripts/records.py --table MyTable show 'IdempotentWorkflow-Ab12#6977b207...'
    python scripts/records.py --table MyTable show --input '{"orderId": "42"}' --state-machine IdempotentWorkflow-Ab12
    python scripts/records.py --stack-name idempotent-workflow release 'IdempotentWorkflow-Ab12#6977b207...' --yes
    python scripts/records.py --endpoint-url http://127.0.0.1:4566 --stack-name idempotent-workflow delete ID --yes

A record is named by its id (``<scope>#<key>``) or by an execution input (``--input``, a file or
JSON text). An input is identified by the layer's own ``key.identify``, under the scope and key
rules the deployment uses: with ``--stack-name``, the stack's parameters ``IdempotencyScope``,
``IdempotencyKeyJmespath``, ``AllowKeyOverride`` and ``PayloadValidationJmespath``, and its
envelope state machine (or ``--state-machine``), read from the stack itself or, when an app nests the
envelope, from the envelope's nested stack; with ``--table``, the template's defaults and
the scope of ``--state-machine`` (or ``--scope``). The table is given by name (``--table``) or
found from the stack's outputs (``--stack-name``).

Every change goes through the envelope's own code (``envelope/layers/idempotency``): this tool writes no
condition of its own, so it cannot drift from what the functions do. ``release`` is the layer's
``record.end_ownership`` with the key free now, then ``wakeup.wake_waiters``; ``delete`` removes
a record (and its waiter slots) whatever its state and wakes the executions that waited for it.

Exit status: 0 done; 1 no such record, nothing to release, or not confirmed; 2 bad usage
(arguments, input, table or stack not found, a change asked for without --yes and no terminal).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:  # run as a file (python scripts/records.py), not only with -m
    sys.path.insert(0, str(PROJECT_ROOT))

import boto3  # noqa: E402
from boto3.dynamodb.types import TypeDeserializer  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from tools.deployed import StackNotFound, envelope_stack, output_name, stack_outputs  # noqa: E402
from tools.layer_import import load_modules  # noqa: E402
from tools.template import ENVELOPE_STATE_MACHINE, RECORD_TABLE, Template  # noqa: E402

LAYER_ROOT = PROJECT_ROOT / "envelope" / "layers" / "idempotency"
# Imported together, as the functions import them, so they share one copy of the layer.
record, _store, _ending, waiter_slots, wakeup, _key, _settings, _errors, _ownership, _vocabulary = load_modules(
    LAYER_ROOT,
    "idempotency.record",
    "idempotency.store",
    "idempotency.ending",
    "idempotency.waiter_slots",
    "idempotency.wakeup",
    "idempotency.key",
    "idempotency.settings",
    "idempotency.errors",
    "idempotency.ownership",
    "idempotency.vocabulary",
)
# The template parameters that decide how an input is identified, and how a released owner is looked at.
LONGEST_CALL_PARAMETER, WORKFLOW_TYPE_PARAMETER = "LongestCallSeconds", "WorkflowType"
SCOPE_PARAMETERS = (
    _key.SCOPE_PARAMETER,
    _key.KEY_EXPRESSION_PARAMETER,
    _key.ALLOW_OVERRIDE_PARAMETER,
    _key.VALIDATION_PARAMETER,
)
DEPLOYMENT_PARAMETERS = (*SCOPE_PARAMETERS, LONGEST_CALL_PARAMETER, WORKFLOW_TYPE_PARAMETER)

DONE, NOT_AS_EXPECTED, USAGE = 0, 1, 2
_DESERIALIZE = TypeDeserializer().deserialize
_LOGGER = logging.getLogger("records")

RELEASE_HELP = (
    "say that the owner of an IN_PROGRESS record is gone: its lease is cut to now (the layer's end_ownership; "
    "never a delete) and its waiters are woken to look again. The look that follows is the envelope's own: on a "
    "STANDARD workflow it still asks Step Functions, so a waiter takes over only once the owner (and its child) "
    "no longer runs and LongestCallSeconds have passed since it stopped; an owner Step Functions no longer "
    "knows, or any owner of an EXPRESS workflow, is taken over at once. Any call of that owner still in flight "
    "is then YOURS to answer for: it may run alongside the steps of the execution that takes over. "
    "Asks first (at a terminal), unless --yes."
)
DELETE_HELP = (
    "remove a record and its waiter slots whatever its state (the executions waiting for it are woken and look "
    "again: one of them takes the key). An owner still running cannot save any more. Asks first, unless --yes."
)


class UsageError(Exception):
    """Bad input or an unknown target: exit status 2."""


# --------------------------------------------------------------------------- how the deployment identifies inputs
@dataclass(frozen=True)
class Deployment:
    """Where the records are and how an input is identified: what ``--input`` needs."""

    table_name: str
    # The state machine whose scope an input is looked up under (name or ARN); None when unknown.
    state_machine: str | None
    parameters: Mapping[str, str]
    # Whether the parameters are the deployment's own (read from its stack) or the template's defaults (--table).
    from_stack: bool = True

    def scope(self, state_machine: str | None = None, scope: str | None = None) -> str:
        """The scope of the records of ``state_machine`` (or of this deployment's), as the envelope computes it."""
        chosen = (
            scope or self.parameters.get(_key.SCOPE_PARAMETER) or _machine_name(state_machine or self.state_machine)
        )
        try:
            return str(_key.check_scope(chosen))
        except _errors.IdempotencyConfigurationError as error:
            raise UsageError(str(error)) from None

    def key_rules(self) -> Any:
        try:
            return _key.KeyRules.from_parameters(
                key_expression=self.parameters.get(_key.KEY_EXPRESSION_PARAMETER, ""),
                allow_key_override=self.parameters.get(_key.ALLOW_OVERRIDE_PARAMETER, "true"),
                validation_expression=self.parameters.get(_key.VALIDATION_PARAMETER, ""),
            )
        except _errors.IdempotencyConfigurationError as error:
            raise UsageError(f"the deployment's key rules are not valid: {error}") from None


def _machine_name(state_machine: str | None) -> str:
    if not state_machine:
        raise UsageError(
            "--input needs the scope its record is under: give --state-machine NAME|ARN (or --scope), "
            "or --stack-name to read it from the stack"
        )
    if ":" not in state_machine:
        return state_machine
    try:
        return str(_settings.state_machine_name(state_machine))
    except _errors.IdempotencyConfigurationError as error:
        raise UsageError(str(error)) from None


def deployment_of_stack(cloudformation: Any, stack_name: str, template: Template | None = None) -> Deployment:
    """The table, envelope state machine and identification parameters of a deployed stack, or of the
    envelope nested in it (an app of your own nesting ``envelope/template.yaml``): the parameters are that
    stack's own, as deployed (the template's defaults for any it does not list)."""
    template = template or Template.load()
    names = {logical_id: output_name(template, logical_id) for logical_id in (RECORD_TABLE, ENVELOPE_STATE_MACHINE)}
    description = envelope_stack(cloudformation, stack_name, tuple(names.values()))
    outputs = stack_outputs(description)
    given = {item["ParameterKey"]: item.get("ParameterValue", "") for item in description.get("Parameters", [])}
    declared = template.body.get("Parameters", {})
    parameters = template.parameter_values({name: value for name, value in given.items() if name in declared})
    return Deployment(
        table_name=outputs[names[RECORD_TABLE]],
        state_machine=outputs[names[ENVELOPE_STATE_MACHINE]],
        parameters={name: parameters[name] for name in DEPLOYMENT_PARAMETERS if name in parameters},
    )


# --------------------------------------------------------------------------- the table
class RecordTable:
    """The idempotency table, read with the record's attribute names and changed by the layer's functions."""

    def __init__(self, client: Any, table_name: str, stepfunctions: Any) -> None:
        self.client = client
        self.table_name = table_name
        self.stepfunctions = stepfunctions

    def scan(self) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Every record (waiter slots left out), and how many waiter slots each record id has in the table."""
        pages = self.client.get_paginator("scan").paginate(TableName=self.table_name, ConsistentRead=True)
        records: list[dict[str, Any]] = []
        slots: dict[str, int] = {}
        for page in pages:
            for item in page["Items"]:
                item_id = item[record.ID]["S"]
                if waiter_slots.is_waiter_slot(item_id):
                    owner = waiter_slots.record_id_of_waiter_slot(item_id)
                    slots[owner] = slots.get(owner, 0) + 1
                else:
                    records.append(_plain(item))
        return records, slots

    def get_item(self, record_id: str) -> dict[str, Any] | None:
        """The item as stored (DynamoDB form), strongly consistent."""
        item: dict[str, Any] | None = self.client.get_item(
            TableName=self.table_name, Key={record.ID: {"S": record_id}}, ConsistentRead=True
        ).get("Item")
        return item

    def store(self, record_ttl_seconds: int) -> Any:
        """The layer's store of this table; ``record_ttl_seconds``: how long a record it puts lives."""
        return _store.RecordStore(self.client, self.table_name, record_ttl_seconds, 0)

    def waiter_slots(self, item: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The waiter slots the record's current holder handed out that are in the table (tokens included)."""
        ids = waiter_slots.slot_ids(record.SavedOutcome.of(record.parse_record(item)))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 100):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [{record.ID: {"S": slot_id}} for slot_id in ids[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for slot in response.get("Responses", {}).get(self.table_name, []):
                    found[slot[record.ID]["S"]] = _plain(slot)
                request = response.get("UnprocessedKeys") or {}
        return [found[slot_id] for slot_id in ids if slot_id in found]

    def release(self, item: Mapping[str, Any], now: int) -> tuple[Any, Any]:
        """End the ownership of the record's holder with its key free now, then wake its waiters.

        Returns (what changed, or None when the record is no longer held by that execution; the wake-ups).
        """
        plain = _plain(item)
        ended = record.Owner(
            execution_id=str(plain.get(record.EXECUTION_ID, "")),
            run_id=str(plain.get(record.RUN_ID, "")),
            start_time=str(plain.get(record.START_TIME, "")),
        )
        # Only used when the record vanished meanwhile (the layer then holds the key for the ended owner until now).
        store = self.store(max(1, int(plain.get(record.TTL, now)) - now))
        changed = _ending.end_ownership(store, str(plain[record.ID]), _ending.Ending(ended, free_at=now), now)
        if changed is None:
            return None, wakeup.WakeUps()
        return changed, wakeup.wake_waiters(
            store, self.stepfunctions, changed, wakeup.wake_up_message(changed), _LOGGER
        )

    def delete(self, record_id: str) -> tuple[dict[str, Any] | None, Any]:
        """Delete the record whatever its state, then wake its waiters and clear their slots.

        The record goes first: a waiter woken while it was still there would only register again on it.
        Returns (the record as it was, or None; the wake-ups).
        """
        response = self.client.delete_item(
            TableName=self.table_name, Key={record.ID: {"S": record_id}}, ReturnValues="ALL_OLD"
        )
        deleted: dict[str, Any] | None = response.get("Attributes")
        if deleted is None:
            return None, wakeup.WakeUps()
        waiters = record.SavedOutcome.of(record.parse_record(deleted))
        gone = record.SavedOutcome(
            key=waiters.key,
            status=_vocabulary.Status.IN_PROGRESS,
            owner_tag=waiters.owner_tag,
            waiter_count=waiters.waiter_count,
        )
        store = self.store(1)
        woken = wakeup.wake_waiters(store, self.stepfunctions, gone, wakeup.wake_up_message(gone), _LOGGER)
        waiter_slots.clear_waiter_slots(
            store, waiter_slots.slot_ids(gone)
        )  # any slot not woken (written late, or unread)
        old_tokens = _tokens_of_old_waiters(deleted)
        if old_tokens:  # a record written before record v2 kept its waiters' tokens in a map
            old = wakeup.send_to_tokens(self.stepfunctions, old_tokens, wakeup.wake_up_message(gone), _LOGGER)
            woken = wakeup.WakeUps(
                woken=woken.woken + old.woken, gone=woken.gone + old.gone, failed=woken.failed + old.failed
            )
        return _plain(deleted), woken


def _tokens_of_old_waiters(item: Mapping[str, Any]) -> list[str]:
    waiters = item.get(record.WAITERS, {})
    return (
        [str(value.get("S")) for value in waiters.get("M", {}).values() if "S" in value]
        if isinstance(waiters, dict)
        else []
    )


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZE(value) for name, value in item.items()}


# --------------------------------------------------------------------------- presenting records
def epoch_date(seconds: Any) -> str:
    """Epoch seconds as an ISO 8601 UTC date (``2026-11-24T02:54:15Z``)."""
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_expired(item: Mapping[str, Any], now: float) -> bool:
    """A record whose ttl has passed counts as absent, even before DynamoDB deletes it."""
    ttl = item.get(record.TTL)
    return ttl is not None and int(ttl) < now


def is_unscoped(record_id: str) -> bool:
    """A record written before record v2: its id is a bare key, without ``<scope>#``; no execution finds it any more."""
    return _key.SCOPE_SEPARATOR not in record_id


def list_lines(items: Sequence[Mapping[str, Any]], slots: Mapping[str, int], now: float) -> list[str]:
    """One line per record: id, status, owner, ttl and lease as dates, expired?, waiter slots in the table."""
    header = ("ID", "STATUS", "OWNER", "TTL(UTC)", "LEASE(UTC)", "EXPIRED", "SLOTS")
    rows = [
        (
            str(item.get(record.ID)),
            str(item.get(record.STATUS, "-")),
            str(item.get(record.EXECUTION_ID, "-")),
            epoch_date(item[record.TTL]) if record.TTL in item else "-",
            epoch_date(item[record.LEASE_EXPIRY]) if record.LEASE_EXPIRY in item else "-",
            "yes" if is_expired(item, now) else "no",
            str(slots.get(str(item.get(record.ID)), 0)),
        )
        for item in sorted(items, key=lambda item: (str(item.get(record.START_TIME, "")), str(item.get(record.ID))))
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def shown_record(item: Mapping[str, Any], slots: Sequence[Mapping[str, Any]], now: float) -> dict[str, Any]:
    """What ``show`` prints: the stored attributes, the waiter slots (no tokens) and what the times mean."""
    stored = dict(item)
    old_waiters = stored.get(record.WAITERS)
    if isinstance(old_waiters, dict):  # before record v2: execution ARN -> task token; show no token
        stored[record.WAITERS] = {arn: {"tokenlength": len(str(token))} for arn, token in old_waiters.items()}
    times = {name: epoch_date(stored[name]) for name in (record.TTL, record.LEASE_EXPIRY) if name in stored}
    lease = stored.get(record.LEASE_EXPIRY)
    return {
        "record": stored,
        "waiterslots": [
            {
                "id": slot.get(record.ID),
                "waitingon": slot.get(waiter_slots.WAITING_ON),
                "tokenlength": len(str(slot.get(waiter_slots.TASK_TOKEN, ""))),
            }
            for slot in slots
        ],
        "dates": times,
        "expired": is_expired(stored, now),
        "leasepassed": None if lease is None else int(lease) < now,
        "unscoped": is_unscoped(str(stored.get(record.ID, ""))),
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, bytes | bytearray):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=_json_value)


# --------------------------------------------------------------------------- commands
@dataclass
class Console:
    """Where the commands print (``out``: results, ``err``: notes) and how they ask before a change."""

    out: TextIO
    err: TextIO
    ask: Callable[[str], str]
    interactive: bool

    def note(self, text: str) -> None:
        print(text, file=self.err)

    def confirm(self, question: str, yes: bool) -> bool:
        """True when told --yes, or when the operator answers yes at a terminal. No terminal and no --yes: usage
        error."""
        if yes:
            return True
        if not self.interactive:
            raise UsageError("this changes the table: pass --yes (no terminal to ask on)")
        try:
            answer = self.ask(question)
        except EOFError:
            answer = ""
        return answer.strip().lower() in ("y", "yes")


def read_input(text_or_file: str) -> Any:
    path = Path(text_or_file)
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else text_or_file
    except OSError:
        text = text_or_file
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"--input is neither a file nor JSON text: {error}") from None


def identity_from(args: argparse.Namespace, deployment: Deployment, console: Console) -> tuple[str, str | None]:
    """The record id named on the command line, or identified from ``--input``; with the input's payload hash."""
    if args.input is None:
        return str(args.id), None
    scope = deployment.scope(getattr(args, "state_machine", None), getattr(args, "scope", None))
    try:
        identity = _key.identify(read_input(args.input), scope, deployment.key_rules())
    except _errors.IdempotencyError as error:
        raise UsageError(f"the workflow would reject this input ({type(error).__name__}): {error}") from None
    console.note(f"id {identity.key} (identified from the input under scope {scope})")
    return str(identity.key), identity.payload_hash


def command_list(table: RecordTable, args: argparse.Namespace, console: Console) -> int:
    records, slots = table.scan()
    items = [
        item
        for item in records
        if (args.status is None or item.get(record.STATUS) == args.status)
        and (not args.unscoped or is_unscoped(str(item.get(record.ID))))
    ]
    if args.json:
        print(as_json(items), file=console.out)
    else:
        print("\n".join(list_lines(items, slots, time.time())), file=console.out)
        console.note(f"{len(items)} record(s) in {table.table_name}")
    return DONE


def command_show(table: RecordTable, deployment: Deployment, args: argparse.Namespace, console: Console) -> int:
    record_id, payload_hash = identity_from(args, deployment, console)
    item = table.get_item(record_id)
    if item is None:
        console.note(f"No record {record_id} in {table.table_name}.")
        return NOT_AS_EXPECTED
    shown = shown_record(_plain(item), table.waiter_slots(item), time.time())
    stored_hash = shown["record"].get(record.PAYLOAD_HASH)
    if payload_hash is not None and stored_hash is not None and stored_hash != payload_hash:
        console.note(
            f"This input's validated part differs from the record's ({_key.VALIDATION_PARAMETER}): "
            "an execution with it would fail with IdempotencyPayloadMismatchError."
        )
    print(as_json(shown), file=console.out)
    next_run = next_run_of_a_failed_child(table, deployment, shown["record"])
    if next_run is not None:
        console.note(next_run)
    return DONE


def command_release(table: RecordTable, deployment: Deployment, args: argparse.Namespace, console: Console) -> int:
    record_id, _ = identity_from(args, deployment, console)
    now = int(time.time())
    item = table.get_item(record_id)
    plain = None if item is None else _plain(item)
    if plain is None or is_expired(plain, now):
        console.note(f"Not released: there is no live record {record_id}. Nothing was changed.")
        return NOT_AS_EXPECTED
    owner = plain.get(record.EXECUTION_ID)
    if plain.get(record.STATUS) != _vocabulary.Status.IN_PROGRESS:
        console.note(
            f"Not released: the record is {plain.get(record.STATUS)}, not {_vocabulary.Status.IN_PROGRESS} "
            "(delete removes it). Nothing was changed."
        )
        return NOT_AS_EXPECTED
    if args.owner is not None and owner != args.owner:
        console.note(f"Not released: the record is held by {owner}, not by {args.owner}. Nothing was changed.")
        return NOT_AS_EXPECTED
    question = (
        f"Release {record_id}, held by {owner}? Its calls still in flight, if any, are then yours to answer for. [y/N] "
    )
    if not console.confirm(question, args.yes):
        console.note("Not released (answer y, or pass --yes).")
        return NOT_AS_EXPECTED
    assert item is not None
    changed, woken = table.release(item, now)
    if changed is None:
        console.note(
            f"Not released: {record_id} changed meanwhile (saved, or taken by another execution). Nothing was changed."
        )
        return NOT_AS_EXPECTED
    print(
        f"Released {record_id}: held by {owner}, its lease cut to now; {woken.woken} waiting execution(s) woken"
        f"{f', {woken.failed} not reached (they look again on their own)' if woken.failed else ''}.",
        file=console.out,
    )
    console.note(when_free(table, deployment, plain, now))
    return DONE


def when_free(table: RecordTable, deployment: Deployment, plain: Mapping[str, Any], now: int) -> str:
    """What the envelope's next look at a released record will decide, by its own liveness check."""
    if (
        deployment.parameters.get(WORKFLOW_TYPE_PARAMETER, _vocabulary.WorkflowType.STANDARD)
        != _vocabulary.WorkflowType.STANDARD
    ):
        return "The lease alone decides (EXPRESS): a waiter, or the next execution with this input, takes the key now."
    holder = record.Holder(
        execution_id=str(plain.get(record.EXECUTION_ID, "")),
        run_id=str(plain.get(record.RUN_ID, "")),
        lease_expiry=now,
        child_execution=plain.get(record.CHILD_EXECUTION),
    )
    longest_call = int(deployment.parameters.get(LONGEST_CALL_PARAMETER, "60"))
    state = _ownership.LivenessChecker(lambda: table.stepfunctions, longest_call)(holder, now)
    if state.can_act:
        return (
            f"Step Functions still shows {holder.execution_id} (or its child) running, or could not say: the envelope "
            "keeps it as the owner and extends its lease. Stop that execution if it is really gone."
        )
    whose = "" if deployment.from_stack else " by the template's default; --stack-name reads the deployment's own"
    when = (
        f"at {epoch_date(state.free_at)}, {LONGEST_CALL_PARAMETER}={longest_call}{whose} after the stop, when its "
        "calls in flight can have ended"
        if state.free_at > now
        else "now"
    )
    if state.redrivable and holder.run_id:
        what = "neither it nor the child it started" if holder.child_execution else "it no longer"
        return (
            "The owner has stopped, and Step Functions can still redrive it (14 days after it ended): the envelope's "
            f"next look, {when}, resumes it (RedriveExecution) instead of running the steps in another execution; the "
            f"record changes owner only once {what} can be redriven (docs/contract.md, Redrive)."
        )
    if state.free_at > now:
        return f"The owner has stopped: the envelope frees the key {when}."
    return "The owner no longer runs: a waiter, or the next execution with this input, takes the key now."


def next_run_of_a_failed_child(table: RecordTable, deployment: Deployment, plain: Mapping[str, Any]) -> str | None:
    """What the next run does with a FAILED record of the child variant, by the take's own question to Step
    Functions about the child (None: not such a record, or an Express deployment, where it is never asked)."""
    child, owner = plain.get(record.CHILD_EXECUTION), plain.get(record.EXECUTION_ID)
    if (
        plain.get(record.STATUS) != _vocabulary.Status.FAILED
        or plain.get(record.ENDED_UNSAVED)
        or not child
        or not owner
        or deployment.parameters.get(WORKFLOW_TYPE_PARAMETER, _vocabulary.WorkflowType.STANDARD)
        != _vocabulary.WorkflowType.STANDARD
    ):
        return None
    longest_call = int(deployment.parameters.get(LONGEST_CALL_PARAMETER, "60"))
    state = _ownership.LivenessChecker(lambda: table.stepfunctions, longest_call).child_to_resume(child, owner)
    if state.in_doubt:
        return f"Step Functions did not say how child {child} is: the next run asks again before it does anything."
    if state.may_run_again:
        return (
            f"The next run resumes child {child} (RedriveExecution, or follows it if it runs or succeeded): only its "
            "unsuccessful states run again, with its first input, instead of a new child (docs/contract.md, Redrive)."
        )
    return (
        f"The next run starts a new child: {child} ended in a Fail state of its own (a redrive of it reruns only "
        "that state), can no longer be redriven, or is not its owner's."
    )


def command_delete(table: RecordTable, deployment: Deployment, args: argparse.Namespace, console: Console) -> int:
    record_id, _ = identity_from(args, deployment, console)
    if not args.yes:
        item = table.get_item(record_id)
        if item is None:
            console.note(f"No record {record_id} in {table.table_name}.")
            return NOT_AS_EXPECTED
        plain = _plain(item)
        question = (
            f"Delete record {record_id} ({plain.get(record.STATUS)}, owner {plain.get(record.EXECUTION_ID)}) "
            "and its waiter slots? [y/N] "
        )
        if not console.confirm(question, args.yes):
            console.note("Not deleted (answer y, or pass --yes).")
            return NOT_AS_EXPECTED
    deleted, woken = table.delete(record_id)
    if deleted is None:
        console.note(f"No record {record_id} in {table.table_name}.")
        return NOT_AS_EXPECTED
    print(
        f"Deleted {record_id} (it was {deleted.get(record.STATUS)}, owner {deleted.get(record.EXECUTION_ID)}) and its "
        f"waiter slots; {woken.woken} waiting execution(s) woken.",
        file=console.out,
    )
    return DONE


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="records.py",
        description=(
            "List, show, release and delete the workflow's idempotency records (waiter slots are shown with "
            "their record)."
        ),
        epilog=(
            "A record is named by its ID (<scope>#<key>) or by --input (an execution input, as a file or JSON text). "
            "Exit status: 0 done; 1 no such record, nothing to release or not confirmed; 2 bad usage."
        ),
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--table", metavar="NAME", help="the idempotency table's name (the template's default key rules)"
    )
    target.add_argument(
        "--stack-name", metavar="NAME", help="find the table, state machine and key rules from this stack"
    )
    parser.add_argument(
        "--endpoint-url", metavar="URL", help="an endpoint other than AWS (the local one: http://127.0.0.1:4566)"
    )
    parser.add_argument("--region", help="the table's region (default: boto3's configured region)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser(
        "list", help="every record (no waiter slots): id, status, owner, ttl, lease, expired?, slots"
    )
    listing.add_argument(
        "--status",
        choices=(_vocabulary.Status.IN_PROGRESS, _vocabulary.Status.SUCCESS, _vocabulary.Status.FAILED),
        help="only records in this status",
    )
    listing.add_argument(
        "--unscoped", action="store_true", help="only records written before record v2 (ids without a scope)"
    )
    listing.add_argument("--json", action="store_true", help="the records as JSON")

    show = commands.add_parser("show", help="one record as JSON: every attribute, its waiter slots (no tokens), dates")
    _add_record_choice(show)

    release = commands.add_parser("release", help=RELEASE_HELP, description=RELEASE_HELP)
    _add_record_choice(release)
    release.add_argument(
        "--owner", metavar="EXECUTION_ARN", help="release only if this execution still holds the record"
    )
    release.add_argument("--yes", action="store_true", help="do not ask")

    delete = commands.add_parser("delete", help=DELETE_HELP, description=DELETE_HELP)
    _add_record_choice(delete)
    delete.add_argument("--yes", action="store_true", help="do not ask")
    return parser


def _add_record_choice(command: argparse.ArgumentParser) -> None:
    which = command.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "id",
        nargs="?",
        metavar="ID",
        help="the record's id (<scope>#<key>; a record from before record v2: the bare key)",
    )
    which.add_argument(
        "--input", metavar="FILE|JSON", help="an execution input: identified as the workflow identifies it"
    )
    scope = command.add_mutually_exclusive_group()
    scope.add_argument(
        "--state-machine",
        metavar="NAME|ARN",
        help="with --input: the state machine whose scope to use (default: the stack's envelope)",
    )
    scope.add_argument("--scope", help="with --input: this scope (the IdempotencyScope parameter) instead")


def main(
    argv: Sequence[str] | None = None,
    out: TextIO = sys.stdout,
    ask: Callable[[str], str] = input,
    *,
    err: TextIO | None = None,
    interactive: bool | None = None,
) -> int:
    args = build_parser().parse_args(argv)
    console = Console(
        out=out,
        err=sys.stderr if err is None else err,
        ask=ask,
        interactive=sys.stdin.isatty() if interactive is None else interactive,
    )
    session = boto3.session.Session(region_name=args.region)
    table_name = args.table or f"of stack {args.stack_name}"
    try:
        if args.table:
            defaults = Template.load().parameter_values()
            deployment = Deployment(
                args.table,
                None,
                {name: defaults[name] for name in DEPLOYMENT_PARAMETERS if name in defaults},
                from_stack=False,
            )
        else:
            deployment = deployment_of_stack(
                session.client("cloudformation", endpoint_url=args.endpoint_url), args.stack_name
            )
        table_name = deployment.table_name
        table = RecordTable(
            session.client("dynamodb", endpoint_url=args.endpoint_url),
            table_name,
            session.client("stepfunctions", endpoint_url=args.endpoint_url),
        )
        if args.command == "list":
            return command_list(table, args, console)
        if args.command == "show":
            return command_show(table, deployment, args, console)
        if args.command == "release":
            return command_release(table, deployment, args, console)
        return command_delete(table, deployment, args, console)
    except (UsageError, StackNotFound) as error:
        console.note(f"error: {error}")
        return USAGE
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            console.note(f"error: table {table_name} not found ({error.response['Error'].get('Message', '')})")
            return USAGE
        raise
    except BotoCoreError as error:  # no region, no credentials, endpoint unreachable
        console.note(f"error: {error}")
        return USAGE


if __name__ == "__main__":
    sys.exit(main())
