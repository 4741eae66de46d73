"""The wait function's work: leave a waiter's task token where the record's owner will find it.

If the record changed since the waiter looked (saved, released, taken over, expired), nobody would
send that token: it is sent here, and the waiter looks again at once. If the token cannot be
stored at all (DynamoDB refuses or fails), the waiter is not woken: its wait times out after its
backed-off interval and it looks again, and that time counts toward ``WaitTimeoutSeconds``, so a
failing registration never loops.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from idempotency.deployment import Deployment
from idempotency.record import Owner
from idempotency.vocabulary import Outcome
from idempotency.waiter_slots import register_waiter
from idempotency.wakeup import send_to_tokens


def wait_for_owner(event: dict[str, Any], deployment: Deployment, now: int, logger: Any = None) -> dict[str, Any]:
    """Register ``event["taskToken"]`` on the record of ``event["key"]``, held by run ``heldByRun`` of ``heldBy``.

    The answer: ``{"registered": True}``; ``False`` when the record changed (the token was sent
    here), or with ``reason`` when DynamoDB failed (logged with ``logger``).
    """
    key, token = event["key"], event["taskToken"]
    holder = Owner(execution_id=event["heldBy"], run_id=event["heldByRun"])
    try:
        registered = register_waiter(deployment.records, key, holder, token, now)
    except (ClientError, BotoCoreError) as error:
        if logger is not None:
            logger.warning(
                "The wait could not be registered: looking again after the wait's interval",
                extra={"error": type(error).__name__, "detail": str(error)[:500]},
            )
        return {"registered": False, "reason": type(error).__name__}
    if not registered:
        send_to_tokens(deployment.stepfunctions, [token], {"outcome": Outcome.RECORD_CHANGED, "key": key}, logger)
    return {"registered": registered}
