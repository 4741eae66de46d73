"""The idempotency key (layers/idempotency/idempotency/key.py): canonical JSON, JMESPath selection, named errors.

Expected keys are computed here with ``hashlib`` from canonical JSON written out by hand, never by
the code under test.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from types import SimpleNamespace
from typing import Any

import pytest

EXPRESSION = "idempotencyKeyJmespath"  # the input field CONTRACT.md names


def sha256_hex(canonical: str) -> str:
    """The key CONTRACT.md defines for a value whose canonical JSON is ``canonical``."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- canonical JSON
NESTED = {"b": [3, {"y": None, "x": True}], "a": {"d": "é", "c": 1.5}}
NESTED_CANONICAL = '{"a":{"c":1.5,"d":"é"},"b":[3,{"x":true,"y":null}]}'


def test_the_key_is_the_lowercase_hex_sha256_of_the_hand_written_canonical_json(layer: SimpleNamespace) -> None:
    key = layer.key.compute_idempotency_key(NESTED)

    assert key == sha256_hex(NESTED_CANONICAL)
    assert re.fullmatch(r"[0-9a-f]{64}", key)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"a": {"c": 1.5, "d": "é"}, "b": [3, {"x": true, "y": null}]}', id="sorted with spaces"),
        pytest.param('{"b":[3,{"y":null,"x":true}],"a":{"d":"é","c":1.5}}', id="reversed at every level, compact"),
        pytest.param('{\n  "b": [ 3, { "x": true,\t"y": null } ],\n  "a": { "d": "\\u00e9", "c": 1.5 }\n}', id="newlines, tabs, escaped unicode"),
        pytest.param('{"a":{"d":"é","c":1.5},"b":[3,{"y":null,"x":true}]}', id="inner objects reversed only"),
    ],
)
def test_key_order_and_whitespace_do_not_change_the_key(layer: SimpleNamespace, text: str) -> None:
    assert layer.key.compute_idempotency_key(json.loads(text)) == sha256_hex(NESTED_CANONICAL)


def test_array_order_does_change_the_key(layer: SimpleNamespace) -> None:
    # Arrays are ordered in JSON: only object keys are sorted.
    assert layer.key.compute_idempotency_key({"a": [1, 2]}) != layer.key.compute_idempotency_key({"a": [2, 1]})


def test_unicode_is_hashed_as_utf8_not_as_ascii_escapes(layer: SimpleNamespace) -> None:
    value = {"name": "Zoë 日本 🙂"}

    key = layer.key.compute_idempotency_key(value)

    assert key == sha256_hex('{"name":"Zoë 日本 🙂"}')
    assert key != sha256_hex(json.dumps(value, separators=(",", ":")))  # the \\u-escaped form
    assert layer.key.canonical_json(value) == '{"name":"Zoë 日本 🙂"}'.encode()


# --------------------------------------------------------------------------- JMESPath selection
ORDER = {"order": {"id": "42", "note": "gift"}, "customer": "c-1", "requestedAt": "2026-11-23T10:00:00Z"}


@pytest.mark.parametrize(
    ("expression", "canonical"),
    [
        pytest.param("order.id", '"42"', id="one field"),
        pytest.param("[customer, order.id]", '["c-1","42"]', id="multi-select list"),
        pytest.param("{o: order.id, c: customer}", '{"c":"c-1","o":"42"}', id="multi-select hash, keys sorted"),
        pytest.param("order", '{"id":"42","note":"gift"}', id="a whole object"),
    ],
)
def test_the_key_is_computed_from_the_selected_value_only(layer: SimpleNamespace, expression: str, canonical: str) -> None:
    assert layer.key.compute_idempotency_key({**ORDER, EXPRESSION: expression}) == sha256_hex(canonical)


def test_fields_the_expression_does_not_select_do_not_change_the_key(layer: SimpleNamespace) -> None:
    first = {**ORDER, EXPRESSION: "order.id"}
    later = {**first, "requestedAt": "2026-11-24T08:00:00Z", "order": {"id": "42", "note": "changed"}, "extra": [1]}

    assert layer.key.compute_idempotency_key(first) == layer.key.compute_idempotency_key(later)


