"""The wrapped workflow's only step (test-only): greets the input's name, or fails when asked to.

The emulator counts its calls; the output is the same for the same input, so a test can tell a
stored result from a new run only by the count.
"""

from __future__ import annotations

from typing import Any


class GreetingRefusedError(Exception):
    """The input asked the step to fail (``"refuse": "<why>"``)."""


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("refuse"):
        raise GreetingRefusedError(f"refused to greet {event.get('name')}: {event['refuse']}")
    return {"greeting": f"Hello, {event.get('name')}!", "name": event.get("name")}
