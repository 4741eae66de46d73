"""Waking the executions that wait for a record's owner.

A waiter's Task state (``lambda:invoke.waitForTaskToken``) leaves its task token in a waiter slot
(``waiter_slots.register_waiter``). Whoever changes the record next sends each token a message with
``SendTaskSuccess``: the owner when it saves, the release function when the owner ended early.
The waiter returns a ``COMPLETED`` message as its own output and looks at the record again for
anything else. The tokens are sent concurrently, so hundreds of waiters are woken in about the
time of a few calls. A wake-up that fails (a throttle that outlasts the retries, a crash between
save and send) costs that waiter latency only: it is logged and counted, never raised, because
the outcome is already stored, and every waiter also looks again on its own after a backed-off
interval.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from idempotency.record import SavedOutcome
from idempotency.store import RecordStore
from idempotency.vocabulary import Outcome, Status
from idempotency.waiter_slots import clear_waiter_slots, waiter_tokens

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

# Errors SendTaskSuccess returns for a waiter that is no longer waiting on that token.
_GONE = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")
# Errors worth another try: Step Functions' API is throttled per account (token buckets).
_RETRIED = ("ThrottlingException", "ServiceUnavailable", "InternalServerError", "ServiceQuotaExceededException")
_SEND_ATTEMPTS = 5
# SendTaskSuccess takes at most 256 KiB (UTF-8 bytes) of output; a bigger message becomes "look again".
MAX_MESSAGE_BYTES = 262_144
# How many tokens are sent at once: Step Functions refills SendTaskSuccess by hundreds per second.
MAX_CONCURRENT_SENDS = 32


@dataclass(frozen=True)
class WakeUps:
    """What happened to the wake-ups of one save or release."""

    woken: int = 0
    gone: int = 0
    failed: int = 0


def wake_up_message(saved: SavedOutcome, result: Any = None) -> dict[str, Any]:
    """What the waiters of ``saved`` are told: the result itself on success, else to look again.

    A failure's error and cause are not sent: the waiter reads them from the record when it looks
    again, and its next look carries this message beside the execution input, where a cause of up
    to 32,768 characters could push the state past Step Functions' 256 KiB.
    """
    if saved.status == Status.SUCCESS:
        return {"outcome": Outcome.COMPLETED, "key": saved.key, "result": result}
    if saved.status == Status.FAILED:
        return {"outcome": Outcome.FAILED, "key": saved.key}
    return {"outcome": Outcome.RELEASED, "key": saved.key}


def wake_waiters(
    store: RecordStore, sfn: SFNClient, saved: SavedOutcome, message: dict[str, Any], logger: Any = None
) -> WakeUps:
    """Send ``message`` to every waiter of ``saved``, concurrently, then clear their slots. Never raises."""
    if saved.waiter_count == 0:
        return WakeUps()
    try:
        tokens = waiter_tokens(store, saved)
    except (ClientError, BotoCoreError) as error:
        _log(logger, "Waiter slots could not be read: the waiters will look again on their own", error)
        return WakeUps(failed=saved.waiter_count)
    report = send_to_tokens(sfn, list(tokens.values()), message, logger)
    try:
        clear_waiter_slots(store, list(tokens))
    except (ClientError, BotoCoreError) as error:  # they expire with the record's ttl
        _log(logger, "Waiter slots could not be cleared", error)
    missing = saved.waiter_count - len(tokens)
    return WakeUps(woken=report.woken, gone=report.gone, failed=report.failed + missing)


def send_to_tokens(sfn: SFNClient, tokens: list[str], message: dict[str, Any], logger: Any = None) -> WakeUps:
    """``SendTaskSuccess`` of ``message`` to each token, concurrently; each failure is counted, none raised."""
    output = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    if len(output.encode("utf-8")) > MAX_MESSAGE_BYTES:
        output = json.dumps({"outcome": Outcome.RECORD_CHANGED, "key": message.get("key")})
    if not tokens:
        return WakeUps()
    with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT_SENDS, len(tokens))) as pool:
        outcomes = list(pool.map(lambda token: _send(sfn, token, output, logger), tokens))
    return WakeUps(woken=outcomes.count("woken"), gone=outcomes.count("gone"), failed=outcomes.count("failed"))


def _send(sfn: SFNClient, token: str, output: str, logger: Any) -> str:
    for attempt in range(_SEND_ATTEMPTS):
        try:
            sfn.send_task_success(taskToken=token, output=output)
            return "woken"
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _GONE:
                return "gone"  # the waiter already looked again on its own, or ended
            if code not in _RETRIED or attempt == _SEND_ATTEMPTS - 1:
                _log(logger, "A waiter could not be woken: it will look again on its own", error)
                return "failed"
        except BotoCoreError as error:  # a lost reply: the token may have been used; a repeat is then "gone"
            if attempt == _SEND_ATTEMPTS - 1:
                _log(logger, "A waiter could not be woken: it will look again on its own", error)
                return "failed"
        time.sleep(0.05 * 2**attempt)
    return "failed"


def _log(logger: Any, message: str, error: Exception) -> None:
    if logger is not None:
        logger.warning(message, extra={"error": type(error).__name__, "detail": str(error)[:500]})
