"""Names of the envelope's CloudWatch metrics (Powertools Metrics, embedded metric format).

Namespace and service come from ``POWERTOOLS_METRICS_NAMESPACE`` and ``POWERTOOLS_SERVICE_NAME``
(template ``Globals``). One place for the names, so dashboards and alarms can rely on them.
"""

from __future__ import annotations

from idempotency.errors import IdempotencyPayloadMismatchError, IdempotencyWaitTimeoutError
from idempotency.vocabulary import Outcome, Status

# What the take function found, per look at the record.
METRIC_FOR_OUTCOME: dict[str, str] = {
    Outcome.ACQUIRED: "FreshRuns",  # the steps run
    Outcome.COMPLETED: "Hits",  # a stored result returned
    Outcome.BUSY: "LockContention",  # another execution holds the record
    Outcome.FAILED: "WaiterFailedWithOwner",  # WaitersOnFailure=Fail
}
WAIT_TIMEOUTS = "WaitTimeouts"
REJECTED_INPUTS = "RejectedInputs"  # bad input (or a record edited by hand): a named IdempotencyError
PAYLOAD_MISMATCHES = "PayloadMismatches"  # a repeat of a key with another payload (payload validation)
TAKEOVERS = "Takeovers"  # a record taken from a holder that could no longer act
# What the save function stored, and how many waiters it woke.
METRIC_FOR_SAVED_STATUS: dict[str, str] = {Status.SUCCESS: "StepsSucceeded", Status.FAILED: "StepsFailed"}
WAITERS_WOKEN = "WaitersWoken"
WAKE_UPS_FAILED = "WakeUpsFailed"  # waiters not woken (they look again on their own)
RESULTS_TOO_LARGE = "ResultsTooLarge"
# What the release function did.
RECORDS_RELEASED = "RecordsReleased"  # an ended owner's record marked free once its calls can have ended
# What the front door answered: a stored result without starting anything, or a started execution.
FRONT_DOOR_HITS = "FrontDoorHits"
FRONT_DOOR_STARTS = "FrontDoorStarts"

# Every name above, for alarms and dashboards to be checked against (emitted names unchanged).
METRIC_NAMES = frozenset(
    {
        *METRIC_FOR_OUTCOME.values(),
        WAIT_TIMEOUTS,
        REJECTED_INPUTS,
        PAYLOAD_MISMATCHES,
        TAKEOVERS,
        *METRIC_FOR_SAVED_STATUS.values(),
        WAITERS_WOKEN,
        WAKE_UPS_FAILED,
        RESULTS_TOO_LARGE,
        RECORDS_RELEASED,
        FRONT_DOOR_HITS,
        FRONT_DOOR_STARTS,
    }
)


def refusal_metric(error: Exception) -> str:
    """The metric a named refusal of the take or the front door counts under."""
    if isinstance(error, IdempotencyWaitTimeoutError):
        return WAIT_TIMEOUTS
    if isinstance(error, IdempotencyPayloadMismatchError):
        return PAYLOAD_MISMATCHES
    return REJECTED_INPUTS
