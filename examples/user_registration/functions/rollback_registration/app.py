"""Example (user registration, seed 003): undoes a registration in every system.

The registration workflow calls it when registering in any system failed, or the confirmation
could not be sent, with ``{"systems": [...], "registration": <the request>, "failure": {"Error",
"Cause"}}``. Removing a user who was never registered is not an error, so the function can undo
all systems without knowing which branches had finished, and can be retried. The workflow then
fails with the original error, so the idempotency record is FAILED and a repeat runs again.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()


def unregister(system: str, username: str | None) -> None:
    """Remove ``username`` from ``system`` if it is there (a stand-in for the system's own call)."""


def roll_back(systems: list[str], registration: Any) -> dict[str, Any]:
    """Undo the registration in each of ``systems``; return what was undone."""
    username = registration.get("username") if isinstance(registration, dict) else None
    for system in systems:
        unregister(system, username)
    return {"rolledBack": list(systems), "username": username}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failure = event.get("failure") or {}
    logger.info("Rolling the registration back", extra={"systems": event["systems"], "error": failure.get("Error")})
    return roll_back(list(event["systems"]), event.get("registration"))
