"""Example (user registration, seed 003): registers a user in one of the three systems.

The registration workflow (``statemachine/user_registration.asl.json``) calls this function once
per system, in parallel, with ``{"system": <name>, "user": <the registration request>}``. The
systems are stand-ins: a real function would call Active Directory, the product catalogue or the
promotions service here. Its errors are named so that the workflow can tell them apart:
``RegistrationRejectedError`` (the request is invalid: not retried) and
``RegistrationSystemUnavailableError`` (a system is down for a moment: retried with backoff).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()

REQUIRED_FIELDS = ("username", "email")


class RegistrationRejectedError(Exception):
    """The registration request cannot be registered as it is (missing or invalid fields)."""


class RegistrationSystemUnavailableError(Exception):
    """A system could not be reached for a moment; the workflow retries this error."""


def check_user(user: Any) -> dict[str, Any]:
    """The registration request, if it has what every system needs; else RegistrationRejectedError."""
    if not isinstance(user, dict):
        raise RegistrationRejectedError("The registration request must be a JSON object.")
    missing = [name for name in REQUIRED_FIELDS if not isinstance(user.get(name), str) or not user[name].strip()]
    if missing:
        raise RegistrationRejectedError(f"The registration request lacks {', '.join(missing)}.")
    if "@" not in user["email"]:
        raise RegistrationRejectedError(f"{user['email']!r} is not an e-mail address.")
    return user


def register(system: str, user: dict[str, Any]) -> dict[str, Any]:
    """Register ``user`` in ``system`` and say so."""
    return {"system": system, "username": user["username"], "registered": True}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    system = str(event["system"])
    user = check_user(event.get("user"))
    logger.info("Registering user", extra={"system": system, "username": user["username"]})
    return register(system, user)