def test_a_change_in_the_selected_value_changes_the_key(layer: SimpleNamespace) -> None:
    first = {**ORDER, EXPRESSION: "order.id"}
    other = {**first, "order": {"id": "43", "note": "gift"}}

    assert layer.key.compute_idempotency_key(first) != layer.key.compute_idempotency_key(other)


def test_without_an_expression_every_field_is_part_of_the_key(layer: SimpleNamespace) -> None:
    assert layer.key.compute_idempotency_key(ORDER) != layer.key.compute_idempotency_key({**ORDER, "requestedAt": "later"})


def test_the_expression_text_itself_is_not_part_of_the_key(layer: SimpleNamespace) -> None:
    # Only the selected value counts: two spellings that select the same value share a key.
    spellings = ["order.id", "order.\"id\"", "[order.id][0]", "order.id || customer"]

    keys = {layer.key.compute_idempotency_key({**ORDER, EXPRESSION: spelling}) for spelling in spellings}

    assert keys == {sha256_hex('"42"')}


def test_the_expression_sees_the_whole_input_including_its_own_field(layer: SimpleNamespace) -> None:
    execution_input = {"a": 1, EXPRESSION: "@"}

    assert layer.key.compute_idempotency_key(execution_input) == sha256_hex('{"a":1,"idempotencyKeyJmespath":"@"}')


@pytest.mark.parametrize(
    ("selected", "canonical"),
    [
        pytest.param(False, "false", id="false"),
        pytest.param(0, "0", id="zero"),
        pytest.param([None, 1], "[null,1]", id="a list with one non-null item"),
    ],
)
def test_falsy_values_that_are_not_absence_are_valid_keys(layer: SimpleNamespace, selected: Any, canonical: str) -> None:
    assert layer.key.compute_idempotency_key({"v": selected, EXPRESSION: "v"}) == sha256_hex(canonical)


# --------------------------------------------------------------------------- named errors
def _deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def _bad_input_cases() -> list[Any]:
    """(input, error class name, what the message must say) for every error key.py raises."""
    not_object = "IdempotencyInputNotObjectError"
    expression = "IdempotencyKeyExpressionError"
    empty = "IdempotencyKeyEmptyError"
    not_json_safe = "IdempotencyInputNotJsonSafeError"
    must_be_object = "The execution input must be a JSON object"
    non_empty_string = f"{EXPRESSION} must be a non-empty JMESPath string"
    selected_nothing = "selected nothing from the input"
    finite = "use finite numbers and valid Unicode strings"
    return [
        pytest.param([1, 2], not_object, f"{must_be_object}, got an array", id="input is a list"),
        pytest.param("order-42", not_object, f"{must_be_object}, got a string", id="input is a string"),
        pytest.param(42, not_object, f"{must_be_object}, got a number", id="input is a number"),
        pytest.param(None, not_object, f"{must_be_object}, got null", id="input is null"),
        pytest.param(True, not_object, f"{must_be_object}, got a boolean", id="input is a boolean"),
        pytest.param({EXPRESSION: 5}, expression, f"{non_empty_string}, got a number", id="expression is a number"),
        pytest.param({EXPRESSION: None}, expression, f"{non_empty_string}, got null", id="expression is null"),
        pytest.param({EXPRESSION: ["a"]}, expression, f"{non_empty_string}, got an array", id="expression is a list"),
        pytest.param({EXPRESSION: ""}, expression, f"{non_empty_string}, got a string", id="expression is empty"),
        pytest.param({EXPRESSION: "   "}, expression, f"{non_empty_string}, got a string", id="expression is blank"),
        pytest.param({EXPRESSION: "orders[", "a": 1}, expression, "'orders[' is not a valid JMESPath expression", id="syntax error"),
        pytest.param({EXPRESSION: "a ==", "a": 1}, expression, "'a ==' is not a valid JMESPath expression", id="incomplete expression"),
        pytest.param({EXPRESSION: "length(a)", "a": 42}, expression, "invalid type for value: 42", id="function on the wrong type"),
        pytest.param({EXPRESSION: "no_such_fn(a)", "a": 1}, expression, "no_such_fn", id="unknown function"),
        pytest.param({EXPRESSION: "missing", "a": 1}, empty, f"'missing' {selected_nothing} (null)", id="selects null"),
        pytest.param({EXPRESSION: "a", "a": ""}, empty, f"'a' {selected_nothing} (\"\")", id="selects an empty string"),
        pytest.param({EXPRESSION: "a", "a": []}, empty, f"'a' {selected_nothing} ([])", id="selects an empty list"),
        pytest.param({EXPRESSION: "a", "a": {}}, empty, f"'a' {selected_nothing} ({{}})", id="selects an empty object"),
        pytest.param({EXPRESSION: "[x, y]", "a": 1}, empty, selected_nothing, id="selects a list of nulls"),
        pytest.param({EXPRESSION: "{x: x}", "a": 1}, empty, selected_nothing, id="selects an object of nulls"),
        pytest.param({"a": math.nan}, not_json_safe, finite, id="NaN"),
        pytest.param({"a": -math.inf}, not_json_safe, finite, id="minus Infinity"),
        pytest.param(json.loads('{"a": 1e400}'), not_json_safe, finite, id="1e400 parses as Infinity"),
        pytest.param({EXPRESSION: "b", "a": math.inf, "b": 1}, not_json_safe, finite, id="Infinity outside the selection"),
        pytest.param({"a": "\ud800"}, not_json_safe, finite, id="lone surrogate"),
    ]


