"""The take's decision on a record: a pure function of the record as read, the request and the clock.

``decide`` reads nothing and writes nothing. It says what to do: answer at once (``TakeOutcome``:
a stored result, a holder to wait for, a failure to fail with), take the record while it is still
as read (``Take``), ask Step Functions about its holder first (``AskHolder``: decide again with the
answer) or about the child a failed holder ran (``AskChild``), or redrive an ended holder rather than
take its record over (``Resume``). ``take.take_record`` carries the decision out through the store.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from idempotency.errors import IdempotencyPayloadMismatchError
from idempotency.key import mismatch_message
from idempotency.record import UNKNOWN_STEP_ERROR, ChildState, Holder, Liveness, Owner, StoredRecord
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
class ChildRun:
    """The child execution an owner runs its work in (child variant): one it starts, or a failed one it resumes.

    ``started_by``: the execution whose name the child has, and whose ARN its input carries (the one that
    started it). ``redrive_count``: how often it was redriven when the take looked: the owner redrives it
    only while that is still so (one redrive per look, never a loop on a child that keeps failing).
    """

    execution_arn: str
    started_by: str
    redrive_count: int = 0

    @property
    def name(self) -> str:
        return self.execution_arn.rsplit(":", 1)[-1]


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
    # ACQUIRED on a failed owner's record whose child may run again (child variant): the child to resume.
    resumed_child: ChildRun | None = None
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
    """Put the caller's IN_PROGRESS record while the record is still ``seen`` (None: while none is live).

    ``child``: the failed owner's child that the caller resumes instead of starting its own (child variant).
    """

    seen: StoredRecord | None
    child: ChildRun | None = None


@dataclass(frozen=True)
class AskHolder:
    """Whether ``holder`` can still act decides: ask Step Functions, then decide again with the answer."""

    holder: Holder


@dataclass(frozen=True)
class Resume:
    """An ended holder that can still be redriven: redriven if possible, else its record is taken (``take``)."""

    holder: Holder
    take: Take


@dataclass(frozen=True)
class AskChild:
    """Whether the child a failed ``holder`` ran may run again decides: ask Step Functions, then decide again."""

    holder: Holder


Decision = TakeOutcome | Take | AskHolder | AskChild | Resume


def decide(
    record: StoredRecord | None,
    request: TakeRequest,
    now: int,
    liveness: Liveness | None = None,
    *,
    checks_liveness: bool = False,
    child_state: ChildState | None = None,
) -> Decision:
    """What to do with the live ``record`` (None: there is none) of ``request.key`` at ``now``.

    ``checks_liveness``: Step Functions can be asked whether a holder still acts (Standard
    workflows); without it, the lease alone decides. ``liveness``: its answer about the record's
    holder, once an ``AskHolder`` asked for it. ``child_state``: its answer about the child a failed
    holder ran, once an ``AskChild`` asked for it.

    Raises:
        IdempotencyPayloadMismatchError: a SUCCESS or IN_PROGRESS record was written for another payload, or
            a FAILED one whose child the caller would resume (the child reruns with the first run's input).
        IdempotencyRecordStateError: the stored record is in no state the envelope knows.
    """
    if record is None:
        return Take(None)
    completed = completed_outcome(record, request.payload_hash)
    if completed is not None:
        return completed
    look = _Look(record, request, now, liveness, checks_liveness, child_state)
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
    child_state: ChildState | None = None


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
    if not record.ended_unsaved and look.checks_liveness and holder.child_execution and request.child_execution:
        return _on_failed_child(look)
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


def _on_failed_child(look: _Look) -> Decision:
    """A child that failed on its own (child variant): resumed while Step Functions can still run it again.

    Its redrive reruns only its unsuccessful states, with its first input; a new child would run the
    work again, beside anything an operator redrives of the old one later. So the record is taken with
    that child: the caller redrives it (or follows it, if an operator already did) instead of starting
    its own. Only once it can never run again (past the redrive period, or gone) is a new child started.
    """
    record, request, now, child_state = look.record, look.request, look.now, look.child_state
    holder = record.holder
    if child_state is None:
        return AskChild(holder)
    if child_state.in_doubt:  # no answer: never start a second child beside one that may run
        return TakeOutcome(Outcome.BUSY, record.key, holder=holder, look_again_at=now + 1, wakes_waiters=False)
    if not child_state.may_run_again or holder.child_execution is None:
        return Take(record)
    # The resumed child runs with the first run's input: a repeat must be the same request.
    _check_payload(record, request.payload_hash)
    return Take(record, ChildRun(holder.child_execution, child_state.started_by, child_state.redrive_count))


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
