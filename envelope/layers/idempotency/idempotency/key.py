"""Identify an execution input: the record's id (scope and key) and the hash payload validation compares.

The key is the lowercase hex SHA-256 of the canonical JSON of the selected value: object keys
sorted at every level, no insignificant whitespace, UTF-8. What is selected is chosen, in order,
by the input's ``idempotencyKeyJmespath`` (when the deployment allows it), the deployment's key
expression (template parameter ``IdempotencyKeyJmespath``), or else the whole input. A record's
id is ``<scope>#<key>``: the scope (by default the state machine's name) keeps the records of two
workflows sharing a table apart. ``docs/keys.md`` is the user's description of all this.

Expressions are checked and evaluated within bounds (``expressions``); the input must have a
canonical JSON form that fits the envelope (``canonical``). An input's expression that fails
does so with ``IdempotencyKeyExpressionError``; a deployment's that can never evaluate fails
every cold start with ``IdempotencyConfigurationError``.

This module imports nothing heavier than ``jmespath`` so that it stays cheap to load.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from idempotency.canonical import canonical_json, canonical_or_error, checked_canonical_input, json_type_name
from idempotency.errors import (
    IdempotencyConfigurationError,
    IdempotencyInputNotObjectError,
    IdempotencyKeyEmptyError,
    IdempotencyKeyExpressionError,
    IdempotencyKeyOverrideNotAllowedError,
)
from idempotency.expressions import ON_ANY_INPUT, evaluate, excerpt, parse_expression, reads_the_input, shown

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
WHOLE_INPUT = "@"


def _compile(parameter: str, expression: Any, *, is_key: bool) -> Any:
    """The compiled expression of a template parameter, ``None`` when it is empty (its feature is off).

    Besides what makes any expression invalid (see ``parse_expression``), an expression that uses
    nothing of the input is evaluated once, here: if it fails, selects a value JSON cannot carry
    or, as a key, selects nothing, it would do so on every input.
    """
    if expression is None or expression == "":
        return None
    if not isinstance(expression, str):
        raise IdempotencyConfigurationError(f"{parameter} must be a JMESPath string, got {expression!r}.")
    if not expression.strip():
        raise IdempotencyConfigurationError(f"{parameter} is blank; leave it empty instead, or give an expression.")
    described = f"{parameter} {shown(expression)}"
    compiled = parse_expression(expression, described, IdempotencyConfigurationError)
    if not reads_the_input(compiled.parsed):
        selected, _ = evaluate(compiled, {}, described, IdempotencyConfigurationError, on=ON_ANY_INPUT)
        if is_key and _selects_nothing(selected):
            raise IdempotencyConfigurationError(
                f"{described} uses nothing of the input and selects nothing ({excerpt(json.dumps(selected))}): "
                "it can never key a request."
            )
    return compiled


@dataclass(frozen=True)
class KeyRules:
    """How a deployment identifies a request; built once at cold start from template parameters.

    ``key_expression``: JMESPath selecting the key's value; ``None`` or ``""`` = the whole input.
    ``allow_key_override``: may the input's ``idempotencyKeyJmespath`` replace it?
    ``validation_expression``: JMESPath selecting what a repeat must match; ``None`` or ``""``
    (the default) = payload validation off, as in the original pattern and in Powertools;
    ``"@"`` = the whole input.

    Raises:
        IdempotencyConfigurationError: an expression can never be evaluated (see ``parse_expression``
            and ``_compile``: invalid JMESPath, nested too deep, an unknown function, a wrong number
            or type of arguments, a slice with step 0, a literal JSON cannot carry, or a constant
            expression that fails), is blank, or a value has the wrong type.
    """

    key_expression: str | None = None
    allow_key_override: bool = True
    validation_expression: str | None = None
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
        object.__setattr__(self, "_key", _compile(KEY_EXPRESSION_PARAMETER, self.key_expression, is_key=True))
        object.__setattr__(
            self, "_validation", _compile(VALIDATION_PARAMETER, self.validation_expression, is_key=False)
        )

    @classmethod
    def from_parameters(
        cls, key_expression: str = "", allow_key_override: str = "true", validation_expression: str = ""
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
    whole = checked_canonical_input(payload)
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
    return _key_digest(payload, checked_canonical_input(payload), rules)[0]


def select_key_value(payload: Any, rules: KeyRules = DEFAULT_RULES) -> Any:
    """Return the part of ``payload`` the key is computed from.

    Raises:
        IdempotencyInputNotObjectError: ``payload`` is not a JSON object.
        IdempotencyKeyOverrideNotAllowedError: the input sets ``idempotencyKeyJmespath`` and the
            deployment does not allow it.
        IdempotencyKeyExpressionError: the input's expression is not a non-empty string or can never
            be evaluated (see ``parse_expression``), or an expression fails when evaluated on this
            input (an error of any kind: a function given the wrong type, an overflow), or selects a
            value JSON cannot carry.
        IdempotencyKeyEmptyError: the expression selected nothing.
    """
    if not isinstance(payload, dict):
        raise IdempotencyInputNotObjectError(
            f"The execution input must be a JSON object, got {json_type_name(payload)}."
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
    described = f"The template parameter {KEY_EXPRESSION_PARAMETER} {shown(str(rules.key_expression))}"
    selected, _ = evaluate(rules._key, payload, described, IdempotencyKeyExpressionError)
    if _selects_nothing(selected):
        raise IdempotencyKeyEmptyError(
            f"{described} selected nothing from the input ({excerpt(json.dumps(selected))}); point it at the "
            "fields that identify the request, or send them."
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
            f"The idempotency scope {scope!r} contains {SCOPE_SEPARATOR!r}, which separates the scope from the key "
            f"in a record's id; choose another ({where})."
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


def _key_digest(payload: Any, whole: bytes, rules: KeyRules) -> tuple[str, bool]:
    """The key's hash, and whether it is the hash of the whole input."""
    selected = select_key_value(payload, rules)
    if selected is payload:
        # The whole input's canonical JSON is already there: do not serialize up to 252 KiB twice.
        return hashlib.sha256(whole).hexdigest(), True
    return hashlib.sha256(canonical_json(selected)).hexdigest(), False  # _evaluate found it has one


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
        return hashlib.sha256(canonical_or_error(request)).hexdigest()
    described = f"The template parameter {VALIDATION_PARAMETER} {shown(str(rules.validation_expression))}"
    _, canonical = evaluate(rules._validation, request, described, IdempotencyKeyExpressionError)
    # Selecting nothing is allowed: it hashes null, so all such inputs match each other.
    return hashlib.sha256(canonical).hexdigest()


def _select_by_input_expression(payload: dict[str, Any]) -> Any:
    expression = payload[KEY_EXPRESSION_FIELD]
    if not isinstance(expression, str) or not expression.strip():
        raise IdempotencyKeyExpressionError(
            f"{KEY_EXPRESSION_FIELD} must be a non-empty JMESPath string, got {json_type_name(expression)}."
        )
    described = f"{KEY_EXPRESSION_FIELD} {shown(expression)}"
    compiled = parse_expression(expression, described, IdempotencyKeyExpressionError)
    selected, _ = evaluate(compiled, payload, described, IdempotencyKeyExpressionError)
    if _selects_nothing(selected):
        raise IdempotencyKeyEmptyError(
            f"{described} selected nothing from the input ({excerpt(json.dumps(selected))}); "
            "point it at the fields that identify the request."
        )
    return selected


def _selects_nothing(value: Any) -> bool:
    # False and 0 identify a request as well as any other value; only absence does not.
    if value is None or value == "":
        return True
    if isinstance(value, list):
        return all(item is None for item in value)
    if isinstance(value, dict):
        return all(item is None for item in value.values())
    return False