@pytest.mark.parametrize(("execution_input", "error_name", "message"), _bad_input_cases())
def test_bad_input_raises_a_named_error_that_says_what_to_fix(
    layer: SimpleNamespace, execution_input: Any, error_name: str, message: str
) -> None:
    with pytest.raises(layer.errors.IdempotencyError) as raised:
        layer.key.compute_idempotency_key(execution_input)

    # The class name is the error name Step Functions reports: it must be exactly this one.
    assert type(raised.value) is getattr(layer.errors, error_name)
    assert message in str(raised.value)


def test_empty_selection_tells_the_user_what_to_point_the_expression_at(layer: SimpleNamespace) -> None:
    with pytest.raises(layer.errors.IdempotencyKeyEmptyError, match="point it at the fields that identify the request"):
        layer.key.compute_idempotency_key({EXPRESSION: "missing"})


def test_a_jmespath_error_is_chained_to_the_libraries_own_error(layer: SimpleNamespace) -> None:
    with pytest.raises(layer.errors.IdempotencyKeyExpressionError) as raised:
        layer.key.compute_idempotency_key({EXPRESSION: "orders["})

    assert type(raised.value.__cause__).__module__.startswith("jmespath")


def test_an_input_nested_too_deep_is_refused_before_it_is_walked(layer: SimpleNamespace) -> None:
    limit = layer.key.MAX_NESTING_DEPTH
    layer.key.compute_idempotency_key({"a": _deep(limit - 1)})  # the object is one level: exactly at the limit

    with pytest.raises(layer.errors.IdempotencyInputTooDeepError, match=f"at most {limit} are accepted"):
        layer.key.compute_idempotency_key({"a": _deep(limit)})


def test_an_input_too_large_for_the_payload_limit_is_refused(layer: SimpleNamespace) -> None:
    limit = layer.key.MAX_INPUT_BYTES
    overhead = len('{"a":""}')
    layer.key.compute_idempotency_key({"a": "x" * (limit - overhead)})  # exactly at the limit

    with pytest.raises(layer.errors.IdempotencyInputTooLargeError, match=f"at most {limit} are accepted") as raised:
        layer.key.compute_idempotency_key({"a": "x" * (limit - overhead + 1)})
    assert "Pass a reference" in str(raised.value)


def test_the_size_limit_counts_utf8_bytes_not_characters(layer: SimpleNamespace) -> None:
    limit = layer.key.MAX_INPUT_BYTES
    two_byte_characters = "é" * ((limit // 2) + 1)  # fewer characters than the limit, more bytes

    with pytest.raises(layer.errors.IdempotencyInputTooLargeError):
        layer.key.compute_idempotency_key({"a": two_byte_characters})


def test_every_error_key_py_raises_is_a_named_idempotency_error(layer: SimpleNamespace) -> None:
    raised_by_key = {name for name in vars(layer.key) if name.startswith("Idempotency") and name.endswith("Error")}
    tested = {case.values[1] for case in _bad_input_cases()} | {"IdempotencyInputTooDeepError", "IdempotencyInputTooLargeError"}

    assert raised_by_key == tested  # a new error in key.py needs a case here
    for name in raised_by_key:
        assert issubclass(getattr(layer.errors, name), layer.errors.IdempotencyError)
