"""Where records are written: ``RecordStore``, every conditional write the envelope makes, each named once.

Each change of state is one conditional write, so a record is never changed by an execution that
does not own it:

* ``put_owned``: the take's put that makes the caller the IN_PROGRESS owner, while the record is
  still as its read found it (absent, expired, FAILED and quiet, or held by an owner that can no
  longer act);
* ``extend_lease``: the holder is alive, its lease is extended instead of taken over;
* ``count_waiter``: a waiter takes slot ``n`` (a counter on the record) of the live record's holder;
* ``save_outcome``: IN_PROGRESS owned by the caller → SUCCESS (with the result) or FAILED;
* ``cut_lease``, ``keep_until``, ``put_held_for_ended``: an owner that ended without saving
  (``ending.end_ownership``).

A record whose ``ttl`` has passed counts as absent in every condition here, because DynamoDB's
TTL deletion may come days late.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from idempotency.decision import Take, TakeRequest
from idempotency.errors import IdempotencyRecordLostError
from idempotency.record import (
    CAUSE,
    CHILD_EXECUTION,
    ENDED_UNSAVED,
    ERROR,
    EXECUTION_ID,
    ID,
    LEASE_EXPIRY,
    PAYLOAD_HASH,
    RESULT,
    RUN_ID,
    START_TIME,
    STATUS,
    TTL,
    WAITERS,
    Failure,
    Owner,
    SavedOutcome,
    StoredRecord,
    live,
    number_of,
    parse_record,
)
from idempotency.retries import with_retries
from idempotency.vocabulary import Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_NOT_LIVE = "attribute_not_exists(#id) OR #ttl < :now"
# The record is IN_PROGRESS and owned by the given run of the given execution ...
_OWNED = "#status = :in_progress AND #execution_id = :execution_id AND #run_id = :run_id"
# ... or FAILED by its release after it ended unsaved (a redriven owner saving).
_SAVABLE = (
    "(#status = :in_progress OR (#status = :failed AND attribute_exists(#ended))) "
    "AND #execution_id = :execution_id AND #run_id = :run_id"
)
# ... and live (a waiter registering on it).
_HELD_BY = f"{_OWNED} AND #ttl >= :now"
# An ended execution's IN_PROGRESS record, still live (whichever run of it).
_HELD_BY_ENDED = "#execution_id = :execution_id AND #status = :in_progress AND #ttl >= :now"

_NAMES = {
    "#id": ID,
    "#ttl": TTL,
    "#status": STATUS,
    "#lease": LEASE_EXPIRY,
    "#execution_id": EXECUTION_ID,
    "#run_id": RUN_ID,
    "#result": RESULT,
    "#error": ERROR,
    "#cause": CAUSE,
    "#waiters": WAITERS,
    "#ended": ENDED_UNSAVED,
}


def _names(expression: str) -> dict[str, str]:
    """The ``ExpressionAttributeNames`` an expression uses (DynamoDB rejects unused ones)."""
    return {placeholder: name for placeholder, name in _NAMES.items() if placeholder in expression}


def _text(value: str) -> dict[str, str]:
    return {"S": value}


def _number(value: int) -> dict[str, str]:
    return {"N": str(value)}


@dataclass(frozen=True)
class Written:
    """A conditional write: whether it landed, and the record it left or that refused it (None: none is there)."""

    landed: bool
    record: StoredRecord | None


@dataclass(frozen=True)
class RecordStore:
    """The records table: its client, its name, and how long a record and an owner's lease last."""

    client: DynamoDBClient
    table_name: str
    record_ttl_seconds: int
    lease_seconds: int

    # ----------------------------------------------------------------------- reading
    def read(self, key: str) -> StoredRecord | None:
        """The record of ``key`` by a strongly consistent read (billed 1 RRU per 4 KB), or None."""
        response = with_retries(
            lambda: self.client.get_item(TableName=self.table_name, Key={ID: _text(key)}, ConsistentRead=True)
        )
        return parse_record(response.get("Item"))

    def read_live(self, key: str, now: int) -> StoredRecord | None:
        """The record of ``key`` if it still counts at ``now``."""
        return live(self.read(key), now)

    # ----------------------------------------------------------------------- taking
    def put_owned(self, request: TakeRequest, now: int, take: Take) -> Written:
        """Put the caller's IN_PROGRESS record while the record is still ``take.seen`` (or none is live)."""
        item = self.in_progress_item(
            request.key, request.owner, ttl=now + self.record_ttl_seconds, lease_expiry=now + self.lease_seconds
        )
        if request.payload_hash is not None:
            item[PAYLOAD_HASH] = _text(request.payload_hash)
        # The child it runs: a failed owner's it resumes, or its own.
        child_execution = take.child.execution_arn if take.child is not None else request.child_execution
        if child_execution is not None:
            item[CHILD_EXECUTION] = _text(child_execution)
        condition, values = _NOT_LIVE, {":now": _number(now)}
        if take.seen is not None:
            still_so, same_holder = _unchanged(take.seen)
            condition, values = f"{_NOT_LIVE} OR ({still_so})", {**values, **same_holder}
        return self._put_if(item, condition, values)

    def extend_lease(self, seen: StoredRecord, lease_expiry: int) -> Written:
        """Extend the lease of a holder found alive, if the record is still as ``seen``."""
        condition, values = _unchanged(seen)
        return self._update_if(
            seen.key, "SET #lease = :new_lease", condition, {**values, ":new_lease": _number(lease_expiry)}
        )

    # ----------------------------------------------------------------------- waiting
    def count_waiter(self, key: str, holder: Owner, now: int) -> int | None:
        """Hand out the next waiter slot of the live IN_PROGRESS record of ``holder``: its number, or None when
        the record changed (saved, released, taken over, expired)."""
        # A record written without a run id (by hand, or by an earlier version) is held by the execution alone.
        condition = (
            _HELD_BY
            if holder.run_id
            else _HELD_BY.replace("#run_id = :run_id", "(attribute_not_exists(#run_id) OR #run_id = :run_id)")
        )
        try:
            response = with_retries(
                lambda: self.client.update_item(
                    TableName=self.table_name,
                    Key={ID: _text(key)},
                    UpdateExpression="ADD #waiters :one",
                    ConditionExpression=condition,
                    ExpressionAttributeNames=_names(condition + "#waiters"),
                    ExpressionAttributeValues={
                        ":one": _number(1),
                        ":in_progress": _text(Status.IN_PROGRESS),
                        ":execution_id": _text(holder.execution_id),
                        ":now": _number(now),
                        ":run_id": _text(holder.run_id),
                    },
                    ReturnValues="UPDATED_NEW",
                )
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return number_of(response["Attributes"], WAITERS) or 0

    # ----------------------------------------------------------------------- saving
    def save_outcome(
        self, key: str, owner: Owner, *, result_json: str | None = None, failure: Failure | None = None
    ) -> SavedOutcome:
        """Store SUCCESS with ``result_json`` (or FAILED with ``failure``) if ``owner`` still owns the record.

        The write is conditional on the record being IN_PROGRESS and owned by this run of the owner,
        so an owner that lost the record cannot overwrite a newer owner's, and a save never creates
        a record. A reply lost on the way is retried; saving again what the same owner already saved
        succeeds, so a retried invocation is harmless. A FAILED record is not taken again before
        ``failure.quiet_until``: the failed steps' other calls may still run. A failure the release
        recorded after this owner ended unsaved is overwritten: the owner was redriven.

        Raises:
            IdempotencyRecordLostError: another execution owns the record now, or it is gone.
        """
        status, update, values = _outcome_update(result_json, failure)
        owned = {
            ":in_progress": _text(Status.IN_PROGRESS),
            ":failed": _text(Status.FAILED),
            ":execution_id": _text(owner.execution_id),
            ":run_id": _text(owner.run_id),
        }
        written = self._update_if(key, update, _SAVABLE, {**values, **owned})
        found = written.record
        if not written.landed and not (
            found is not None
            and found.execution_id == owner.execution_id
            and found.run_id == owner.run_id
            and found.status == status
        ):
            raise IdempotencyRecordLostError(
                f"Record {key} is no longer IN_PROGRESS and owned by {owner.execution_id} "
                f"(now {found.status if found and found.status else 'absent'}, "
                f"owned by {found.execution_id if found else None}); another execution took it over after this one "
                "could no longer be seen running, or it was released. This execution's outcome was not stored."
            )
        return SavedOutcome(key, status, owner.tag, found.waiters if found else 0)

    # ----------------------------------------------------------------------- an owner that ended without saving
    def cut_lease(self, key: str, ended: Owner, now: int, free_at: int, failure: Failure | None) -> Written:
        """Cut the lease of the live IN_PROGRESS record ``ended`` holds to ``free_at`` (FAILED with ``failure``)."""
        values: dict[str, Any] = {":free_at": _number(free_at)}
        if failure is None:
            update = "SET #lease = :free_at"
        else:
            update = "SET #lease = :free_at, #status = :failed, #error = :error, #cause = :cause, #ended = :ended"
            values.update({":failed": _text(Status.FAILED), ":ended": {"BOOL": True}, **_failure_values(failure)})
        return self._update_if(key, update, _HELD_BY_ENDED, {**values, **_held_by_ended(ended, now)})

    def keep_until(self, key: str, ended: Owner, now: int, keep_until: int) -> Written:
        """Raise the ``ttl`` of the record ``ended`` holds to ``keep_until``."""
        values = {**_held_by_ended(ended, now), ":keep_until": _number(keep_until)}
        return self._update_if(key, "SET #ttl = :keep_until", _HELD_BY_ENDED, values)

    def put_held_for_ended(self, key: str, ended: Owner, now: int, free_at: int) -> bool:
        """Put a record held by ``ended`` until ``free_at`` if none is live; False when one appeared meanwhile."""
        item = self.in_progress_item(key, ended, ttl=now + self.record_ttl_seconds, lease_expiry=free_at)
        return self._put_if(item, _NOT_LIVE, {":now": _number(now)}).landed

    # ----------------------------------------------------------------------- helpers
    @staticmethod
    def in_progress_item(key: str, owner: Owner, ttl: int, lease_expiry: int) -> dict[str, Any]:
        """A record held IN_PROGRESS by ``owner``, with no waiter yet (DynamoDB's attribute-value form)."""
        return {
            ID: _text(key),
            STATUS: _text(Status.IN_PROGRESS),
            EXECUTION_ID: _text(owner.execution_id),
            RUN_ID: _text(owner.run_id),
            START_TIME: _text(owner.start_time),
            TTL: _number(ttl),
            LEASE_EXPIRY: _number(lease_expiry),
            WAITERS: _number(0),
        }

    def _put_if(self, item: dict[str, Any], condition: str, values: dict[str, Any]) -> Written:
        """A conditional put of a record: landed, or refused by the record returned with the refusal."""
        try:
            with_retries(
                lambda: self.client.put_item(
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=_names(condition),
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            )
        except self.client.exceptions.ConditionalCheckFailedException as refused:
            return Written(False, _record_of_refusal(refused))
        return Written(True, None)

    def _update_if(self, key: str, update: str, condition: str, values: dict[str, Any]) -> Written:
        """A conditional update of the record: the record after it, or the record that refused it."""
        try:
            response = with_retries(
                lambda: self.client.update_item(
                    TableName=self.table_name,
                    Key={ID: _text(key)},
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=_names(update + condition),
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            )
        except self.client.exceptions.ConditionalCheckFailedException as refused:
            return Written(False, _record_of_refusal(refused))
        return Written(True, parse_record(response["Attributes"]))


def _outcome_update(result_json: str | None, failure: Failure | None) -> tuple[Status, str, dict[str, Any]]:
    """The status a save stores, its update expression and values."""
    if failure is None:
        values: dict[str, Any] = {
            ":status": _text(Status.SUCCESS),
            ":result": _text(result_json if result_json is not None else "null"),
        }
        return Status.SUCCESS, "SET #status = :status, #result = :result REMOVE #lease, #ended, #error, #cause", values
    update = "SET #status = :status, #error = :error, #cause = :cause"
    values = {":status": _text(Status.FAILED), **_failure_values(failure)}
    if failure.quiet_until is None:
        return Status.FAILED, update + " REMOVE #lease, #ended", values
    values[":quiet_until"] = _number(failure.quiet_until)
    return Status.FAILED, update + ", #lease = :quiet_until REMOVE #ended", values


def _unchanged(seen: StoredRecord) -> tuple[str, dict[str, Any]]:
    """A condition that holds while the record is still as ``seen`` (status, owner, run, lease), with its values."""
    parts = ["#status = :seen_status", "#execution_id = :execution_id"]
    values: dict[str, Any] = {":seen_status": _text(seen.status or ""), ":execution_id": _text(seen.execution_id or "")}
    if seen.run_id is not None:
        parts.append("#run_id = :run_id")
        values[":run_id"] = _text(seen.run_id)
    else:
        parts.append("attribute_not_exists(#run_id)")
    if seen.lease_expiry is not None:
        parts.append("#lease = :lease")
        values[":lease"] = _number(seen.lease_expiry)
    else:
        parts.append("attribute_not_exists(#lease)")
    return " AND ".join(parts), values


def _held_by_ended(ended: Owner, now: int) -> dict[str, Any]:
    return {":execution_id": _text(ended.execution_id), ":in_progress": _text(Status.IN_PROGRESS), ":now": _number(now)}


def _failure_values(failure: Failure) -> dict[str, Any]:
    """A failure's error and cause as stored: cut to what Step Functions itself allows."""
    return {":error": _text(failure.stored_error), ":cause": _text(failure.stored_cause)}


def _record_of_refusal(refused: Exception) -> StoredRecord | None:
    """The record DynamoDB returned with a refused condition (``ReturnValuesOnConditionCheckFailure``)."""
    item = getattr(refused, "response", {}).get("Item")
    return parse_record(item) if isinstance(item, dict) else None
