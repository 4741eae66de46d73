"""Waking the executions that wait for a record's owner.

A waiter's Task state (``lambda:invoke.waitForTaskToken``) leaves its task token on the record
(``record.register_waiter``). Whoever changes the record next sends each token a message with
``SendTaskSuccess``: the owner when it saves, the release function when the owner ended early.
The waiter returns a ``COMPLETED`` message as its own output and looks at the record again for
anything else. A wake-up that is lost (a token that expired, a crash between save and send)
costs latency only: every waiter also looks again on its own after a backed-off interval.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from idempotency.record import COMPLETED, FAILED, SUCCESS, SavedOutcome

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

# Outcomes a waiter can be woken with besides COMPLETED (which carries the result).
OWNER_FAILED = FAILED
RELEASED = "RELEASED"
RECORD_CHANGED = "RECORD_CHANGED"

# Errors SendTaskSuccess returns for a waiter that is no longer waiting on that token.
_GONE = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")
# SendTaskSuccess takes at most 256 KiB of output; a bigger message becomes "look again".
MAX_MESSAGE_BYTES = 262_144


def wake_up_message(saved: SavedOutcome, result: Any = None, error: str | None = None, cause: str | None = None) -> dict[str, Any]:
    """What the waiters of ``saved`` are told: the result itself on success, else to look again."""
    if saved.status == SUCCESS:
        return {"outcome": COMPLETED, "key": saved.key, "result": result}
    if saved.status == FAILED:
        return {"outcome": OWNER_FAILED, "key": saved.key, "error": error, "cause": cause}
    return {"outcome": RELEASED, "key": saved.key}


def wake_waiters(client: SFNClient, waiters: dict[str, str], message: dict[str, Any]) -> int:
    """Send ``message`` to every waiter's task token; return how many were still waiting."""
    output = json.dumps(message, separators=(",", ":"))
    if len(output.encode("utf-8")) > MAX_MESSAGE_BYTES:
        output = json.dumps({"outcome": RECORD_CHANGED, "key": message.get("key")})
    woken = 0
    for task_token in waiters.values():
        try:
            client.send_task_success(taskToken=task_token, output=output)
            woken += 1
        except ClientError as error:
            # A waiter that already looked again on its own, or ended, has nothing to wake.
            if error.response.get("Error", {}).get("Code", "") not in _GONE:
                raise
    return woken
