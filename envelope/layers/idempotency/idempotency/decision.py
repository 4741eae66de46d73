"""The take's decision on a record: a pure function of the record as read, the request and the clock.

``decide`` reads nothing and writes nothing. It says what to do: answer at once (``TakeOutcome``:
a stored result, a holder to wait for, a failure to fail with), take the record while it is still
as read (``Take``), ask Step Functions about its holder first (``AskHolder``: decide again with the
answer), or redrive an ended holder rather than take its record over (``Resume``). ``take.take_record``
carries the decision out through the store.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from idempotency.errors import IdempotencyPayloadMismatchError
from idempotency.key import mismatch_message
from idempotency.record import UNKNOWN_STEP_ERROR, Holder, Liveness, Owner, StoredRecord
from idempotency.vocabulary import Outcome, Status


@dataclass(frozen=True)
class TakeRequest:
    """What an execution asks of the record of ``key``.

    ``may_take_failed``: a FAILED record may be taken (False for a waiter whose policy is to fail
    with the owner's failure). ``reported_errors``: failures that are reported to the caller rather
    than run again.
    """

    key: str
    owner: Owner
    payload_hash: str | None = None
    child_execution: str | None = None
    may_take_failed: bool = True
    reported_errors: Collection[str] = ()


@dataclass(frozen=True)
class TakeOutcome:
    """What happened when an execution tried to take the record of ``key``."""

    outcome: Outcome
    key: str
    result: Any = None
    holder: Holder | None = None
    error: str | None = None
    cause: str | None = None
    # A BUSY record held under a lease that says when to look again at the latest (epoch seconds).
    look_again_at: int | None = None
    taken_over: bool = False
    # BUSY on an IN_PROGRESS record: its owner (or the release) wakes waiters. A FAILED record whose
    # owner's calls may still run is BUSY too, but nobody will wake anyone: its waiters poll.
    wakes_waiters: bool = True

    def as_output(self) -> dict[str, Any]:
        output: dict[str, Any] = {"outcome": self.outcome, "key": self.key}
        if self.outcome == Outcome.BUSY and self.holder is not None:
            output.update(heldBy=self.holder.execution_id, heldByRun=self.holder.run_id)
        if self.outcome == Outcome.FAILED:
            output.update(error=self.error, cause=self.cause)
        return output


@dataclass(frozen=True)
class Take:
    """Put the caller's IN_PROGRESS record while the record is still ``seen`` (None: while none is live)."""

    seen: StoredRecord | None


@dataclass(frozen=True)
class AskHolder:
    """Whether ``holder`` can still act decides: ask Step Functions, then decide again with the answer."""

    holder: Holder


@dataclass(frozen=True)
class Resume:
    """An ended holder that can still be redriven: redriven if possible, else its record is taken (``take``)."""

    holder: Holder
    take: Take


Decision = TakeOutcome | Take | AskHolder | Resume


def decide(
    record: StoredRecord | None,
    request: TakeRequest,
    now: int,
    liveness: Liveness | None = None,
    *,
    checks_liveness: bool = False,
) -> Decision:
    """What to do with the live ``record`` (None: there is none) of ``request.key`` at ``now``.

    ``checks_liveness``: Step Functions can be asked whether a holder still acts (Standard
    workflows); without it, the lease alone decides. ``liveness``: its answer about the record's
    holder, once an ``AskHolder`` asked for it.

    Raises:
        IdempotencyPayloadMismatchError: a SUCCESS or IN_PROGRESS record was written for another payload.
        IdempotencyRecordStateError: the stored record is in no state the envelope knows.
    """
    if record is None:
        return Take(None)
    completed = completed_outcome(record, request.payload_hash)
    if completed is not None:
        return completed
    look = _Look(record, request, now, liveness, checks_liveness)
    if record.known_status() == Status.FAILED:
        return _on_failed(look)
    return _on_held(look)


def completed_outcome(record: StoredRecord, payload_hash: str | None) -> TakeOutcome | None:
    """A live record's stored result (``COMPLETED``), or None when it holds none yet (IN_PROGRESS, FAILED).

    Raises:
        IdempotencyPayloadMismatchError: a SUCCESS or IN_PROGRESS record was written for another payload.
        IdempotencyRecordStateError: a record in no known state, or a SUCCESS record without its result.
    """
    status = record.known_status()
    if status in (Status.SUCCESS, Status.IN_PROGRESS):
        _check_payload(record, payload_hash)
    if status != Status.SUCCESS:
        return None
    return TakeOutcome(Outcome.COMPLETED, record.key, result=record.result())


@dataclass(frozen=True)
class _Look:
    """One look at a live record that holds no result yet, by an execution that would take it."""

    record: StoredRecord
    request: TakeRequest
    now: int
    liveness: Liveness | None
    checks_liveness: bool


def _on_failed(look: _Look) -> Decision:
    record, request, now, liveness = look.record, look.request, look.now, look.liveness
    holder, key = record.holder, record.key
    error = record.error if record.error is not None else UNKNOWN_STEP_ERROR
    if not request.may_take_failed or error in request.reported_errors:
        return TakeOutcome(Outcome.FAILED, key, holder=holder, error=error, cause=record.cause or "")
    if record.ended_unsaved and holder.execution_id == request.owner.execution_id:
        return Take(record)  # that owner itself, redriven: it takes its record back (if it runs: take_record asks)
    if holder.lease_expiry >= now:
        # The failed owner's other calls may still run (a Parallel's branches): not yet.
        return TakeOutcome(Outcome.BUSY, key, holder=holder, look_again_at=holder.lease_expiry + 1, wakes_waiters=False)
    if not (record.ended_unsaved and look.checks_liveness):
        return Take(record)
    # Its steps may have run; a redrive would continue it: resumed rather than run again.
    if liveness is None:
        return AskHolder(holder)
    if liveness.can_act:
        return TakeOutcome(Outcome.BUSY, key, holder=holder, wakes_waiters=False)  # redriven already: waited for
    if liveness.redrivable:
        return Resume(holder, Take(record))
    return Take(record)


def _on_held(look: _Look) -> Decision:
    record, now, liveness = look.record, look.now, look.liveness
    holder, owner, key = record.holder, look.request.owner, record.key
    if holder.execution_id == owner.execution_id and (holder.run_id == owner.run_id or look.checks_liveness):
        # A retried invocation whose first attempt took the record but lost the reply; or (Standard, which
        # runs one run at a time) the record its release left, found by that execution redriven.
        return Take(record)
    if holder.lease_expiry >= now:
        return TakeOutcome(Outcome.BUSY, key, holder=holder, look_again_at=holder.lease_expiry + 1)
    if not look.checks_liveness:
        return Take(record)
    if liveness is None:
        return AskHolder(holder)
    if liveness.can_act:
        return TakeOutcome(Outcome.BUSY, key, holder=holder)  # take_record extends the lease
    if liveness.free_at > now:
        return TakeOutcome(Outcome.BUSY, key, holder=holder, look_again_at=liveness.free_at + 1)
    if liveness.redrivable and holder.run_id:  # no run: the record its release left for it, which it never took
        return Resume(holder, Take(record))
    return Take(record)


def _check_payload(record: StoredRecord, payload_hash: str | None) -> None:
    # A record written without a hash (validation off then, or an earlier version) is never compared.
    if payload_hash is not None and record.payload_hash is not None and record.payload_hash != payload_hash:
        raise IdempotencyPayloadMismatchError(mismatch_message(record.key))
