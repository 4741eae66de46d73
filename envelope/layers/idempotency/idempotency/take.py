"""Taking a record: read it once, decide (``decision.decide``), and write only when it is free.

A strongly consistent read answers a hit (``COMPLETED``) and a record held by a live owner
(``BUSY``) without any write. Only a free record is written, by a put conditional on the record
still being what the read found; if another execution won the race, the record returned with the
refusal is decided on instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from idempotency.decision import (
    AskChild,
    AskHolder,
    Decision,
    Resume,
    Take,
    TakeOutcome,
    TakeRequest,
    completed_outcome,
    decide,
)
from idempotency.errors import IdempotencyExecutionEndedError
from idempotency.record import ChildState, Holder, Liveness, StoredRecord, live
from idempotency.store import RecordStore
from idempotency.vocabulary import Outcome, Status

# Decides whether the holder of an expired lease can still act (asks Step Functions).
LivenessCheck = Callable[[Holder, int], Liveness]
# Whether an execution still runs (asks Step Functions; a doubt counts as running).
RunningCheck = Callable[[str], bool]
# Redrives an ended holder that can still be redriven (RedriveExecution): True when it runs again
# (by this call or another), False when it can never run again (then its record may be taken over).
ResumeHolder = Callable[[Holder], bool]
# What the child a failed holder ran can still do (child variant; asks Step Functions), given that child's ARN
# and the caller's own execution ARN (the child's parent is the caller's state machine's execution of its name).
ChildCheck = Callable[[str, str], ChildState]
# A holder's child that nobody can ask about: it is never resumed.
_NOT_RESUMABLE = ChildState(may_run_again=False)


@dataclass(frozen=True)
class HolderChecks:
    """What Step Functions is asked about a record's holder (Standard workflows); None each: the lease alone decides.

    ``liveness``: whether the holder of an expired lease can still act. ``still_running``: whether
    the caller's own execution still runs before it replaces a record. ``resume``: redrive an ended
    holder that can still be redriven instead of taking its record over. ``child``: whether the child
    a failed holder ran may run again (child variant): then the caller resumes it.
    """

    liveness: LivenessCheck | None = None
    still_running: RunningCheck | None = None
    resume: ResumeHolder | None = None
    child: ChildCheck | None = None


NO_CHECKS = HolderChecks()


def take_record(store: RecordStore, request: TakeRequest, now: int, checks: HolderChecks = NO_CHECKS) -> TakeOutcome:
    """Look at the record of ``request.key`` and take it as IN_PROGRESS for ``request.owner`` if it is free.

    An expired lease is taken over only when ``checks.liveness`` says its holder can no longer act
    (without it, an Express workflow, the lease alone decides); a live holder's lease is extended.

    A record that exists is only replaced by an execution ``checks.still_running`` says runs: a
    take still running after its own execution ended (a Lambda call outlives a stop) would
    otherwise take the record back for an execution that will never save, once the record its
    release left has gone quiet. A fresh key needs no such look: that release, which comes after
    the end, finds the late take's record and cuts it, or leaves a record of its own first.

    A holder that ended but can still be redriven is never taken over: any redrive, by an
    operator or not, would continue its steps beside the new owner's. Once its calls can have
    ended, ``checks.resume`` redrives it instead, and the caller waits for it like any live
    holder (its lease is extended); the record changes owner only once the holder can never run
    again. In the child variant, a FAILED record whose child ``checks.child`` says may run again is
    taken with that child (``TakeOutcome.resumed_child``): the caller resumes it rather than start one.

    Raises:
        IdempotencyExecutionEndedError: the caller's execution has ended; nothing was written.
        IdempotencyPayloadMismatchError: the record was written for another payload with this key.
        IdempotencyRecordStateError: the stored record is in no state the envelope knows.
    """
    seen = store.read_live(request.key, now)
    for _ in range(3):
        decision = _resolved(_decided(seen, request, now, checks), seen, request, checks)
        if isinstance(decision, TakeOutcome):
            if decision.outcome != Outcome.BUSY or decision.look_again_at is not None or seen is None:
                return decision
            extended = store.extend_lease(seen, now + store.lease_seconds)
            if not extended.landed:  # the holder changed meanwhile: look at what is there now
                seen = live(extended.record, now)
                continue
            return TakeOutcome(
                Outcome.BUSY,
                request.key,
                holder=decision.holder,
                look_again_at=now + store.lease_seconds,
                wakes_waiters=decision.wakes_waiters,
            )
        if (
            seen is not None
            and checks.still_running is not None
            and not checks.still_running(request.owner.execution_id)
        ):
            raise IdempotencyExecutionEndedError(
                f"Execution {request.owner.execution_id} had ended when its take of record {request.key} ran: "
                "nothing was written."
            )
        written = store.put_owned(request, now, decision)
        if written.landed:
            taken_over = (
                seen is not None
                and seen.status == Status.IN_PROGRESS
                and seen.holder.execution_id != request.owner.execution_id
            )
            return TakeOutcome(Outcome.ACQUIRED, request.key, taken_over=taken_over, resumed_child=decision.child)
        seen = live(written.record, now)
    # Three races lost in a row: someone else keeps changing the record; wait like any waiter.
    return TakeOutcome(Outcome.BUSY, request.key, holder=seen.holder if seen else None, look_again_at=now + 1)


def _decided(seen: StoredRecord | None, request: TakeRequest, now: int, checks: HolderChecks) -> Decision:
    """The decision on ``seen``, Step Functions asked about its holder first when that decides."""
    decision = decide(seen, request, now, checks_liveness=checks.liveness is not None)
    if isinstance(decision, AskHolder) and checks.liveness is not None:
        decision = decide(seen, request, now, checks.liveness(decision.holder, now), checks_liveness=True)
    if isinstance(decision, AskChild) and decision.holder.child_execution is not None:
        asked = _NOT_RESUMABLE
        if checks.child is not None:
            asked = checks.child(decision.holder.child_execution, request.owner.execution_id)
        decision = decide(seen, request, now, checks_liveness=True, child_state=asked)
    return decision


def _resolved(
    decision: Decision, seen: StoredRecord | None, request: TakeRequest, checks: HolderChecks
) -> TakeOutcome | Take:
    """A ``Resume`` carried out: the holder waited for if it runs again, else its record taken over."""
    if isinstance(decision, (AskHolder, AskChild)):  # unreachable: _decided answers them
        raise AssertionError(decision)
    if not isinstance(decision, Resume):
        return decision
    if checks.resume is None or not checks.resume(decision.holder):
        return decision.take  # it can never run again: taken over
    # Running again: waited for, its lease extended. Waiters register only on an IN_PROGRESS record; on a
    # failure it will save over, they poll.
    in_progress = seen is not None and seen.status == Status.IN_PROGRESS
    return TakeOutcome(Outcome.BUSY, request.key, holder=decision.holder, wakes_waiters=in_progress)


def stored_result(store: RecordStore, key: str, now: int, payload_hash: str | None) -> TakeOutcome | None:
    """The stored result of ``key`` if its record is live and SUCCESS (``COMPLETED``), by one strongly
    consistent read and no write; None when the record is absent, expired, IN_PROGRESS or FAILED.

    The same reading of a record as ``take_record``'s (TTL, payload validation, states), for callers
    that answer a repeat without taking anything (the front door).

    Raises:
        IdempotencyPayloadMismatchError: the record was written for another payload with this key.
        IdempotencyRecordStateError: the stored record is in no state the envelope knows.
    """
    record = store.read_live(key, now)
    return None if record is None else completed_outcome(record, payload_hash)
