"""Bad input fails the execution with a named error and a clear cause, and leaves nothing behind."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import OfflineStack
from idempotency import canonical as canonical_module
from idempotency import expressions as expressions_module
from idempotency import key as key_module
from idempotency.canonical import MAX_NESTING_DEPTH
from idempotency.expressions import MAX_EXPRESSION_DEPTH
from idempotency.key import compute_idempotency_key
from idempotency.limits import MAX_INPUT_BYTES
from tests.integration.support import business_step_calls


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _keyed_by(expression: str) -> str:
    """An input whose own key expression is ``expression``, with a list to slice and index."""
    return json.dumps({"idempotencyKeyJmespath": expression, "a": [1, 2]})


def _padded(total_bytes: int) -> str:
    """An input (whose steps succeed) with canonical JSON exactly ``total_bytes`` long."""
    overhead = len('{"data":"","forceFailure":false}')
    return json.dumps({"data": "x" * (total_bytes - overhead), "forceFailure": False}, separators=(",", ":"))


pytestmark = pytest.mark.offline_only(reason="counts Lambda calls; expects a table only this module uses")

BAD_INPUTS = [
    # (case, raw execution input, error name, words the cause must contain)
    ("array", "[1, 2]", "IdempotencyInputNotObjectError", "must be a JSON object, got an array"),
    ("string", '"order-42"', "IdempotencyInputNotObjectError", "must be a JSON object, got a string"),
    ("number", "42", "IdempotencyInputNotObjectError", "must be a JSON object, got a number"),
    ("boolean", "true", "IdempotencyInputNotObjectError", "must be a JSON object, got a boolean"),
    ("null", "null", "IdempotencyInputNotObjectError", "must be a JSON object, got null"),
    (
        "expression syntax error",
        '{"idempotencyKeyJmespath": "orders[", "a": 1}',
        "IdempotencyKeyExpressionError",
        "not a valid JMESPath",
    ),
    (
        "expression is a number",
        '{"idempotencyKeyJmespath": 7, "a": 1}',
        "IdempotencyKeyExpressionError",
        "must be a non-empty JMESPath string, got a number",
    ),
    (
        "expression is null",
        '{"idempotencyKeyJmespath": null, "a": 1}',
        "IdempotencyKeyExpressionError",
        "must be a non-empty JMESPath string, got null",
    ),
    (
        "expression is a list",
        '{"idempotencyKeyJmespath": ["a"], "a": 1}',
        "IdempotencyKeyExpressionError",
        "must be a non-empty JMESPath string, got an array",
    ),
    (
        "expression is blank",
        '{"idempotencyKeyJmespath": "  ", "a": 1}',
        "IdempotencyKeyExpressionError",
        "must be a non-empty JMESPath string",
    ),
    (
        "expression type error",
        '{"idempotencyKeyJmespath": "abs(a)", "a": "x"}',
        "IdempotencyKeyExpressionError",
        "failed on this input",
    ),
    (
        "unicode field unquoted",
        '{"idempotencyKeyJmespath": "\\u043a\\u043b\\u044e\\u0447", "\\u043a\\u043b\\u044e\\u0447": 1}',
        "IdempotencyKeyExpressionError",
        "not a valid JMESPath",
    ),
    ("selects null", '{"idempotencyKeyJmespath": "orderId", "a": 1}', "IdempotencyKeyEmptyError", "selected nothing"),
    (
        "selects only nulls",
        '{"idempotencyKeyJmespath": "[x, y]", "a": 1}',
        "IdempotencyKeyEmptyError",
        "selected nothing",
    ),
    (
        "selects empty string",
        '{"idempotencyKeyJmespath": "a", "a": ""}',
        "IdempotencyKeyEmptyError",
        "selected nothing",
    ),
    ("selects empty list", '{"idempotencyKeyJmespath": "a", "a": []}', "IdempotencyKeyEmptyError", "selected nothing"),
    (
        "selects empty object",
        '{"idempotencyKeyJmespath": "a", "a": {}}',
        "IdempotencyKeyEmptyError",
        "selected nothing",
    ),
    ("number out of range", '{"amount": 1e400}', "IdempotencyInputNotJsonSafeError", "finite numbers"),
    ("NaN", '{"amount": NaN}', "IdempotencyInputNotJsonSafeError", "finite numbers"),
    ("negative infinity", '{"amount": -Infinity}', "IdempotencyInputNotJsonSafeError", "finite numbers"),
    ("lone surrogate", '{"name": "\\ud800"}', "IdempotencyInputNotJsonSafeError", "valid Unicode strings"),
    ("nested too deep", _nested(MAX_NESTING_DEPTH + 1), "IdempotencyInputTooDeepError", f"at most {MAX_NESTING_DEPTH}"),
    ("one byte too large", _padded(MAX_INPUT_BYTES + 1), "IdempotencyInputTooLargeError", f"at most {MAX_INPUT_BYTES}"),
]
# Expressions that once ended in generic errors (RecursionError, ValueError, TypeError, OverflowError):
# nested too deep for JMESPath's recursion, refused before it parses them; parsed but never evaluable;
# or evaluated to a number JSON cannot carry.
DEEP = f"at most {MAX_EXPRESSION_DEPTH} are accepted"
NOT_JMESPATH = "not a valid JMESPath expression"
HOSTILE_EXPRESSIONS = [
    ("3,000 nested parentheses", _keyed_by("(" * 3000 + "a" + ")" * 3000), "IdempotencyKeyExpressionError", DEEP),
    ("50,000 opening brackets", _keyed_by("[" * 50_000), "IdempotencyKeyExpressionError", DEEP),
    ("3,000 nested hashes", _keyed_by("{a:" * 3000 + "a" + "}" * 3000), "IdempotencyKeyExpressionError", DEEP),
    ("3,000 negations", _keyed_by("!" * 3000 + "a"), "IdempotencyKeyExpressionError", DEEP),
    ("3,000 pipes", _keyed_by("a" + "|a" * 3000), "IdempotencyKeyExpressionError", DEEP),
    ("3,000 projections", _keyed_by("a" + "[*].a" * 3000), "IdempotencyKeyExpressionError", DEEP),
    (
        "a literal nested 3,000 deep",
        _keyed_by("`" + "[" * 3000 + "]" * 3000 + "`"),
        "IdempotencyKeyExpressionError",
        DEEP,
    ),
    ("slice with step 0", _keyed_by("a[::0]"), "IdempotencyKeyExpressionError", "a slice's step cannot be 0"),
    ("5,000-digit index", _keyed_by("a[" + "1" * 5000 + "]"), "IdempotencyKeyExpressionError", NOT_JMESPATH),
    ("NaN literal", _keyed_by("ceil(`NaN`)"), "IdempotencyKeyExpressionError", "not a value JSON can carry"),
    ("expression reference alone", _keyed_by("&a"), "IdempotencyKeyExpressionError", "expression reference (&...)"),
    (
        "merge of a number",
        _keyed_by("merge(@, `1`)"),
        "IdempotencyKeyExpressionError",
        "merge() cannot take 1 as argument 2",
    ),
    ("floor of 1e400", _keyed_by("floor(`1e400`)"), "IdempotencyKeyExpressionError", "not a value JSON can carry"),
    (
        "a number that overflows",
        _keyed_by("to_number('1e400')"),
        "IdempotencyKeyExpressionError",
        "selected a value JSON cannot carry",
    ),
]
BAD_INPUTS += HOSTILE_EXPRESSIONS


@pytest.mark.parametrize(
    ("raw_input", "error", "explanation"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_gets_a_named_error_and_leaves_no_record(
    stack: OfflineStack, raw_input: str, error: str, explanation: str
) -> None:
    calls = business_step_calls(stack)

    result = stack.run(input_json=raw_input)

    assert result.status == "FAILED"
    assert result.error == error
    assert explanation in json.loads(result.cause or "{}")["errorMessage"]
    assert business_step_calls(stack) == calls
    assert stack.records() == []  # this module's stack only ever keeps bad input's records, so none
    assert result.states_entered == ["Take the idempotency record"]


def test_the_catalog_is_large_and_names_every_error_of_the_input() -> None:
    named = {case[2] for case in BAD_INPUTS}
    # A deployment's own bad settings, and an override its settings refuse, need a stack deployed
    # with those settings: tests/integration/test_key_parameters.py has them.
    elsewhere = {"IdempotencyConfigurationError", "IdempotencyKeyOverrideNotAllowedError"}
    elsewhere.add("IdempotencyError")  # the base class of them all
    # The errors of identifying an input: key.py's, with canonical JSON's and the expressions' it goes through.
    modules = (key_module, canonical_module, expressions_module)
    input_errors = {
        name for module in modules for name in dir(module) if name.startswith("Idempotency") and name.endswith("Error")
    } - elsewhere

    assert len(BAD_INPUTS) >= 15
    assert input_errors <= named, f"no catalog case for {input_errors - named}"


def test_input_that_is_not_json_is_refused_at_the_start(stack: OfflineStack) -> None:
    with pytest.raises(ClientError):
        stack.start_execution(input_json="not json")

    assert stack.records() == []


@pytest.mark.parametrize(
    "execution_input",
    [
        json.loads(_padded(MAX_INPUT_BYTES)),
        json.loads(_nested(MAX_NESTING_DEPTH)),
        {"ключ": "значение", "emoji 🎉": [1, 2], "idempotencyKeyJmespath": '"ключ"'},
        {"amount": 12345678901234567890123, "ratio": 0.1},
    ],
    ids=["largest accepted", "deepest accepted", "unicode field quoted", "big and decimal numbers"],
)
def test_input_at_the_limits_is_accepted_and_leaves_no_record_behind(
    stack: OfflineStack, execution_input: dict[str, Any]
) -> None:
    execution_input = {**execution_input, "forceFailure": False}
    try:
        result = stack.run(execution_input)
        repeat = stack.run(execution_input)
        key = compute_idempotency_key(execution_input)
        record = stack.get_record(key)
    finally:
        for item in stack.records():  # the catalog test above expects this module's table empty
            stack.dynamodb.delete_item(TableName=stack.table_name, Key={"id": {"S": item["id"]}})

    assert result.status == repeat.status == "SUCCEEDED", result.cause
    assert repeat.output == result.output
    assert "Run the business steps" not in repeat.states_entered
    assert record is not None and record["executionstatus"] == "SUCCESS"
