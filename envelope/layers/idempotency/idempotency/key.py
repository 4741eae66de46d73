"""Identify an execution input: the record's id (scope and key) and the hash payload validation compares.

The key is the lowercase hex SHA-256 of the canonical JSON of the selected value: object keys
sorted at every level, no insignificant whitespace, UTF-8. What is selected is chosen, in order,
by the input's ``idempotencyKeyJmespath`` (when the deployment allows it), the deployment's key
expression (template parameter ``IdempotencyKeyJmespath``), or else the whole input. A record's
id is ``<scope>#<key>``: the scope (by default the state machine's name) keeps the records of two
workflows sharing a table apart. ``docs/keys.md`` is the user's description of all this.

This module imports nothing heavier than ``jmespath`` so that it stays cheap to load.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions

from idempotency.errors import (
    IdempotencyConfigurationError,
    IdempotencyInputNotJsonSafeError,
    IdempotencyInputNotObjectError,
    IdempotencyInputTooDeepError,
    IdempotencyInputTooLargeError,
    IdempotencyKeyEmptyError,
    IdempotencyKeyExpressionError,
    IdempotencyKeyOverrideNotAllowedError,
)
from idempotency.limits import MAX_INPUT_BYTES

KEY_EXPRESSION_FIELD = "idempotencyKeyJmespath"
# Template parameters, named in the errors a deployment's own settings cause.
KEY_EXPRESSION_PARAMETER = "IdempotencyKeyJmespath"
ALLOW_OVERRIDE_PARAMETER = "AllowKeyOverride"
VALIDATION_PARAMETER = "PayloadValidationJmespath"
SCOPE_PARAMETER = "IdempotencyScope"
# Between the scope and the key in a record's id. A state machine's name can never contain it, and
# a scope may not either, so the scope of any id is the part before its first "#".
SCOPE_SEPARATOR = "#"
# The longest state machine name is 80 characters; a little more leaves room for a chosen scope
# while keeping an id (and the waiter slots' longer ids) far below DynamoDB's 2 KiB key limit.
MAX_SCOPE_LENGTH = 128
# Deeper inputs are refused before they reach recursive code (JSON parsers, JMESPath).
MAX_NESTING_DEPTH = 100
WHOLE_INPUT = "@"


def _compile(parameter: str, expression: Any) -> Any:
    """The compiled expression of a template parameter, ``None`` when it is empty (its feature is off)."""
    if expression is None or expression == "":
        return None
    if not isinstance(expression, str):
        raise IdempotencyConfigurationError(f"{parameter} must be a JMESPath string, got {expression!r}.")
    if not expression.strip():
        raise IdempotencyConfigurationError(f"{parameter} is blank; leave it empty instead, or give an expression.")
    try:
        compiled = jmespath.compile(expression)
    except JMESPathError as error:
        raise IdempotencyConfigurationError(
            f"{parameter} {expression!r} is not a valid JMESPath expression: {error}"
        ) from error
    # JMESPath checks function names and argument counts only when it evaluates: check them now,
    # so a typo fails the deployment's first start, not each input that reaches that function.
    problem = _function_problem(compiled.parsed)
    if problem:
        raise IdempotencyConfigurationError(f"{parameter} {expression!r} is not a valid JMESPath expression: {problem}")
    return compiled


def _function_problem(node: dict[str, Any]) -> str | None:
    table = Functions.FUNCTION_TABLE
    stack = [node]
    while stack:
        current = stack.pop()
        children = current.get("children", [])
        stack.extend(child for child in children if isinstance(child, dict))
        if current.get("type") != "function_expression":
            continue
        name = current["value"]
        if name not in table:
            return f"unknown function {name}()"
        signature = table[name]["signature"]
        variadic = bool(signature) and signature[-1].get("variadic", False)
        if len(children) < len(signature) or (not variadic and len(children) > len(signature)):
            expected = f"at least {len(signature)}" if variadic else str(len(signature))
            return f"{name}() takes {expected} argument(s), got {len(children)}"
    return None


@dataclass(frozen=True)
class KeyRules:
    """How a deployment identifies a request; built once at cold start from template parameters.

    ``key_expression``: JMESPath selecting the key's value; ``None`` or ``""`` = the whole input.
    ``allow_key_override``: may the input's ``idempotencyKeyJmespath`` replace it?
    ``validation_expression``: JMESPath selecting what a repeat must match; ``"@"`` (the default)
    = the whole input, ``None`` or ``""`` = payload validation off.

    Raises:
        IdempotencyConfigurationError: an expression is not valid JMESPath (including an unknown
            function or a wrong number of arguments), is blank, or a value has the wrong type.
    """

    key_expression: str | None = None
    allow_key_override: bool = True
    validation_expression: str | None = WHOLE_INPUT
    _key: Any = field(init=False, repr=False, compare=False, default=None)
    _validation: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.allow_key_override, bool):
            raise IdempotencyConfigurationError(
                f"{ALLOW_OVERRIDE_PARAMETER} must be true or false, got {self.allow_key_override!r}."
            )
        # A frozen dataclass: the normal and compiled forms are set once, here, and never change.
        # An empty parameter is how a template says "none": store it as None so equal rules compare equal.
        for name in ("key_expression", "validation_expression"):
            if getattr(self, name) == "":
                object.__setattr__(self, name, None)
        object.__setattr__(self, "_key", _compile(KEY_EXPRESSION_PARAMETER, self.key_expression))
        object.__setattr__(self, "_validation", _compile(VALIDATION_PARAMETER, self.validation_expression))

    @classmethod
    def from_parameters(
        cls, key_expression: str = "", allow_key_override: str = "true", validation_expression: str = WHOLE_INPUT
    ) -> KeyRules:
        """Build the rules from the template parameters' text (as environment variables carry them)."""
        allowed = allow_key_override.strip().lower()
        if allowed not in ("true", "false"):
            raise IdempotencyConfigurationError(
                f"{ALLOW_OVERRIDE_PARAMETER} must be true or false, got {allow_key_override!r}."
            )
        return cls(key_expression, allowed == "true", validation_expression)

    @property
    def validates_payload(self) -> bool:
        return self._validation is not None


