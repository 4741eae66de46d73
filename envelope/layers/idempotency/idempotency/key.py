"""Identify an execution input: the record's id (scope and key) and the hash payload validation compares.

The key is the lowercase hex SHA-256 of the canonical JSON of the selected value: object keys
sorted at every level, no insignificant whitespace, UTF-8. What is selected is chosen, in order,
by the input's ``idempotencyKeyJmespath`` (when the deployment allows it), the deployment's key
expression (template parameter ``IdempotencyKeyJmespath``), or else the whole input. A record's
id is ``<scope>#<key>``: the scope (by default the state machine's name) keeps the records of two
workflows sharing a table apart. ``docs/keys.md`` is the user's description of all this.

Every expression, the input's or the deployment's, is checked before JMESPath sees it: its
nesting is bounded (``expression_depth``, at most ``MAX_EXPRESSION_DEPTH``), because JMESPath's
parser and interpreter recurse on it, and so are its literals and slices (``_static_problem``).
Whatever then fails while it is evaluated on an input, or selects a value JSON cannot carry, is
a named error too: an input's expression fails with ``IdempotencyKeyExpressionError``, a
deployment's that can never evaluate fails every cold start with ``IdempotencyConfigurationError``.

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
from jmespath.visitor import TreeInterpreter

from idempotency.errors import (
    IdempotencyConfigurationError,
    IdempotencyError,
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
# Deeper expressions (measured by expression_depth) are refused before JMESPath parses them. Its
# parser and interpreter take at most 4 Python frames per level, so an expression at the limit
# needs at most 400 of the 1,000 Python allows, a selected value of 100 + 100 levels 200 more
# while it is serialized, and the Lambda runtime and these functions well under 100.
MAX_EXPRESSION_DEPTH = 100
# The most work one evaluation may do: one step per node it visits, and per node (or 64 characters
# of a string) of each value it passes to a function or selects. A short expression can otherwise
# double its work at each level ([@, @][*].[@, @][*]...) and outlast the function's timeout. Legit
# selections of the largest input stay far below; at the limit, an evaluation takes about a second.
MAX_EXPRESSION_STEPS = 500_000
# How much of an expression, or of the library's message about it, an error message repeats.
MAX_SHOWN_CHARACTERS = 200
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
    described = f"{parameter} {_shown(expression)}"
    compiled = parse_expression(expression, described, IdempotencyConfigurationError)
    if not _reads_the_input(compiled.parsed):
        selected, _ = _evaluate(compiled, {}, described, IdempotencyConfigurationError, on=_ON_ANY_INPUT)
        if is_key and _selects_nothing(selected):
            raise IdempotencyConfigurationError(
                f"{described} uses nothing of the input and selects nothing ({_excerpt(json.dumps(selected))}): "
                "it can never key a request."
            )
    return compiled


def parse_expression(expression: str, described: str, error_class: type[IdempotencyError]) -> Any:
    """Compile ``expression`` (a non-empty string), or raise ``error_class`` saying why it can never be evaluated.

    ``described`` names it in the message (``idempotencyKeyJmespath '...'``, or the template
    parameter). Refused, in this order: nesting deeper than ``MAX_EXPRESSION_DEPTH`` (counted
    before anything recursive reads it), what JMESPath cannot parse (syntax, a number too long to
    read), and what ``_static_problem`` finds.
    """
    depth = expression_depth(expression)
    if depth > MAX_EXPRESSION_DEPTH:
        raise error_class(
            f"{described} nests {depth} levels deep (each bracket and each operator on top of another counts "
            f"one); at most {MAX_EXPRESSION_DEPTH} are accepted."
        )
    try:
        compiled = jmespath.compile(expression)
    except Exception as error:  # JMESPath's own errors, and ValueError for a number of over 4,300 digits
        # The library's message names the position of the problem; keep it for the user.
        raise error_class(f"{described} is not a valid JMESPath expression: {_error_text(error)}") from error
    problem = _static_problem(compiled.parsed)
    if problem:
        raise error_class(f"{described} is not a valid JMESPath expression: {problem}")
    return compiled


def expression_depth(expression: str) -> int:
    """How deep ``expression`` nests, counted without recursion; an upper bound of JMESPath's recursion on it.

    Each opening bracket ``( [ {`` and each operator character ``. | & ! < > = * ?`` is one level
    on top of those before it in the same brackets; a comma starts the next item of a list, a
    hash or a function's arguments back at its brackets' level. Quoted names and raw strings are
    skipped; a JSON literal in backticks adds its own nesting. It may count more than JMESPath
    nests (``||`` counts two), never less.
    """
    deepest = 0
    frames = [[0, 0]]  # per open bracket: [level of the bracket, operators since it or its last comma]
    position, length = 0, len(expression)
    while position < length:
        character = expression[position]
        frame = frames[-1]
        if character in "'\"":
            position = _after_quoted(expression, position)
            continue
        if character == "`":
            literal_depth, position = _literal_depth(expression, position)
            deepest = max(deepest, frame[0] + frame[1] + literal_depth)
            continue
        if character in "([{":
            frame[1] += 1
            frames.append([frame[0] + frame[1], 0])
        elif character in ")]}":
            if len(frames) > 1:
                frames.pop()
        elif character == ",":
            frame[1] = 0
        elif character in ".|&!<>=*?":
            frame[1] += 1
        frame = frames[-1]
        deepest = max(deepest, frame[0] + frame[1])
        position += 1
    return deepest


def _after_quoted(expression: str, position: int) -> int:
    """The position after the quote closing the one at ``position`` (a backslash escapes the next character)."""
    quote, position = expression[position], position + 1
    while position < len(expression) and expression[position] != quote:
        position += 2 if expression[position] == "\\" else 1
    return position + 1


def _literal_depth(expression: str, position: int) -> tuple[int, int]:
    """How deep the JSON literal opening at ``position`` nests, and the position after it."""
    after = _after_quoted(expression, position)  # \` is a backtick inside the literal
    return json_text_depth(expression[position + 1 : after - 1]), after


def json_text_depth(text: str) -> int:
    """How deep JSON ``text`` nests its arrays and objects (outside strings), counted without parsing it.

    Python's JSON parser recurses once per level: count them first, and refuse what is too deep.
    Where ``text`` is not JSON, the count may be anything from there on, but the parser stops there.
    """
    deepest = depth = 0
    in_string = escaped = False
    for character in text:
        if in_string:
            if escaped:
                escaped = False
            elif character == "\\":
                escaped = True
            elif character == '"':
                in_string = False
        elif character == '"':
            in_string = True
        elif character in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif character in "]}":
            depth = max(0, depth - 1)
    return deepest


def _static_problem(node: dict[str, Any]) -> str | None:
    """Why an expression that parses can still never be evaluated, found by walking it without recursion.

    JMESPath checks function names, argument counts and types only when it evaluates, and the
    Python library checks neither a slice's step nor the numbers of its literals: check them now,
    so that a typo fails at once (a deployment's first start, an input's first look), not later
    with a generic error. Refused: an unknown function, a wrong number of arguments, a literal
    argument of the wrong type (``merge(@, `1`)``), an expression reference (``&a``) anywhere but
    as the argument of a function that takes one (JMESPath's grammar allows it only there), a
    slice with step 0 (``a[::0]``), and a literal that JSON cannot carry (``1e400``, ``NaN``).
    """
    table = Functions.FUNCTION_TABLE
    stack: list[tuple[dict[str, Any], dict[str, Any] | None, int]] = [(node, None, 0)]
    while stack:
        current, parent, position = stack.pop()
        children = current.get("children", [])
        stack.extend((child, current, index) for index, child in enumerate(children) if isinstance(child, dict))
        kind = current.get("type")
        if kind == "function_expression":
            problem = _call_problem(current["value"], children, table)
        elif kind == "slice":
            problem = "a slice's step cannot be 0" if children[2] == 0 else None
        elif kind == "literal":
            problem = _literal_problem(current["value"])
        elif kind == "expref":
            problem = _expref_problem(parent, position, table)
        else:
            problem = None
        if problem:
            return problem
    return None


def _call_problem(name: str, arguments: list[Any], table: dict[str, Any]) -> str | None:
    if name not in table:
        return f"unknown function {name}()"
    signature = table[name]["signature"]
    variadic = bool(signature) and signature[-1].get("variadic", False)
    if len(arguments) < len(signature) or (not variadic and len(arguments) > len(signature)):
        expected = f"at least {len(signature)}" if variadic else str(len(signature))
        return f"{name}() takes {expected} argument(s), got {len(arguments)}"
    for index, argument in enumerate(arguments):
        types = signature[min(index, len(signature) - 1)]["types"]
        if argument.get("type") == "literal" and not _accepts(types, argument["value"]):
            shown = _excerpt(json.dumps(argument["value"], ensure_ascii=False))
            return f"{name}() cannot take {shown} as argument {index + 1} (it takes {' or '.join(types)})"
    return None


_JSON_TYPES = {
    bool: "boolean",
    type(None): "null",
    str: "string",
    int: "number",
    float: "number",
    list: "array",
    dict: "object",
}


def _accepts(types: list[str], value: Any) -> bool:
    """Whether a JMESPath function's argument types (``number``, ``array-string``, ...) admit the JSON ``value``."""
    if not types:
        return True
    kind = _JSON_TYPES.get(type(value))
    for allowed in types:
        base, _, element = allowed.partition("-")
        if base == kind and (not element or all(_JSON_TYPES.get(type(item)) == element for item in value)):
            return True
    return False


def _literal_problem(value: Any) -> str | None:
    try:
        canonical_json(value)
    except ValueError as error:
        return f"the literal {_excerpt(repr(value))} is not a value JSON can carry ({_error_text(error)})"
    return None


def _expref_problem(parent: dict[str, Any] | None, position: int, table: dict[str, Any]) -> str | None:
    problem = "an expression reference (&...) can only be the argument of a function that takes one (sort_by, max_by, min_by, map)"
    if parent is None or parent.get("type") != "function_expression" or parent["value"] not in table:
        return problem
    signature = table[parent["value"]]["signature"]
    types = signature[min(position, len(signature) - 1)]["types"]
    return None if not types or "expref" in types else problem


def _reads_the_input(node: dict[str, Any]) -> bool:
    """Whether an expression may look at the value it is evaluated on (if not, its result is always the same)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.get("type") in ("field", "current", "identity"):
            return True
        stack.extend(child for child in current.get("children", []) if isinstance(child, dict))
    return False


class _TooMuchWork(Exception):
    def __init__(self) -> None:
        super().__init__(
            f"it needs more than {MAX_EXPRESSION_STEPS:,} steps on this input (each value it visits, passes to a "
            "function or selects counts by its size); select less, or fewer times"
        )


class _BoundedInterpreter(TreeInterpreter):  # type: ignore[misc]  # jmespath has no type hints
    """JMESPath's interpreter, stopped with ``_TooMuchWork`` once it has done ``MAX_EXPRESSION_STEPS`` steps."""

    def __init__(self) -> None:
        super().__init__()
        self._steps_left = MAX_EXPRESSION_STEPS

    def visit(self, node: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        # The library's own dispatch, with a count: no frame more per level than it takes itself.
        self._steps_left -= 1
        if self._steps_left < 0:
            raise _TooMuchWork()
        method = self._method_cache.get(node["type"])
        if method is None:
            method = self._method_cache[node["type"]] = getattr(self, f"visit_{node['type']}", self.default_visit)
        return method(node, *args, **kwargs)

    def visit_function_expression(self, node: dict[str, Any], value: Any) -> Any:
        arguments = [self.visit(child, value) for child in node["children"]]
        for argument in arguments:  # a function's work grows with its arguments (to_string, sort, join)
            self.charge(argument)
        return self._functions.call_function(node["value"], arguments)

    def charge(self, value: Any) -> None:
        """Count ``value``'s size as steps, walking it without recursion and stopping once the steps run out.

        A value built by the expression may hold one part of the input many times over (``[@, @]``):
        it is counted as written out, which is what serializing or sorting it costs.
        """
        stack = [value]
        while stack:
            current = stack.pop()
            self._steps_left -= 1 + (len(current) // 64 if isinstance(current, str) else 0)
            if self._steps_left < 0:
                raise _TooMuchWork()
            if isinstance(current, dict):
                stack.extend(current.values())
            elif isinstance(current, list):
                stack.extend(current)


_ON_AN_INPUT = "on this input"
_ON_ANY_INPUT = "on every input (it uses nothing of the input)"


def _evaluate(
    compiled: Any, value: Any, described: str, error_class: type[IdempotencyError], on: str = _ON_AN_INPUT
) -> tuple[Any, bytes]:
    """What ``compiled`` selects from ``value``, and its canonical JSON; ``error_class`` if it fails or JSON cannot carry it."""
    interpreter = _BoundedInterpreter()
    try:
        selected = interpreter.visit(compiled.parsed, value)
        interpreter.charge(selected)  # what is selected is then written out as canonical JSON
    except Exception as error:  # too much work, or a type, value or overflow error of any kind: it fails on this value
        raise error_class(f"{described} failed {on}: {_error_text(error)}") from error
    try:
        canonical = canonical_json(selected)
    except (TypeError, ValueError) as error:
        # NaN or Infinity (to_number('1e400')), an integer past 4,300 digits, an expression
        # reference (not_null(&a)), a lone surrogate (`"\ud800"`).
        raise error_class(
            f"{described} failed {on}: it selected a value JSON cannot carry ({_error_text(error)})."
        ) from error
    return selected, canonical


def _shown(expression: str) -> str:
    """``expression`` quoted for a message, shortened when long (an input's may be 250 KB)."""
    if len(expression) <= MAX_SHOWN_CHARACTERS:
        return repr(expression)
    return f"{expression[:MAX_SHOWN_CHARACTERS]!r}... ({len(expression)} characters)"


def _error_text(error: Exception) -> str:
    """What an error says, shortened; Python's own errors prefixed with their name (JMESPath's say what they are)."""
    text = str(error) or type(error).__name__
    if not isinstance(error, JMESPathError):
        text = f"{type(error).__name__}: {text}"
    return _excerpt(text)


def _excerpt(text: str) -> str:
    if len(text) <= MAX_SHOWN_CHARACTERS:
        return text
    return f"{text[:MAX_SHOWN_CHARACTERS]}... ({len(text)} characters)"


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
        IdempotencyKeyExpressionError: the input's expression is not a non-empty string or can never
            be evaluated (see ``parse_expression``), or an expression fails when evaluated on this
            input (an error of any kind: a function given the wrong type, an overflow), or selects a
            value JSON cannot carry.
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
    described = f"The template parameter {KEY_EXPRESSION_PARAMETER} {_shown(str(rules.key_expression))}"
    selected, _ = _evaluate(rules._key, payload, described, IdempotencyKeyExpressionError)
    if _selects_nothing(selected):
        raise IdempotencyKeyEmptyError(
            f"{described} selected nothing from the input ({_excerpt(json.dumps(selected))}); point it at the "
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
        return hashlib.sha256(_canonical_or_error(request)).hexdigest()
    described = f"The template parameter {VALIDATION_PARAMETER} {_shown(str(rules.validation_expression))}"
    _, canonical = _evaluate(rules._validation, request, described, IdempotencyKeyExpressionError)
    # Selecting nothing is allowed: it hashes null, so all such inputs match each other.
    return hashlib.sha256(canonical).hexdigest()


def _select_by_input_expression(payload: dict[str, Any]) -> Any:
    expression = payload[KEY_EXPRESSION_FIELD]
    if not isinstance(expression, str) or not expression.strip():
        raise IdempotencyKeyExpressionError(
            f"{KEY_EXPRESSION_FIELD} must be a non-empty JMESPath string, got {_json_type_name(expression)}."
        )
    described = f"{KEY_EXPRESSION_FIELD} {_shown(expression)}"
    compiled = parse_expression(expression, described, IdempotencyKeyExpressionError)
    selected, _ = _evaluate(compiled, payload, described, IdempotencyKeyExpressionError)
    if _selects_nothing(selected):
        raise IdempotencyKeyEmptyError(
            f"{described} selected nothing from the input ({_excerpt(json.dumps(selected))}); "
            "point it at the fields that identify the request."
        )
    return selected


def _canonical_or_error(value: Any) -> bytes:
    try:
        return canonical_json(value)
    except (TypeError, ValueError) as error:
        # NaN or Infinity (e.g. 1e400 parses as Infinity), an integer of over 4,300 digits, or a lone
        # surrogate UTF-8 cannot encode (TypeError: a value no JSON parser makes, given by a caller in Python).
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
