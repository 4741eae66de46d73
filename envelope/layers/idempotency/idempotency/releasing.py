"""The release function's work: free the record of an execution that ended without saving its outcome.

An EventBridge rule sends the "Step Functions Execution Status Change" events of the workflows
for ABORTED, TIMED_OUT and FAILED. Stopping an execution, or its timeout, does not cancel a
Lambda invocation (or a child execution) it has in flight: those calls run on and may still act.
So the record is never deleted here: if that execution still holds it, its lease is cut to the
moment its calls can have finished (``LongestCallSeconds`` after it stopped), and a FAILED
execution's error is recorded as the record's failure (never a silent rerun). Then its waiters
are woken to look again; a look after that moment checks with Step Functions that neither the
execution nor its child runs, and takes the record over.

If the execution has no record yet, its take may still be in flight and land later: a record held
by the ended execution until that same moment is written first, so the late take is refused
instead of blocking the key. A record saved, or taken by another execution since, is left as it is.

It never fails on what an event says: an event it cannot key (no execution ARN, an input that is
not a JSON object, or that the take refused) is logged and left, since no record was made for it.
Only a failing AWS call raises, so that Lambda tries the event again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeGuard

from botocore.exceptions import ClientError

from idempotency.canonical import MAX_NESTING_DEPTH
from idempotency.deployment import Deployment
from idempotency.ending import Ending, end_ownership
from idempotency.errors import IdempotencyError, IdempotencyInputNotJsonSafeError, IdempotencyInputTooDeepError
from idempotency.expressions import json_text_depth
from idempotency.key import identify
from idempotency.ownership import REDRIVE_PERIOD_SECONDS
from idempotency.record import Failure, Owner
from idempotency.wakeup import WakeUps, wake_up_message, wake_waiters

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

# The status-change event's status of an execution that failed (Step Functions' execution status).
_EXECUTION_FAILED = "FAILED"
# The error recorded for a FAILED execution whose error the event and Step Functions leave out.
_UNKNOWN_EXECUTION_ERROR = "States.Runtime"
# Why an event is left alone when it does not say which execution ended.
NOT_AN_EXECUTION = "NotAnExecutionStatusChange"
# DescribeExecution's answers for an ARN that names no execution: there is nothing to key then.
_NO_SUCH_EXECUTION = ("ExecutionDoesNotExist", "InvalidArn")
# An ARN is at most 2,048 characters (the API refuses longer ones before asking Step Functions).
_LONGEST_ARN = 2048
# Dates an event may carry (epoch milliseconds): from 1970 to the year 9999, which datetime can write.
_LATEST_DATE_MS = 253_402_300_799_000


class _NoKey(Exception):
    """The ended execution has no key (so no record): ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ReleaseAnswer:
    """What the release did (``output``, the function's answer) and whom it woke."""

    output: dict[str, Any]
    wake_ups: WakeUps = field(default_factory=WakeUps)

    @property
    def released(self) -> bool:
        return bool(self.output["released"])


def release_abandoned_record(
    detail: dict[str, Any], deployment: Deployment, now: int, logger: Any = None
) -> ReleaseAnswer:
    """Free, once its calls can have ended, the record held by the execution the status-change ``detail`` describes.

    What it cannot key (see the module's docstring) it logs and leaves: ``{"released": False, "reason": ...}``.
    """
    log = logger if logger is not None else _Silent()
    execution_arn = detail.get("executionArn") if isinstance(detail, dict) else None
    if not _is_arn(execution_arn) or not _is_arn(detail.get("stateMachineArn")):
        log.warning("Not a status change of an execution: nothing to release")
        return ReleaseAnswer({"released": False, "reason": NOT_AN_EXECUTION})
    log.append_keys(execution_arn=execution_arn, status=detail.get("status"))
    settings = deployment.settings
    try:
        described = execution_description(detail, deployment.stepfunctions)
        scope = settings.scope_of(detail["stateMachineArn"])
        key = identify(execution_input(described.get("input")), scope, settings.key_rules).key
    except (IdempotencyError, _NoKey) as error:
        # Input with no key never got a record: nothing to release.
        reason = error.reason if isinstance(error, _NoKey) else type(error).__name__
        log.info("No record to release: the input has no key", extra={"reason": reason})
        return ReleaseAnswer({"released": False, "reason": reason})
    log.append_keys(idempotency_key=key)
    ending = _ending(execution_arn, detail, described, deployment, now)
    changed = end_ownership(deployment.records, key, ending, now)
    if changed is None:
        log.info("Record not held by this execution: left as it is, or held for its take still in flight")
        return ReleaseAnswer({"released": False, "key": key, "freeAt": ending.free_at})
    message = wake_up_message(changed)
    wake_ups = wake_waiters(deployment.records, deployment.stepfunctions, changed, message, logger)
    log.info("Record released", extra={"free_at": ending.free_at, "woken": wake_ups.woken, "status": changed.status})
    output = {
        "released": True,
        "key": key,
        "freeAt": ending.free_at,
        "status": changed.status,
        "wokenWaiters": wake_ups.woken,
    }
    return ReleaseAnswer(output, wake_ups)


