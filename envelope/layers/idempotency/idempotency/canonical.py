"""Canonical JSON: equal JSON values give equal bytes, whatever their key order; and the bounds an input must fit.

The key is the lowercase hex SHA-256 of the canonical JSON of the selected value: object keys
sorted at every level, no insignificant whitespace, UTF-8.
"""

from __future__ import annotations

import json
from typing import Any

from idempotency.errors import (
    IdempotencyInputNotJsonSafeError,
    IdempotencyInputTooDeepError,
    IdempotencyInputTooLargeError,
)
from idempotency.limits import MAX_INPUT_BYTES

# Deeper inputs are refused before they reach recursive code (JSON parsers, JMESPath).
MAX_NESTING_DEPTH = 100


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` so that equal JSON values give equal bytes, whatever their key order."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def nesting_depth(value: Any) -> int:
    """How many levels of objects and arrays ``value`` nests (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, level = stack.pop()
        children = current.values() if isinstance(current, dict) else current if isinstance(current, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level <= MAX_NESTING_DEPTH:  # deeper than the limit is already an error: stop counting
            stack.extend((child, level + 1) for child in children)
    return deepest


def checked_canonical_input(payload: Any) -> bytes:
    """The canonical JSON of the whole input, once it is known to fit the envelope."""
    depth = nesting_depth(payload)
    if depth > MAX_NESTING_DEPTH:
        raise IdempotencyInputTooDeepError(
            f"The execution input is nested {depth} levels deep; at most {MAX_NESTING_DEPTH} are accepted."
        )
    whole = canonical_or_error(payload)
    if len(whole) > MAX_INPUT_BYTES:
        raise IdempotencyInputTooLargeError(
            f"The execution input is {len(whole)} bytes as JSON; at most {MAX_INPUT_BYTES} are accepted, leaving the "
            "envelope room under Step Functions' 256 KiB payload limit. Pass a reference (e.g. an S3 URI) instead."
        )
    return whole


def canonical_or_error(value: Any) -> bytes:
    try:
        return canonical_json(value)
    except (TypeError, ValueError) as error:
        # NaN or Infinity (e.g. 1e400 parses as Infinity), an integer of over 4,300 digits, or a lone
        # surrogate UTF-8 cannot encode (TypeError: a value no JSON parser makes, given by a caller in Python).
        raise IdempotencyInputNotJsonSafeError(
            f"The execution input has no canonical JSON form ({type(error).__name__}: {error}); "
            "use finite numbers and valid Unicode strings."
        ) from error


def json_type_name(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)
