"""An owner that ended without saving (stopped, timed out, failed): its record freed once its calls can have ended."""

from __future__ import annotations

from dataclasses import dataclass

from idempotency.record import Failure, Owner, SavedOutcome, live
from idempotency.store import RecordStore


@dataclass(frozen=True)
class Ending:
    """How an owner ended: when its key is free, how long its record lives at least, and the failure to record.

    ``free_at``: when the calls it had in flight (a Lambda invocation, a child execution) can have
    finished. ``keep_until``: an ended execution Step Functions can still redrive keeps its record
    until then, so a redrive finds it and a later execution resumes it rather than start afresh.
    ``failure``: the error and cause it failed with (None: stopped or timed out).
    """

    owner: Owner
    free_at: int
    keep_until: int = 0
    failure: Failure | None = None


def end_ownership(store: RecordStore, key: str, ending: Ending, now: int) -> SavedOutcome | None:
    """Mark that ``ending.owner`` will not save: its key is free at ``ending.free_at``.

    Never a delete: the ended execution's calls in flight may still run until then. If it holds
    the record, its lease is cut to ``free_at`` (with a failure, the record becomes FAILED, as the
    contract says a failure is recorded) and its ``ttl`` is raised to ``keep_until``, never lowered.
    If there is no live record at all, the ended execution may still have a take in flight that
    lands later: a record held by it until ``free_at`` is put first, so that take is refused
    instead of leaving the key blocked. Returns what changed (for its waiters), or None when the
    record is saved or held by another execution: then nothing changes.
    """
    ended = ending.owner
    for _ in range(3):
        cut = store.cut_lease(key, ended, now, ending.free_at, ending.failure)
        if cut.landed and cut.record is not None:
            record = cut.record
            if record.ttl < ending.keep_until:
                kept = store.keep_until(key, ended, now, ending.keep_until)
                record = kept.record or record
            return SavedOutcome.of(record)
        if live(cut.record, now) is not None:
            return None  # saved, or held by another execution: not ours to change
        # Only for its take in flight: it never held the record, so it has no run to resume.
        if store.put_held_for_ended(key, ended, now, ending.free_at):
            return None
        # A record appeared between the two writes (the ended execution's own take, landing late):
        # look again, so its lease is cut too.
    return None
