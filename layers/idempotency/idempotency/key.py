"""Compute the idempotency key of an execution input.

The key is the lowercase hex SHA-256 of the canonical JSON of the selected value: object keys
sorted at every level, no insignificant whitespace, UTF-8. By default the whole input is the
selected value; ``idempotencyKeyJmespath`` narrows it to what identifies the request.

This module imports nothing heavier than ``jmespath`` so that it stays cheap to load.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from idempotency.errors import (
    IdempotencyInputNotJsonSafeError,
    IdempotencyInputNotObjectError,
    IdempotencyInputTooDeepError,
    IdempotencyInputTooLargeError,
    IdempotencyKeyEmptyError,
    IdempotencyKeyExpressionError,
)

KEY_EXPRESSION_FIELD = "idempotencyKeyJmespath"
# The input travels in the state with the envelope's own fields (the record's outcome, the owner's
# ARN, a wake-up message): keep 4 KiB of Step Functions' 256 KiB payload limit for them.
MAX_INPUT_BYTES = 256 * 1024 - 4 * 1024
# Deeper inputs are refused before they reach recursive code (JSON parsers, JMESPath).
MAX_NESTING_DEPTH = 100


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` so that equal JSON values give equal bytes, whatever their key order."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def select_key_value(payload: Any) -> Any:
    """Return the part of ``payload`` the key is computed from.

    Raises:
        IdempotencyInputNotObjectError: ``payload`` is not a JSON object.
        IdempotencyKeyExpressionError: the expression is not a non-empty string, is not valid
            JMESPath, or fails when evaluated (for example a function given the wrong type).
        IdempotencyKeyEmptyError: the expression selected nothing.
    """
    if not isinstance(payload, dict):
        raise IdempotencyInputNotObjectError(
            f"The execution input must be a JSON object, got {_json_type_name(payload)}."
        )
    if KEY_EXPRESSION_FIELD not in payload:
        return payload

    expression = payload[KEY_EXPRESSION_FIELD]
    if not isinstance(expression, str) or not expression.strip():
        raise IdempotencyKeyExpressionError(
            f"{KEY_EXPRESSION_FIELD} must be a non-empty JMESPath string, got {_json_type_name(expression)}."
        )
    try:
        selected = jmespath.search(expression, payload)
    except JMESPathError as error:
        # The library's message names the position of the problem; keep it for the user.
        raise IdempotencyKeyExpressionError(
            f"{KEY_EXPRESSION_FIELD} {expression!r} is not a valid JMESPath expression: {error}"
        ) from error
    if _selects_nothing(selected):
        raise IdempotencyKeyEmptyError(
            f"{KEY_EXPRESSION_FIELD} {expression!r} selected nothing from the input ({json.dumps(selected)}); "
            "point it at the fields that identify the request."
        )
    return selected


def compute_idempotency_key(payload: Any) -> str:
    """Return the idempotency key (lowercase hex SHA-256) of an execution input.

    Raises:
        IdempotencyInputNotObjectError, IdempotencyKeyExpressionError, IdempotencyKeyEmptyError:
            see ``select_key_value``.
        IdempotencyInputTooDeepError: the input nests objects/arrays deeper than ``MAX_NESTING_DEPTH``.
        IdempotencyInputNotJsonSafeError: the input has NaN or Infinity, or a lone surrogate.
        IdempotencyInputTooLargeError: the input leaves the envelope no room under the payload limit.
    """
    depth = nesting_depth(payload)
    if depth > MAX_NESTING_DEPTH:
        raise IdempotencyInputTooDeepError(
            f"The execution input is nested {depth} levels deep; at most {MAX_NESTING_DEPTH} are accepted."
        )
    whole = _canonical_or_error(payload)
    if len(whole) > MAX_INPUT_BYTES:
        raise IdempotencyInputTooLargeError(
            f"The execution input is {len(whole)} bytes as JSON; at most {MAX_INPUT_BYTES} are accepted, leaving the "
            "envelope room under Step Functions' 256 KiB payload limit. Pass a reference (e.g. an S3 URI) instead."
        )
    selected = select_key_value(payload)
    return hashlib.sha256(whole if selected is payload else _canonical_or_error(selected)).hexdigest()


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


def _canonical_or_error(value: Any) -> bytes:
    try:
        return canonical_json(value)
    except ValueError as error:
        # NaN or Infinity (e.g. 1e400 parses as Infinity), or a lone surrogate UTF-8 cannot encode.
        raise IdempotencyInputNotJsonSafeError(
            f"The execution input has no canonical JSON form ({type(error).__name__}: {error}); "
            "use finite numbers and valid Unicode strings."
        ) from error


def _selects_nothing(value: Any) -> bool:
    # False and 0 identify a request as well as any other value; only absence does not.
    if value is None or value == "":
        return True
    if isinstance(value, list):
        return all(item is None for item in value)
    if isinstance(value, dict):
        return all(item is None for item in value.values())
    return False


def _json_type_name(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)
