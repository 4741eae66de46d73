"""DynamoDB requests made again after a lost reply or a throttle.

Every request the layer makes is safe to repeat (a repeated conditional write finds its own
change, a repeated read or delete changes nothing), so the layer retries in place instead of
failing the state, which the state machine would retry only after its own backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

# Errors after which a write may or may not have landed: the reply was lost.
_LOST_REPLY = (ReadTimeoutError, ConnectTimeoutError, ConnectionClosedError, EndpointConnectionError)
_RETRIED_CODES = (
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
)
ATTEMPTS = 4

_Item = TypeVar("_Item")


def with_retries(call: Callable[[], Any]) -> Any:
    """Make a DynamoDB request, again after a lost reply or a throttle (each request here is safe to repeat)."""
    for attempt in range(ATTEMPTS):
        try:
            return call()
        except _LOST_REPLY:
            if attempt == ATTEMPTS - 1:
                raise
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _RETRIED_CODES or attempt == ATTEMPTS - 1:
                raise
        back_off(attempt)
    raise AssertionError("unreachable")


def back_off(attempt: int) -> None:
    """Pause before attempt ``attempt + 1``: 50 ms, doubled each time."""
    time.sleep(0.05 * 2**attempt)


def chunks(items: Sequence[_Item], size: int) -> Iterator[list[_Item]]:
    """``items`` in lists of at most ``size`` (what one batch request takes)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