DEFAULT_RULES = KeyRules()


@dataclass(frozen=True)
class Identity:
    """What identifies one execution input.

    ``key``: the record's id, ``<scope>#<lowercase hex SHA-256 of the canonical JSON of the selected value>``.
    ``payload_hash``: lowercase hex SHA-256 of the canonical JSON of what the validation expression
    selects (``null`` when it selects nothing); ``None`` when validation is off.
    """

    key: str
    payload_hash: str | None


def identify(payload: Any, scope: str, rules: KeyRules = DEFAULT_RULES) -> Identity:
    """Return the record id and the payload hash of an execution input.

    Raises:
        IdempotencyConfigurationError: ``scope`` is not a valid scope (see ``check_scope``).
        IdempotencyInputTooDeepError, IdempotencyInputNotJsonSafeError, IdempotencyInputTooLargeError,
        IdempotencyInputNotObjectError, IdempotencyKeyOverrideNotAllowedError,
        IdempotencyKeyExpressionError, IdempotencyKeyEmptyError: bad input; see ``compute_idempotency_key``.
    """
    check_scope(scope)
    whole = _checked_canonical_input(payload)
    digest, of_whole_input = _key_digest(payload, whole, rules)
    payload_hash = _payload_hash(payload, whole, digest if of_whole_input else None, rules)
    return Identity(f"{scope}{SCOPE_SEPARATOR}{digest}", payload_hash)


def compute_idempotency_key(payload: Any, rules: KeyRules = DEFAULT_RULES) -> str:
    """Return the key (lowercase hex SHA-256, without a scope) of an execution input.

    This is the hash part of ``identify(payload, scope, rules).key``, computed without the payload hash.

    Raises:
        IdempotencyInputTooDeepError: the input nests objects/arrays deeper than ``MAX_NESTING_DEPTH``.
        IdempotencyInputNotJsonSafeError: the input has NaN or Infinity, or a lone surrogate.
        IdempotencyInputTooLargeError: the input leaves the envelope no room under the payload limit.
        IdempotencyInputNotObjectError, IdempotencyKeyOverrideNotAllowedError,
        IdempotencyKeyExpressionError, IdempotencyKeyEmptyError: see ``select_key_value``.
    """
    return _key_digest(payload, _checked_canonical_input(payload), rules)[0]


