"""The save function's work: store the steps' outcome on the record the execution owns, then wake its waiters.

Called with ``result`` after the steps succeeded (the record becomes SUCCESS) or with ``failure``
(``Error`` and ``Cause``, as a Catch gives them) after they failed (the record becomes FAILED).
A result too large to store and return is recorded as FAILED with
``IdempotencyResultTooLargeError``, never released to run again. Once the outcome is stored,
nothing fails the execution: a waiter that cannot be woken is logged, counted, and finds the
outcome when it looks again on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idempotency.deployment import Deployment
from idempotency.errors import IdempotencyResultTooLargeError
from idempotency.limits import MAX_RESULT_BYTES
from idempotency.ownership import calls_in_flight
from idempotency.record import Failure, Owner, SavedOutcome, encode_result
from idempotency.wakeup import WakeUps, wake_up_message, wake_waiters


@dataclass(frozen=True)
class SaveAnswer:
    """What was saved and whom it woke; ``too_large``: the result was too large, recorded as the failure, to raise."""

    saved: SavedOutcome
    wake_ups: WakeUps
    too_large: IdempotencyResultTooLargeError | None = None

    @property
    def output(self) -> dict[str, Any]:
        return {"status": self.saved.status, "wokenWaiters": self.wake_ups.woken, "wakeUpsFailed": self.wake_ups.failed}


def save_and_wake(event: dict[str, Any], deployment: Deployment, now: int, logger: Any = None) -> SaveAnswer:
    """Store the outcome in ``event`` on the record of ``event["key"]``, then wake its waiters (``logger`` logs
    the wake-ups that fail).

    Raises:
        IdempotencyRecordLostError: this execution no longer owns the record (nothing is written).
    """
    key, owner = event["key"], Owner(execution_id=event["executionId"], run_id=event["runId"])
    failure = event.get("failure")
    result_json, too_large = None, None
    if failure is None:
        result_json = encode_result(event.get("result"))
        too_large = too_large_result(key, result_json)
        if too_large is not None:
            failure = {"Error": type(too_large).__name__, "Cause": str(too_large)}
    records = deployment.records
    if failure is None:
        saved = records.save_outcome(key, owner, result_json=result_json)
        message = wake_up_message(saved, result=event.get("result"))
    else:
        # The failed steps' other calls (a Parallel's other branches) run on: not taken again before they can
        # have ended. Rounded up: never free the key early.
        in_flight = calls_in_flight(deployment.stepfunctions, owner.execution_id)
        quiet_until = now + 1 + deployment.settings.longest_call_seconds if in_flight else None
        stored = Failure(str(failure.get("Error", "")), str(failure.get("Cause", "")), quiet_until)
        saved = records.save_outcome(key, owner, failure=stored)
        message = wake_up_message(saved)
    wake_ups = wake_waiters(records, deployment.stepfunctions, saved, message, logger)
    return SaveAnswer(saved, wake_ups, too_large)


def too_large_result(key: str, result_json: str) -> IdempotencyResultTooLargeError | None:
    """The error a result too large to store and return is recorded with, or None when it fits."""
    size = len(result_json.encode("utf-8"))
    if size <= MAX_RESULT_BYTES:
        return None
    return IdempotencyResultTooLargeError(
        f"The steps' result is {size} bytes as JSON (UTF-8); at most {MAX_RESULT_BYTES} can be stored and returned "
        f"under Step Functions' 256 KiB payload limit. Record {key} is FAILED: return a reference (e.g. an S3 URI) "
        "instead."
    )
