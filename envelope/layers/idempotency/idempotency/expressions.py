"""JMESPath expressions, bounded: how deep they nest, what they may call, how much work one evaluation may do.

Every expression, the input's or the deployment's, is checked before JMESPath sees it: its
nesting is bounded (``expression_depth``, at most ``MAX_EXPRESSION_DEPTH``), because JMESPath's
parser and interpreter recurse on it, and so are its literals and slices (``_static_problem``).
Whatever then fails while it is evaluated on an input, or selects a value JSON cannot carry, is
the caller's named error (``evaluate``).

This module imports nothing heavier than ``jmespath`` so that it stays cheap to load.
"""

from __future__ import annotations

import json
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions
from jmespath.visitor import TreeInterpreter

from idempotency.canonical import canonical_json
from idempotency.errors import IdempotencyError

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
        raise error_class(f"{described} is not a valid JMESPath expression: {error_text(error)}") from error
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
            shown = excerpt(json.dumps(argument["value"], ensure_ascii=False))
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
        return f"the literal {excerpt(repr(value))} is not a value JSON can carry ({error_text(error)})"
    return None


def _expref_problem(parent: dict[str, Any] | None, position: int, table: dict[str, Any]) -> str | None:
    problem = (
        "an expression reference (&...) can only be the argument of a function that takes one "
        "(sort_by, max_by, min_by, map)"
    )
    if parent is None or parent.get("type") != "function_expression" or parent["value"] not in table:
        return problem
    signature = table[parent["value"]]["signature"]
    types = signature[min(position, len(signature) - 1)]["types"]
    return None if not types or "expref" in types else problem


def reads_the_input(node: dict[str, Any]) -> bool:
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


ON_AN_INPUT = "on this input"
ON_ANY_INPUT = "on every input (it uses nothing of the input)"


def evaluate(
    compiled: Any, value: Any, described: str, error_class: type[IdempotencyError], on: str = ON_AN_INPUT
) -> tuple[Any, bytes]:
    """What ``compiled`` selects from ``value``, and its canonical JSON.

    Raises ``error_class`` if the evaluation fails, or selects what JSON cannot carry.
    """
    interpreter = _BoundedInterpreter()
    try:
        selected = interpreter.visit(compiled.parsed, value)
        interpreter.charge(selected)  # what is selected is then written out as canonical JSON
    except Exception as error:  # too much work, or a type, value or overflow error of any kind: it fails on this value
        raise error_class(f"{described} failed {on}: {error_text(error)}") from error
    try:
        canonical = canonical_json(selected)
    except (TypeError, ValueError) as error:
        # NaN or Infinity (to_number('1e400')), an integer past 4,300 digits, an expression
        # reference (not_null(&a)), a lone surrogate (`"\ud800"`).
        raise error_class(
            f"{described} failed {on}: it selected a value JSON cannot carry ({error_text(error)})."
        ) from error
    return selected, canonical


def shown(expression: str) -> str:
    """``expression`` quoted for a message, shortened when long (an input's may be 250 KB)."""
    if len(expression) <= MAX_SHOWN_CHARACTERS:
        return repr(expression)
    return f"{expression[:MAX_SHOWN_CHARACTERS]!r}... ({len(expression)} characters)"


def error_text(error: Exception) -> str:
    """What an error says, shortened; Python's own errors prefixed with their name (JMESPath's say what they are)."""
    text = str(error) or type(error).__name__
    if not isinstance(error, JMESPathError):
        text = f"{type(error).__name__}: {text}"
    return excerpt(text)


def excerpt(text: str) -> str:
    if len(text) <= MAX_SHOWN_CHARACTERS:
        return text
    return f"{text[:MAX_SHOWN_CHARACTERS]}... ({len(text)} characters)"
