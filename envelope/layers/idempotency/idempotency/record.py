"""The idempotency record: its attribute names, and the one reading of a DynamoDB item into a typed record.

One item per key (partition key ``id`` = the key) holds the record. ``parse_record`` is the only
place in the layer that reads DynamoDB's attribute types (``S``, ``N``, ``BOOL``): everything else
takes a ``StoredRecord``. Writes are the store's (``store.RecordStore``); the take's decision on
a record is ``decision.decide``; waiter slots are ``waiter_slots``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from idempotency.errors import IdempotencyRecordStateError
from idempotency.vocabulary import Status

# Attribute names of the record (docs/contract.md, "The record").
ID = "id"
STATUS = "executionstatus"
RESULT = "executionresult"
EXECUTION_ID = "executionid"
# Which run of that execution owns the record: an Express execution may run more than once
# (at-least-once), with the same ARN. The entry time of the execution's first state tells runs apart.
RUN_ID = "runid"
START_TIME = "starttime"
TTL = "ttl"
# Until when the owner is presumed able to act; after it, a look at the record checks on the owner.
LEASE_EXPIRY = "leaseexpiry"
ERROR = "error"
CAUSE = "cause"
# How many waiter slots were handed out while the record was IN_PROGRESS (a number, never tokens).
WAITERS = "waiters"
# Child variant: the child execution the owner starts (it may outlive its parent for a while).
CHILD_EXECUTION = "childexecution"
# SHA-256 of the validated part of the input (payload validation); absent when validation is off.
PAYLOAD_HASH = "payloadhash"
# Set by the release on a failure it recorded for an owner that ended without saving (its save or
# another envelope state kept failing): that owner may still be redriven, and its redriven save
# may then store its outcome over this failure.
ENDED_UNSAVED = "endedunsaved"

# DynamoDB's item limit (UTF-8 bytes of names and values). A result is at most what a state can
# carry beside the envelope's own fields (limits.MAX_RESULT_BYTES), far below this, so a record
# with its result always fits.
MAX_ITEM_BYTES = 400 * 1024
# A cause longer than Step Functions allows (32,768 characters) is cut: it could not be reported anyway.
MAX_CAUSE_CHARS = 32_768
MAX_ERROR_CHARS = 256
# The error a failure is recorded with when the steps' own error is unknown.
UNKNOWN_STEP_ERROR = "States.TaskFailed"


@dataclass(frozen=True)
class Owner:
    """The execution (and which run of it) that owns, or would own, a record."""

    execution_id: str
    run_id: str
    # The start of the execution (ISO 8601), written on a record it takes; unknown ("") to a save.
    start_time: str = ""

    @property
    def tag(self) -> str:
        return owner_tag(self)


@dataclass(frozen=True)
class Holder:
    """The execution a record is held by, as a look at the record found it."""

    execution_id: str
    run_id: str
    lease_expiry: int
    child_execution: str | None = None

    @property
    def owner(self) -> Owner:
        return Owner(self.execution_id, self.run_id)

    @property
    def tag(self) -> str:
        return owner_tag(self.owner)


@dataclass(frozen=True)
class Liveness:
    """Whether a holder can still act (it or a call it started still runs), and if not, from when its key is free.

    ``redrivable``: the holder ended but Step Functions can still redrive it (a Standard execution
    that failed, was stopped or timed out, less than 14 days ago). A redrive would continue its
    steps, so its record is never taken over: it is resumed instead (``take.ResumeHolder``).
    """

    can_act: bool
    free_at: int = 0
    redrivable: bool = False


@dataclass(frozen=True)
class ChildState:
    """What Step Functions says of the child execution a failed owner ran (child variant), asked by the next run.

    ``may_run_again``: the child is the one its name's parent started (its input's started-by field), and
    it runs, succeeded (an operator redrove it), or ended and can still be redriven: the next run resumes it
    rather than start another. ``started_by``: that parent. ``redrive_count``: how often it was redriven
    so far. ``in_doubt``: Step Functions did not answer; the next run looks again rather than guess.
    """

    may_run_again: bool
    started_by: str = ""
    redrive_count: int = 0
    in_doubt: bool = False


@dataclass(frozen=True)
class Failure:
    """A failure to record: the error and cause the steps failed with, and how long the record stays quiet.

    ``quiet_until``: a FAILED record is not taken again before then (the failed steps' other calls
    may still run); None when nothing of them runs.
    """

    error: str
    cause: str | None = None
    quiet_until: int | None = None

    @property
    def stored_error(self) -> str:
        return self.error[:MAX_ERROR_CHARS]

    @property
    def stored_cause(self) -> str:
        return (self.cause or "")[:MAX_CAUSE_CHARS]


@dataclass(frozen=True)
class StoredRecord:
    """A record as DynamoDB holds it, read once (``parse_record``).

    ``status`` is what is stored, which an operator may have edited into anything: ``known_status``
    says which ``Status`` it is, or raises. Attributes a record may lack are None (``run_id`` and
    ``lease_expiry`` too: a record written by hand or by an earlier version may have neither).
    """

    key: str
    status: str | None
    execution_id: str | None = None
    run_id: str | None = None
    start_time: str | None = None
    ttl: int = 0
    lease_expiry: int | None = None
    result_json: str | None = None
    error: str | None = None
    cause: str | None = None
    waiters: int = 0
    child_execution: str | None = None
    payload_hash: str | None = None
    ended_unsaved: bool = False

    def is_live(self, now: int) -> bool:
        """Whether the record still counts: DynamoDB's TTL deletion may come days after its ``ttl``."""
        return self.ttl >= now

    @property
    def holder(self) -> Holder:
        return Holder(
            execution_id=self.execution_id or "",
            run_id=self.run_id or "",
            lease_expiry=self.lease_expiry or 0,
            child_execution=self.child_execution,
        )

    def known_status(self) -> Status:
        """The record's status.

        Raises:
            IdempotencyRecordStateError: the stored status is none the envelope knows.
        """
        if self.status not in tuple(Status):
            raise IdempotencyRecordStateError(
                f"Record {self.key} has {STATUS}={self.status!r}; expected "
                f"{Status.IN_PROGRESS}, {Status.SUCCESS} or {Status.FAILED}."
            )
        return Status(self.status)

    def result(self) -> Any:
        """The stored result of a SUCCESS record.

        Raises:
            IdempotencyRecordStateError: the record holds no result.
        """
        if self.result_json is None:
            raise IdempotencyRecordStateError(f"Record {self.key} is {Status.SUCCESS} but has no {RESULT}.")
        return json.loads(self.result_json)


