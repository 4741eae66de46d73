"""Look at and repair idempotency records: on AWS, on the local endpoint, or in the emulator.

    make records ARGS="--stack-name idempotent-workflow list"       # with the project's virtualenv
    python scripts/records.py --stack-name idempotent-workflow list
    python scripts/records.py --stack-name idempotent-workflow show --input events/execution_fresh.json
    python scripts/records.py --table MyTable show 6977b207...
    python scripts/records.py --stack-name idempotent-workflow release KEY --owner EXECUTION_ARN
    python scripts/records.py --endpoint-url http://127.0.0.1:4566 --stack-name idempotent-workflow delete KEY --yes

A record is named by its key, or by an execution input (``--input``, a file or JSON text) whose
key is computed with the layer's own ``compute_idempotency_key``. The table is given by name
(``--table``) or found from the stack's outputs (``--stack-name``). Every change goes through
the envelope's own code (``layers/idempotency``): this tool writes no condition of its own, so it
cannot drift from what the functions do.

``release`` is for an owner that can no longer finish (stopped, timed out, crashed) when its key
should not wait for the lease to run out: it is the release function's ``record.release_record``
(only while the record is IN_PROGRESS and held by the execution given), then the waiters are woken
with ``wakeup.wake_waiters`` so they look again at once. Should that owner still be running, its
save is refused (IdempotencyRecordLostError) and never recreates the record. ``delete`` removes a
record whatever its state, and wakes the waiters it had.

Exit status: 0 done; 1 no such record, release refused, or delete not confirmed; 2 bad usage
(arguments, input, table or stack not found).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
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

from tools.deployed import StackNotFound, table_name_of_stack  # noqa: E402
from tools.layer_import import load_modules  # noqa: E402

LAYER_ROOT = PROJECT_ROOT / "layers" / "idempotency"
# Imported together, as the functions import them, so they share one copy of the layer.
record, wakeup, _key = load_modules(LAYER_ROOT, "idempotency.record", "idempotency.wakeup", "idempotency.key")
INPUT_ERRORS = (_key.IdempotencyInputNotObjectError, _key.IdempotencyKeyExpressionError, _key.IdempotencyKeyEmptyError)

DONE, NOT_AS_EXPECTED, USAGE = 0, 1, 2
_DESERIALIZE = TypeDeserializer().deserialize


class UsageError(Exception):
    """Bad input or an unknown target: exit status 2."""


# --------------------------------------------------------------------------- the table
class RecordTable:
    """The idempotency table, read with the record's attribute names and changed by the layer's functions."""

    def __init__(self, client: Any, table_name: str, stepfunctions: Any) -> None:
        self.client = client
        self.table_name = table_name
        self.stepfunctions = stepfunctions

    def scan(self) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("scan").paginate(TableName=self.table_name, ConsistentRead=True)
        return [_plain(item) for page in pages for item in page["Items"]]

    def get(self, key: str) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table_name, Key=_key_of(key), ConsistentRead=True).get("Item")
        return None if item is None else _plain(item)

    def release(self, key: str, owner: str) -> tuple[bool, int, dict[str, Any] | None]:
        """The release function's release of ``key`` held by ``owner``, then its wake-up of the waiters.

        Returns (released, waiters woken, the record as it is now when it was not released).
        """
        released = record.release_record(self.client, self.table_name, key, owner)
        if released is None:
            return False, 0, self.get(key)
        return True, wakeup.wake_waiters(self.stepfunctions, released.waiters, wakeup.wake_up_message(released)), None

    def delete(self, key: str) -> tuple[dict[str, Any] | None, int]:
        """Delete the record whatever its state: (the record as it was or None, waiters woken to look again)."""
        response = self.client.delete_item(TableName=self.table_name, Key=_key_of(key), ReturnValues="ALL_OLD")
        attributes = response.get("Attributes")
        if attributes is None:
            return None, 0
        deleted = _plain(attributes)
        waiters = {name: str(token) for name, token in (deleted.get(record.WAITERS) or {}).items()}
        gone = record.SavedOutcome(key=key, status=record.IN_PROGRESS, waiters=waiters)
        return deleted, wakeup.wake_waiters(self.stepfunctions, waiters, wakeup.wake_up_message(gone))


def _key_of(key: str) -> dict[str, Any]:
    return {record.ID: {"S": key}}


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


def list_lines(items: Sequence[Mapping[str, Any]], now: float) -> list[str]:
    """One line per record: key, status, owner, ttl as a date, expired?"""
    header = ("KEY", "STATUS", "OWNER", "TTL (UTC)", "EXPIRED")
    rows = [
        (
            str(item.get(record.ID)),
            str(item.get(record.STATUS, "-")),
            str(item.get(record.EXECUTION_ID, "-")),
            epoch_date(item[record.TTL]) if record.TTL in item else "-",
            "yes" if is_expired(item, now) else "no",
        )
        for item in sorted(items, key=lambda item: (str(item.get(record.START_TIME, "")), str(item.get(record.ID))))
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]


def show_lines(item: Mapping[str, Any], now: float) -> list[str]:
    """Every attribute of one record; times also as dates, the stored result as indented JSON."""
    width = max(len(name) for name in item)
    lines = []
    for name, value in item.items():
        text = str(value)
        if name in (record.TTL, record.LEASE_EXPIRY):
            passed = int(value) < now
            meaning = {record.TTL: "the record counts as absent", record.LEASE_EXPIRY: "another execution may take it over"}[name]
            text = f"{value} ({epoch_date(value)}{'; passed: ' + meaning if passed else ''})"
        elif name == record.RESULT:
            with contextlib.suppress(TypeError, ValueError):  # else shown as stored
                text = json.dumps(json.loads(value), indent=2).replace("\n", "\n" + " " * (width + 2))
        elif isinstance(value, dict | list):  # the waiters' map, or any other map or list: JSON, not a Python repr
            text = json.dumps(value, indent=2, default=_json_value).replace("\n", "\n" + " " * (width + 2))
        lines.append(f"{name:<{width}}  {text}")
    return lines


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# --------------------------------------------------------------------------- commands
def key_from(args: argparse.Namespace, out: TextIO) -> str:
    """The key named on the command line, or computed from ``--input``."""
    if args.input is None:
        return args.key
    path = Path(args.input)
    text = path.read_text(encoding="utf-8") if path.is_file() else args.input
    try:
        execution_input = json.loads(text)
    except ValueError as error:
        raise UsageError(f"--input is neither a file nor JSON text: {error}") from None
    try:
        key = _key.compute_idempotency_key(execution_input)
    except INPUT_ERRORS as error:
        raise UsageError(f"the workflow would reject this input ({type(error).__name__}): {error}") from None
    print(f"key {key} (computed from the input)", file=out)
    return key


def command_list(table: RecordTable, args: argparse.Namespace, out: TextIO) -> int:
    items = [item for item in table.scan() if args.status is None or item.get(record.STATUS) == args.status]
    if args.json:
        print(json.dumps(items, indent=2, default=_json_value), file=out)
    else:
        print("\n".join(list_lines(items, time.time())), file=out)
        print(f"{len(items)} record(s) in {table.table_name}", file=out)
    return DONE


def command_show(table: RecordTable, args: argparse.Namespace, out: TextIO) -> int:
    key = key_from(args, out)
    item = table.get(key)
    if item is None:
        print(f"No record for key {key} in {table.table_name}.", file=out)
        return NOT_AS_EXPECTED
    if args.json:
        print(json.dumps(item, indent=2, default=_json_value), file=out)
    else:
        print("\n".join(show_lines(item, time.time())), file=out)
    return DONE


def command_release(table: RecordTable, args: argparse.Namespace, out: TextIO) -> int:
    key = key_from(args, out)
    released, woken, item = table.release(key, args.owner)
    if released:
        print(
            f"Released {key}: it was {record.IN_PROGRESS}, held by {args.owner}; {woken} waiting execution(s) woken. "
            "The next execution with this input takes it.",
            file=out,
        )
        return DONE
    if item is None:
        reason = "there is no record with this key"
    elif item.get(record.STATUS) != record.IN_PROGRESS:
        reason = f"the record is {item.get(record.STATUS)}, not {record.IN_PROGRESS} (delete removes a finished record)"
    else:
        reason = f"the record is held by {item.get(record.EXECUTION_ID)}, not by {args.owner}"
    print(f"Not released: {reason}. Nothing was changed.", file=out)
    return NOT_AS_EXPECTED


def command_delete(table: RecordTable, args: argparse.Namespace, out: TextIO, ask: Callable[[str], str]) -> int:
    key = key_from(args, out)
    if not args.yes:
        item = table.get(key)
        if item is None:
            print(f"No record for key {key} in {table.table_name}.", file=out)
            return NOT_AS_EXPECTED
        question = f"Delete record {key} ({item.get(record.STATUS)}, owner {item.get(record.EXECUTION_ID)})? [y/N] "
        try:
            answer = ask(question)
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Not deleted (answer y, or pass --yes).", file=out)
            return NOT_AS_EXPECTED
    deleted, woken = table.delete(key)
    if deleted is None:
        print(f"No record for key {key} in {table.table_name}.", file=out)
        return NOT_AS_EXPECTED
    print(f"Deleted {key} (it was {deleted.get(record.STATUS)}, owner {deleted.get(record.EXECUTION_ID)}; {woken} waiting execution(s) woken).", file=out)
    return DONE


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="records.py",
        description="List, show, release and delete the workflow's idempotency records.",
        epilog=(
            "A record is named by KEY or by --input (an execution input, as a file or JSON text). "
            "Exit status: 0 done; 1 no such record, release refused or delete not confirmed; 2 bad usage."
        ),
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--table", metavar="NAME", help="the idempotency table's name")
    target.add_argument("--stack-name", metavar="NAME", help="find the table from this stack's outputs")
    parser.add_argument("--endpoint-url", metavar="URL", help="an endpoint other than AWS (the local one: http://127.0.0.1:4566)")
    parser.add_argument("--region", help="the table's region (default: boto3's configured region)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="every record: key, status, owner, ttl as a date, expired?")
    listing.add_argument("--status", choices=(record.IN_PROGRESS, record.SUCCESS, record.FAILED), help="only records in this status")
    listing.add_argument("--json", action="store_true", help="the records as JSON")

    show = commands.add_parser("show", help="one record, every attribute")
    _add_record_choice(show)
    show.add_argument("--json", action="store_true", help="the record as JSON")

    release = commands.add_parser("release", help=f"{record.IN_PROGRESS} to absent, only if still held by --owner")
    _add_record_choice(release)
    release.add_argument("--owner", required=True, metavar="EXECUTION_ARN", help="the execution that must still hold the record")

    delete = commands.add_parser("delete", help="remove a record whatever its state (asks first)")
    _add_record_choice(delete)
    delete.add_argument("--yes", action="store_true", help="do not ask")
    return parser


def _add_record_choice(command: argparse.ArgumentParser) -> None:
    which = command.add_mutually_exclusive_group(required=True)
    which.add_argument("key", nargs="?", metavar="KEY", help="the record's key (hex SHA-256)")
    which.add_argument("--input", metavar="FILE|JSON", help="an execution input: its key is computed as the workflow computes it")


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout, ask: Callable[[str], str] = input) -> int:
    args = build_parser().parse_args(argv)
    session = boto3.session.Session(region_name=args.region)
    table_name = args.table or f"of stack {args.stack_name}"
    try:
        if args.table:
            table_name = args.table
        else:
            table_name = table_name_of_stack(session.client("cloudformation", endpoint_url=args.endpoint_url), args.stack_name)
        table = RecordTable(
            session.client("dynamodb", endpoint_url=args.endpoint_url), table_name, session.client("stepfunctions", endpoint_url=args.endpoint_url)
        )
        if args.command == "list":
            return command_list(table, args, out)
        if args.command == "show":
            return command_show(table, args, out)
        if args.command == "release":
            return command_release(table, args, out)
        return command_delete(table, args, out, ask)
    except (UsageError, StackNotFound) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            print(f"error: table {table_name} not found ({error.response['Error'].get('Message', '')})", file=sys.stderr)
            return USAGE
        raise
    except BotoCoreError as error:  # no region, no credentials, endpoint unreachable
        print(f"error: {error}", file=sys.stderr)
        return USAGE


if __name__ == "__main__":
    sys.exit(main())