def select_key_value(payload: Any, rules: KeyRules = DEFAULT_RULES) -> Any:
    """Return the part of ``payload`` the key is computed from.

    Raises:
        IdempotencyInputNotObjectError: ``payload`` is not a JSON object.
        IdempotencyKeyOverrideNotAllowedError: the input sets ``idempotencyKeyJmespath`` and the
            deployment does not allow it.
        IdempotencyKeyExpressionError: the input's expression is not a non-empty string or is not
            valid JMESPath, or an expression fails when evaluated (a function given the wrong type).
        IdempotencyKeyEmptyError: the expression selected nothing.
    """
    if not isinstance(payload, dict):
        raise IdempotencyInputNotObjectError(
            f"The execution input must be a JSON object, got {_json_type_name(payload)}."
        )
    if KEY_EXPRESSION_FIELD in payload:
        if not rules.allow_key_override:
            chosen = (
                f"with {KEY_EXPRESSION_PARAMETER} {rules.key_expression!r}"
                if rules._key is not None
                else "from the whole input"
            )
            raise IdempotencyKeyOverrideNotAllowedError(
                f"The input sets {KEY_EXPRESSION_FIELD}, but this deployment computes the key itself ({chosen}) "
                f"and its template parameter {ALLOW_OVERRIDE_PARAMETER} is false; remove {KEY_EXPRESSION_FIELD} "
                "from the input."
            )
        return _select_by_input_expression(payload)
    if rules._key is None:
        return payload
    try:
        selected = rules._key.search(payload)
    except JMESPathError as error:
        raise IdempotencyKeyExpressionError(
            f"The template parameter {KEY_EXPRESSION_PARAMETER} {rules.key_expression!r} failed on this input: {error}"
        ) from error
    if _selects_nothing(selected):
        raise IdempotencyKeyEmptyError(
            f"The template parameter {KEY_EXPRESSION_PARAMETER} {rules.key_expression!r} selected nothing from the "
            f"input ({json.dumps(selected)}); point it at the fields that identify the request, or send them."
        )
    return selected


def check_scope(scope: Any) -> str:
    """Return ``scope`` if it can prefix a record's id.

    A scope is 1 to ``MAX_SCOPE_LENGTH`` printable characters without whitespace or ``#``: the
    characters a state machine's name may have, plus a few, so an id stays easy to read and type,
    and splits unambiguously at its first ``#``.

    Raises:
        IdempotencyConfigurationError: it is not.
    """
    where = f"the template parameter {SCOPE_PARAMETER}, or the state machine's name when it is empty"
    if not isinstance(scope, str) or not scope:
        raise IdempotencyConfigurationError(
            f"The idempotency scope must be a non-empty string ({where}), got {scope!r}."
        )
    if SCOPE_SEPARATOR in scope:
        raise IdempotencyConfigurationError(
            f"The idempotency scope {scope!r} contains {SCOPE_SEPARATOR!r}, which separates the scope from the key in a "
            f"record's id; choose another ({where})."
        )
    if len(scope) > MAX_SCOPE_LENGTH or not scope.isprintable() or any(character.isspace() for character in scope):
        raise IdempotencyConfigurationError(
            f"The idempotency scope {scope!r} must be at most {MAX_SCOPE_LENGTH} printable characters without "
            f"whitespace ({where})."
        )
    return scope


def mismatch_message(key: str) -> str:
    """The cause of ``IdempotencyPayloadMismatchError`` for a record id: names the key, never the payload."""
    return (
        f"The record {key} was made for an input whose validated part ({VALIDATION_PARAMETER}) differs from this "
        "one's: the key does not tell the two requests apart. Nothing was run or changed. Make the key select what "
        "differs, or send a different request only once this record has expired."
    )


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` so that equal JSON values give equal bytes, whatever their key order."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


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


def _checked_canonical_input(payload: Any) -> bytes:
    """The canonical JSON of the whole input, once it is known to fit the envelope."""
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
    return whole


def _key_digest(payload: Any, whole: bytes, rules: KeyRules) -> tuple[str, bool]:
    """The key's hash, and whether it is the hash of the whole input."""
    selected = select_key_value(payload, rules)
    if selected is payload:
        # The whole input's canonical JSON is already there: do not serialize up to 252 KiB twice.
        return hashlib.sha256(whole).hexdigest(), True
    return hashlib.sha256(_canonical_or_error(selected)).hexdigest(), False


def _payload_hash(payload: dict[str, Any], whole: bytes, whole_digest: str | None, rules: KeyRules) -> str | None:
    """The hash of what validation compares: ``payload`` is an object by now (its key was computed)."""
    if rules._validation is None:
        return None
    # idempotencyKeyJmespath says how to key a request, it is not part of it: two producers that
    # spell the key differently for the same request must not be told their payloads differ.
    request = payload
    if KEY_EXPRESSION_FIELD in payload:
        request = {name: value for name, value in payload.items() if name != KEY_EXPRESSION_FIELD}
    if rules.validation_expression == WHOLE_INPUT:
        if request is payload:
            # The default: the whole input, already serialized (and hashed, when it is the key too).
            return whole_digest or hashlib.sha256(whole).hexdigest()
        return hashlib.sha256(_canonical_or_error(request)).hexdigest()
    try:
        selected = rules._validation.search(request)
    except JMESPathError as error:
        raise IdempotencyKeyExpressionError(
            f"The template parameter {VALIDATION_PARAMETER} {rules.validation_expression!r} failed on this "
            f"input: {error}"
        ) from error
    # Selecting nothing is allowed: it hashes null, so all such inputs match each other.
    return hashlib.sha256(_canonical_or_error(selected)).hexdigest()


def _select_by_input_expression(payload: dict[str, Any]) -> Any:
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