def _ending(
    execution_arn: str, detail: dict[str, Any], described: dict[str, Any], deployment: Deployment, now: int
) -> Ending:
    """How the execution ended: when its key is free, how long its record lives at least, its failure."""
    longest_call_seconds = deployment.settings.longest_call_seconds
    stopped = _epoch_seconds(detail.get("stopDate"), default=now)
    failure = None
    if detail.get("status") == _EXECUTION_FAILED:
        failure = Failure(str(described.get("error") or _UNKNOWN_EXECUTION_ERROR), str(described.get("cause") or ""))
    return Ending(
        owner=Owner(execution_id=execution_arn, run_id="", start_time=_iso(detail.get("startDate"), now)),
        free_at=stopped + longest_call_seconds,
        # An ended owner can be redriven for 14 days: its record must outlive that, so a redrive (or a
        # duplicate resuming it) finds it and its redriven save can still land.
        keep_until=stopped + REDRIVE_PERIOD_SECONDS + longest_call_seconds,
        failure=failure,
    )


def execution_description(detail: dict[str, Any], sfn: SFNClient) -> dict[str, Any]:
    """The execution's input, error and cause: from the event, or from DescribeExecution if the event left them out."""
    input_details = detail.get("inputDetails")
    included = input_details.get("included", True) if isinstance(input_details, dict) else True
    if (
        included
        and isinstance(detail.get("input"), str)
        and (detail.get("status") != _EXECUTION_FAILED or "error" in detail)
    ):
        return detail
    try:
        described = sfn.describe_execution(executionArn=detail["executionArn"])
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _NO_SUCH_EXECUTION:
            raise _NoKey(code) from error
        raise
    return {**detail, "input": described.get("input"), "error": described.get("error"), "cause": described.get("cause")}


def execution_input(text: Any) -> Any:
    """The execution input, parsed from its JSON text; bounded in depth before the (recursive) parser reads it.

    Raises:
        IdempotencyInputTooDeepError: it nests deeper than the take accepts (so the take refused it).
        IdempotencyInputNotJsonSafeError: it has a number the parser cannot read (over 4,300 digits).
        _NoKey: there is no input text, or it is not JSON.
    """
    if not isinstance(text, str):
        raise _NoKey("NoExecutionInput")
    depth = json_text_depth(text)
    if depth > MAX_NESTING_DEPTH:
        raise IdempotencyInputTooDeepError(
            f"The execution input is nested {depth} levels deep; at most {MAX_NESTING_DEPTH} are accepted."
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _NoKey(type(error).__name__) from error
    except ValueError as error:  # an integer too long for Python to read: the take could not have keyed it
        raise IdempotencyInputNotJsonSafeError(f"The execution input has no canonical JSON form ({error}).") from error


def _is_arn(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and value.startswith("arn:") and len(value) <= _LONGEST_ARN


def _epoch_seconds(value: Any, default: int) -> int:
    """An event's date (epoch milliseconds), rounded up to whole seconds: never free a key early."""
    if _is_date(value):
        return -(-int(value) // 1000)
    return default


def _iso(value: Any, default: int) -> str:
    seconds = value / 1000 if _is_date(value) else default
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_date(value: Any) -> bool:
    # Not a bool, NaN, Infinity or a number datetime cannot write: such an event says nothing about when.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= _LATEST_DATE_MS


class _Silent:
    """A logger that logs nothing, for callers that pass none."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None
