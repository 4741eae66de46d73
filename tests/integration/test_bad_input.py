"""Bad input fails the execution with a named error and leaves nothing behind."""

from __future__ import annotations

import json

import pytest

from emulator import OfflineStack
from tests.integration.support import business_step_calls

pytestmark = pytest.mark.offline_only(reason="counts Lambda calls; expects a table only this module uses")

BAD_INPUTS = [
    # (case, raw execution input, error name, words the cause must contain)
    ("array", "[1, 2]", "IdempotencyInputNotObjectError", "must be a JSON object, got an array"),
    ("string", '"order-42"', "IdempotencyInputNotObjectError", "must be a JSON object, got a string"),
    ("number", "42", "IdempotencyInputNotObjectError", "must be a JSON object, got a number"),
    ("null", "null", "IdempotencyInputNotObjectError", "must be a JSON object, got null"),
    ("syntax error", '{"idempotencyKeyJmespath": "orders[", "a": 1}', "IdempotencyKeyExpressionError", "not a valid JMESPath"),
    ("not a string", '{"idempotencyKeyJmespath": 7, "a": 1}', "IdempotencyKeyExpressionError", "must be a non-empty JMESPath string"),
    ("blank", '{"idempotencyKeyJmespath": "  ", "a": 1}', "IdempotencyKeyExpressionError", "must be a non-empty JMESPath string"),
    ("type error", '{"idempotencyKeyJmespath": "abs(a)", "a": "x"}', "IdempotencyKeyExpressionError", "not a valid JMESPath"),
    ("selects null", '{"idempotencyKeyJmespath": "orderId", "a": 1}', "IdempotencyKeyEmptyError", "selected nothing"),
    ("selects only nulls", '{"idempotencyKeyJmespath": "[x, y]", "a": 1}', "IdempotencyKeyEmptyError", "selected nothing"),
    ("selects empty string", '{"idempotencyKeyJmespath": "a", "a": ""}', "IdempotencyKeyEmptyError", "selected nothing"),
    ("selects empty object", '{"idempotencyKeyJmespath": "a", "a": {}}', "IdempotencyKeyEmptyError", "selected nothing"),
]


@pytest.mark.parametrize(("raw_input", "error", "explanation"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_gets_a_named_error_and_leaves_no_record(stack: OfflineStack, raw_input: str, error: str, explanation: str) -> None:
    calls = business_step_calls(stack)

    result = stack.run(input_json=raw_input)

    assert result.status == "FAILED"
    assert result.error == error
    assert explanation in json.loads(result.cause or "{}")["errorMessage"]
    assert business_step_calls(stack) == calls
    assert stack.records() == []  # this module's stack only ever sees bad input
    assert "Record the failure" not in result.states_entered