def parse_record(item: Mapping[str, Any] | None) -> StoredRecord | None:
    """The typed record of a DynamoDB item (its attribute-value form), or None when there is no item."""
    if not item or ID not in item:
        return None

    def text(name: str) -> str | None:
        return text_of(item, name)

    def number(name: str) -> int | None:
        return number_of(item, name)

    return StoredRecord(
        key=text(ID) or "",
        status=text(STATUS),
        execution_id=text(EXECUTION_ID),
        run_id=text(RUN_ID),
        start_time=text(START_TIME),
        ttl=number(TTL) or 0,
        lease_expiry=number(LEASE_EXPIRY),
        result_json=text(RESULT),
        error=text(ERROR),
        cause=text(CAUSE),
        waiters=number(WAITERS) or 0,
        child_execution=text(CHILD_EXECUTION),
        payload_hash=text(PAYLOAD_HASH),
        ended_unsaved=ENDED_UNSAVED in item,
    )


def text_of(item: Mapping[str, Any], name: str) -> str | None:
    """The string attribute ``name`` of an item (attribute-value form), or None."""
    value = item.get(name, {}).get("S")
    return value if isinstance(value, str) else None


def number_of(item: Mapping[str, Any], name: str) -> int | None:
    """The number attribute ``name`` of an item (attribute-value form), or None."""
    value = item.get(name, {}).get("N")
    return int(value) if value is not None else None


def live(record: StoredRecord | None, now: int) -> StoredRecord | None:
    """``record`` if it still counts at ``now``, else None (absent)."""
    return record if record is not None and record.is_live(now) else None


def owner_tag(owner: Owner) -> str:
    """A short name for one run of an owner, under which its waiters' slots are written."""
    return hashlib.sha256(f"{owner.execution_id}\n{owner.run_id}".encode()).hexdigest()[:16]


def encode_result(result: Any) -> str:
    """The stored form of a result: compact JSON as UTF-8 text (ASCII escapes may take six times the bytes)."""
    return json.dumps(result, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class SavedOutcome:
    """A record just saved (or released), with what its waiters need: where their slots are and how many."""

    key: str
    status: str
    owner_tag: str
    waiter_count: int

    @classmethod
    def of(cls, record: StoredRecord) -> SavedOutcome:
        """A record's status, and where and how many its waiter slots are: those handed out under its current holder."""
        return cls(record.key, record.status or "", record.holder.tag, record.waiters)
