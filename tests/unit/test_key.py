"""The idempotency key (envelope/layers/idempotency/idempotency/key.py): canonical JSON, JMESPath selection,
named errors, and what a key means: its scope, the deployment's key rules and the payload hash validation
compares.

Expected keys are computed here with ``hashlib`` from canonical JSON written out by hand, never by
the code under test.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import pytest

import idempotency.canonical
import idempotency.key
from idempotency import errors, expressions, limits
from idempotency.canonical import MAX_NESTING_DEPTH, canonical_json
from idempotency.key import Identity, KeyRules, compute_idempotency_key, identify, mismatch_message

EXPRESSION = "idempotencyKeyJmespath"  # the input field CONTRACT.md names


def sha256_hex(canonical: str) -> str:
    """The key CONTRACT.md defines for a value whose canonical JSON is ``canonical``."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- canonical JSON
NESTED = {"b": [3, {"y": None, "x": True}], "a": {"d": "é", "c": 1.5}}
NESTED_CANONICAL = '{"a":{"c":1.5,"d":"é"},"b":[3,{"x":true,"y":null}]}'


def test_the_key_is_the_lowercase_hex_sha256_of_the_hand_written_canonical_json() -> None:
    key = compute_idempotency_key(NESTED)

    assert key == sha256_hex(NESTED_CANONICAL)
    assert re.fullmatch(r"[0-9a-f]{64}", key)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"a": {"c": 1.5, "d": "é"}, "b": [3, {"x": true, "y": null}]}', id="sorted with spaces"),
        pytest.param('{"b":[3,{"y":null,"x":true}],"a":{"d":"é","c":1.5}}', id="reversed at every level, compact"),
        pytest.param(
            '{\n  "b": [ 3, { "x": true,\t"y": null } ],\n  "a": { "d": "\\u00e9", "c": 1.5 }\n}',
            id="newlines, tabs, escaped unicode",
        ),
        pytest.param('{"a":{"d":"é","c":1.5},"b":[3,{"y":null,"x":true}]}', id="inner objects reversed only"),
    ],
)
def test_key_order_and_whitespace_do_not_change_the_key(text: str) -> None:
    assert compute_idempotency_key(json.loads(text)) == sha256_hex(NESTED_CANONICAL)


def test_array_order_does_change_the_key() -> None:
    # Arrays are ordered in JSON: only object keys are sorted.
    assert compute_idempotency_key({"a": [1, 2]}) != compute_idempotency_key({"a": [2, 1]})


def test_unicode_is_hashed_as_utf8_not_as_ascii_escapes() -> None:
    value = {"name": "Zoë 日本 🙂"}

    key = compute_idempotency_key(value)

    assert key == sha256_hex('{"name":"Zoë 日本 🙂"}')
    assert key != sha256_hex(json.dumps(value, separators=(",", ":")))  # the \\u-escaped form
    assert canonical_json(value) == '{"name":"Zoë 日本 🙂"}'.encode()


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
def test_the_key_is_computed_from_the_selected_value_only(expression: str, canonical: str) -> None:
    assert compute_idempotency_key({**ORDER, EXPRESSION: expression}) == sha256_hex(canonical)


def test_fields_the_expression_does_not_select_do_not_change_the_key() -> None:
    first = {**ORDER, EXPRESSION: "order.id"}
    later = {**first, "requestedAt": "2026-11-24T08:00:00Z", "order": {"id": "42", "note": "changed"}, "extra": [1]}

    assert compute_idempotency_key(first) == compute_idempotency_key(later)


def test_a_change_in_the_selected_value_changes_the_key() -> None:
    first = {**ORDER, EXPRESSION: "order.id"}
    other = {**first, "order": {"id": "43", "note": "gift"}}

    assert compute_idempotency_key(first) != compute_idempotency_key(other)


def test_without_an_expression_every_field_is_part_of_the_key() -> None:
    assert compute_idempotency_key(ORDER) != compute_idempotency_key({**ORDER, "requestedAt": "later"})


def test_the_expression_text_itself_is_not_part_of_the_key() -> None:
    # Only the selected value counts: two spellings that select the same value share a key.
    spellings = ["order.id", 'order."id"', "[order.id][0]", "order.id || customer"]

    keys = {compute_idempotency_key({**ORDER, EXPRESSION: spelling}) for spelling in spellings}

    assert keys == {sha256_hex('"42"')}


def test_the_expression_sees_the_whole_input_including_its_own_field() -> None:
    execution_input = {"a": 1, EXPRESSION: "@"}

    assert compute_idempotency_key(execution_input) == sha256_hex('{"a":1,"idempotencyKeyJmespath":"@"}')


@pytest.mark.parametrize(
    ("selected", "canonical"),
    [
        pytest.param(False, "false", id="false"),
        pytest.param(0, "0", id="zero"),
        pytest.param([None, 1], "[null,1]", id="a list with one non-null item"),
    ],
)
def test_falsy_values_that_are_not_absence_are_valid_keys(selected: Any, canonical: str) -> None:
    assert compute_idempotency_key({"v": selected, EXPRESSION: "v"}) == sha256_hex(canonical)


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
        pytest.param(
            {EXPRESSION: "orders[", "a": 1},
            expression,
            "'orders[' is not a valid JMESPath expression",
            id="syntax error",
        ),
        pytest.param(
            {EXPRESSION: "a ==", "a": 1},
            expression,
            "'a ==' is not a valid JMESPath expression",
            id="incomplete expression",
        ),
        pytest.param(
            {EXPRESSION: "length(a)", "a": 42},
            expression,
            "invalid type for value: 42",
            id="function on the wrong type",
        ),
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
        pytest.param(
            {EXPRESSION: "b", "a": math.inf, "b": 1}, not_json_safe, finite, id="Infinity outside the selection"
        ),
        pytest.param({"a": "\ud800"}, not_json_safe, finite, id="lone surrogate"),
    ]


@pytest.mark.parametrize(("execution_input", "error_name", "message"), _bad_input_cases())
def test_bad_input_raises_a_named_error_that_says_what_to_fix(
    execution_input: Any, error_name: str, message: str
) -> None:
    with pytest.raises(errors.IdempotencyError) as raised:
        compute_idempotency_key(execution_input)

    # The class name is the error name Step Functions reports: it must be exactly this one.
    assert type(raised.value) is getattr(errors, error_name)
    assert message in str(raised.value)


def test_empty_selection_tells_the_user_what_to_point_the_expression_at() -> None:
    with pytest.raises(errors.IdempotencyKeyEmptyError, match="point it at the fields that identify the request"):
        compute_idempotency_key({EXPRESSION: "missing"})


def test_a_jmespath_error_is_chained_to_the_libraries_own_error() -> None:
    with pytest.raises(errors.IdempotencyKeyExpressionError) as raised:
        compute_idempotency_key({EXPRESSION: "orders["})

    assert type(raised.value.__cause__).__module__.startswith("jmespath")


def test_an_input_nested_too_deep_is_refused_before_it_is_walked() -> None:
    limit = MAX_NESTING_DEPTH
    compute_idempotency_key({"a": _deep(limit - 1)})  # the object is one level: exactly at the limit

    with pytest.raises(errors.IdempotencyInputTooDeepError, match=f"at most {limit} are accepted"):
        compute_idempotency_key({"a": _deep(limit)})


def test_an_input_too_large_for_the_payload_limit_is_refused() -> None:
    limit = limits.MAX_INPUT_BYTES
    overhead = len('{"a":""}')
    compute_idempotency_key({"a": "x" * (limit - overhead)})  # exactly at the limit

    with pytest.raises(errors.IdempotencyInputTooLargeError, match=f"at most {limit} are accepted") as raised:
        compute_idempotency_key({"a": "x" * (limit - overhead + 1)})
    assert "Pass a reference" in str(raised.value)


def test_the_size_limit_counts_utf8_bytes_not_characters() -> None:
    limit = limits.MAX_INPUT_BYTES
    two_byte_characters = "é" * ((limit // 2) + 1)  # fewer characters than the limit, more bytes

    with pytest.raises(errors.IdempotencyInputTooLargeError):
        compute_idempotency_key({"a": two_byte_characters})


def test_every_error_key_py_raises_is_a_named_idempotency_error() -> None:
    # key.py with the modules it identifies an input through: canonical JSON and bounded expressions.
    modules = (idempotency.key, idempotency.canonical, expressions)
    raised_by_key = {
        name for module in modules for name in vars(module) if name.startswith("Idempotency") and name.endswith("Error")
    }
    raised_by_key.discard("IdempotencyError")  # the base class, named where any of them may be raised
    tested = {case.values[1] for case in _bad_input_cases()} | {
        "IdempotencyInputTooDeepError",
        "IdempotencyInputTooLargeError",
        "IdempotencyKeyOverrideNotAllowedError",  # test_an_override_the_deployment_does_not_allow_is_bad_input
        "IdempotencyConfigurationError",  # the scope and rules sections below
    }

    assert raised_by_key == tested  # a new error in key.py needs a case here
    for name in raised_by_key:
        assert issubclass(getattr(errors, name), errors.IdempotencyError)


# --------------------------------------------------------------------------- scope: the record's id
SCOPE = "IdempotentWorkflow"


def record_id(scope: str, canonical: str) -> str:
    """The record's id docs/keys.md defines: the scope, "#", the key of the selected value."""
    return scope + "#" + sha256_hex(canonical)


def test_the_record_id_is_the_scope_a_hash_sign_and_the_key() -> None:
    identity = identify(NESTED, SCOPE)

    assert identity.key == f"{SCOPE}#{sha256_hex(NESTED_CANONICAL)}"
    assert identity.key.partition("#")[2] == compute_idempotency_key(NESTED)


def test_the_scope_separates_two_workflows_sharing_a_table() -> None:
    first = identify(ORDER, "OrdersWorkflow")
    second = identify(ORDER, "RefundsWorkflow")

    assert first.key != second.key
    assert first.key.partition("#")[2] == second.key.partition("#")[2]  # the same request, the same hash
    assert first.payload_hash == second.payload_hash


@pytest.mark.parametrize(
    "scope",
    [
        pytest.param("IdempotentWorkflow-dev_2", id="a state machine's name"),
        pytest.param("orders.v2@eu", id="punctuation a name cannot have but a scope may"),
        pytest.param("Zoë", id="non-ASCII"),
        pytest.param("s" * 128, id="at the length limit"),
    ],
)
def test_a_valid_scope_is_used_as_it_is(scope: str) -> None:
    assert identify({"a": 1}, scope).key == record_id(scope, '{"a":1}')


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        pytest.param("", "must be a non-empty string", id="empty"),
        pytest.param(None, "must be a non-empty string", id="null"),
        pytest.param(7, "must be a non-empty string", id="a number"),
        pytest.param("orders#v2", "contains '#'", id="the separator"),
        pytest.param("orders v2", "without whitespace", id="a space"),
        pytest.param(" orders", "without whitespace", id="leading space"),
        pytest.param("orders\n", "without whitespace", id="a newline"),
        pytest.param("orders\x00", "printable", id="a control character"),
        pytest.param("s" * 129, "at most 128", id="too long"),
    ],
)
def test_an_invalid_scope_is_a_configuration_error_naming_the_parameter(scope: Any, message: str) -> None:
    with pytest.raises(errors.IdempotencyConfigurationError) as raised:
        identify({"a": 1}, scope)

    assert message in str(raised.value)
    assert "IdempotencyScope" in str(raised.value)


def test_a_bad_scope_is_reported_before_bad_input() -> None:
    # A deployment's mistake must not hide behind whatever input happens to arrive first.
    with pytest.raises(errors.IdempotencyConfigurationError):
        identify([1, 2], "")


@pytest.mark.parametrize(("execution_input", "error_name", "message"), _bad_input_cases())
def test_identify_raises_the_same_named_errors_for_bad_input(
    execution_input: Any, error_name: str, message: str
) -> None:
    with pytest.raises(errors.IdempotencyError) as raised:
        identify(execution_input, SCOPE)

    assert type(raised.value) is getattr(errors, error_name)
    assert message in str(raised.value)


# --------------------------------------------------------------------------- the deployment's key expression
def test_the_deployments_expression_selects_the_key() -> None:
    rules = KeyRules(key_expression="[customer, order.id]")
    later = {**ORDER, "requestedAt": "2026-11-24T08:00:00Z"}

    assert identify(ORDER, SCOPE, rules).key == record_id(SCOPE, '["c-1","42"]')
    assert identify(later, SCOPE, rules).key == identify(ORDER, SCOPE, rules).key
    assert compute_idempotency_key(ORDER, rules) == sha256_hex('["c-1","42"]')


@pytest.mark.parametrize("empty", [None, ""])
def test_no_deployment_expression_keys_on_the_whole_input(empty: str | None) -> None:
    rules = KeyRules(key_expression=empty)

    assert identify({"b": 2, "a": 1}, SCOPE, rules).key == record_id(SCOPE, '{"a":1,"b":2}')


def test_the_deployments_expression_selecting_nothing_names_the_parameter() -> None:
    rules = KeyRules(key_expression="orderId")

    with pytest.raises(errors.IdempotencyKeyEmptyError) as raised:
        identify({"order": "42"}, SCOPE, rules)

    message = str(raised.value)
    assert "template parameter IdempotencyKeyJmespath 'orderId' selected nothing from the input (null)" in message
    assert "point it at the fields that identify the request" in message


def test_the_deployments_expression_failing_on_an_input_names_the_parameter() -> None:
    rules = KeyRules(key_expression="length(a)")

    with pytest.raises(errors.IdempotencyKeyExpressionError) as raised:
        identify({"a": 42}, SCOPE, rules)

    assert "template parameter IdempotencyKeyJmespath 'length(a)' failed on this input" in str(raised.value)
    assert type(raised.value.__cause__).__module__.startswith("jmespath")


def test_an_allowed_override_replaces_the_deployments_expression() -> None:
    rules = KeyRules(key_expression="customer", allow_key_override=True)

    identity = identify({**ORDER, EXPRESSION: "order.id"}, SCOPE, rules)

    assert identity.key == record_id(SCOPE, '"42"')


def test_an_override_the_deployment_does_not_allow_is_bad_input() -> None:
    rules = KeyRules(key_expression="customer", allow_key_override=False)

    with pytest.raises(errors.IdempotencyKeyOverrideNotAllowedError) as raised:
        identify({**ORDER, EXPRESSION: "order.id"}, SCOPE, rules)

    message = str(raised.value)
    assert "AllowKeyOverride is false" in message
    assert "IdempotencyKeyJmespath 'customer'" in message
    assert f"remove {EXPRESSION} from the input" in message
    # Without the field the deployment's expression applies as usual.
    assert identify(ORDER, SCOPE, rules).key == record_id(SCOPE, '"c-1"')


@pytest.mark.parametrize("value", ["order.id", "", None, "orders["], ids=["valid", "empty", "null", "invalid"])
def test_a_refused_override_is_refused_whatever_its_value(value: Any) -> None:
    rules = KeyRules(allow_key_override=False)

    with pytest.raises(errors.IdempotencyKeyOverrideNotAllowedError, match="from the whole input"):
        identify({**ORDER, EXPRESSION: value}, SCOPE, rules)


# --------------------------------------------------------------------------- the rules themselves
BAD_EXPRESSIONS = [
    pytest.param("orders[", "is not a valid JMESPath expression", id="syntax error"),
    pytest.param("a ==", "is not a valid JMESPath expression", id="incomplete"),
    pytest.param("no_such_fn(a)", "unknown function no_such_fn()", id="unknown function"),
    pytest.param("[a, no_such_fn(b)] | [0]", "unknown function no_such_fn()", id="unknown function nested"),
    pytest.param("length(a, b)", "length() takes 1 argument(s), got 2", id="too many arguments"),
    pytest.param("merge()", "merge() takes at least 1 argument(s), got 0", id="too few for a variadic function"),
    pytest.param("   ", "is blank", id="blank"),
    pytest.param(5, "must be a JMESPath string", id="not a string"),
]


@pytest.mark.parametrize(("expression", "message"), BAD_EXPRESSIONS)
@pytest.mark.parametrize(
    ("argument", "parameter"),
    [("key_expression", "IdempotencyKeyJmespath"), ("validation_expression", "PayloadValidationJmespath")],
)
def test_an_invalid_expression_in_either_parameter_is_a_configuration_error(
    argument: str, parameter: str, expression: Any, message: str
) -> None:
    with pytest.raises(errors.IdempotencyConfigurationError) as raised:
        KeyRules(**{argument: expression})

    assert str(raised.value).startswith(parameter)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "expression",
    ["not_null(a, b)", "merge(a)", "sort_by(items, &id)[*].id", "{o: order.id, c: customer}", "to_string(`1`)"],
)
def test_valid_expressions_with_functions_are_accepted(expression: str) -> None:
    KeyRules(key_expression=expression, validation_expression=expression)


def test_rules_from_template_parameter_text() -> None:
    rules = KeyRules.from_parameters("order.id", "False", "")

    assert rules == KeyRules(key_expression="order.id", allow_key_override=False, validation_expression=None)
    assert not rules.validates_payload
    assert KeyRules.from_parameters() == KeyRules()
    assert KeyRules.from_parameters(allow_key_override=" TRUE ").allow_key_override is True


@pytest.mark.parametrize("text", ["yes", "1", "", "tru"])
def test_allow_key_override_is_true_or_false_only(text: str) -> None:
    with pytest.raises(errors.IdempotencyConfigurationError, match="AllowKeyOverride must be true or false"):
        KeyRules.from_parameters(allow_key_override=text)


def test_allow_key_override_as_text_is_refused_by_the_constructor() -> None:
    # "false" is a true value in Python: the constructor refuses text rather than allow by mistake.
    with pytest.raises(errors.IdempotencyConfigurationError, match="AllowKeyOverride"):
        KeyRules(allow_key_override="false")  # type: ignore[arg-type]  # text where a bool is due: the case under test


def test_the_default_rules_key_on_the_whole_input_allow_overrides_and_validate_nothing() -> None:
    # As in the original pattern and in Powertools: the key alone identifies a request.
    rules = KeyRules()

    assert (rules.key_expression, rules.allow_key_override, rules.validation_expression) == (None, True, None)
    assert not rules.validates_payload
    assert identify(ORDER, SCOPE) == identify(ORDER, SCOPE, rules)
    assert identify(ORDER, SCOPE).payload_hash is None


# --------------------------------------------------------------------------- payload validation
PAYMENT = {"paymentId": "p-7", "amount": 12, "currency": "EUR"}
PAYMENT_CANONICAL = '{"amount":12,"currency":"EUR","paymentId":"p-7"}'


def test_validating_the_whole_input_hashes_the_whole_input() -> None:
    whole = KeyRules(validation_expression="@")
    keyed = KeyRules(key_expression="paymentId", validation_expression="@")

    assert identify(PAYMENT, SCOPE, whole).payload_hash == sha256_hex(PAYMENT_CANONICAL)
    assert identify(PAYMENT, SCOPE, keyed).payload_hash == sha256_hex(PAYMENT_CANONICAL)


def test_by_default_a_repeat_that_differs_only_outside_the_key_is_the_same_request() -> None:
    # The original pattern's own example: the key is computed from nested.key1 and nested.key2 only.
    first = {"top": "level", "nested": {"key1": "value1", "key2": "value2"}, EXPRESSION: "[nested.key1, nested.key2]"}
    repeat = {**first, "top": "another level"}

    assert identify(first, SCOPE) == identify(repeat, SCOPE)
    assert identify(repeat, SCOPE) == Identity(record_id(SCOPE, '["value1","value2"]'), None)


def test_a_repeat_that_differs_only_outside_the_key_is_a_mismatch_when_validating() -> None:
    rules = KeyRules(key_expression="paymentId", validation_expression="@")
    first = identify(PAYMENT, SCOPE, rules)
    repeat = identify({**PAYMENT, "amount": 1200}, SCOPE, rules)

    assert repeat.key == first.key  # the key alone would return the first payment's result
    assert repeat.payload_hash != first.payload_hash  # validation tells them apart
    assert repeat.payload_hash == sha256_hex('{"amount":1200,"currency":"EUR","paymentId":"p-7"}')


def test_a_narrowed_validation_ignores_the_fields_it_does_not_select() -> None:
    rules = KeyRules(key_expression="paymentId", validation_expression="[amount, currency]")
    first = identify({**PAYMENT, "requestedAt": "10:00"}, SCOPE, rules)
    retry = identify({**PAYMENT, "requestedAt": "10:05"}, SCOPE, rules)
    changed = identify({**PAYMENT, "currency": "USD"}, SCOPE, rules)

    assert first.payload_hash == retry.payload_hash == sha256_hex('[12,"EUR"]')
    assert changed.payload_hash == sha256_hex('[12,"USD"]')


@pytest.mark.parametrize("off", [None, ""])
def test_validation_off_gives_no_payload_hash(off: str | None) -> None:
    rules = KeyRules(key_expression="paymentId", validation_expression=off)

    identity = identify(PAYMENT, SCOPE, rules)

    assert identity.payload_hash is None
    assert identity.key == record_id(SCOPE, '"p-7"')


def test_a_validation_expression_selecting_nothing_hashes_null() -> None:
    rules = KeyRules(validation_expression="customer")

    assert identify(PAYMENT, SCOPE, rules).payload_hash == sha256_hex("null")


@pytest.mark.parametrize(
    "text",
    [
        '{"amount": 12, "currency": "EUR", "paymentId": "p-7"}',
        '{"paymentId":"p-7","currency":"EUR","amount":12}',
        '{\n\t"currency" : "\\u0045UR",\n  "amount": 12, "paymentId": "p-7"\n}',
    ],
    ids=["spaces", "reversed", "newlines, tabs, escapes"],
)
def test_the_payload_hash_ignores_key_order_and_whitespace(text: str) -> None:
    narrowed = KeyRules(validation_expression="{c: currency, a: amount}")
    whole = KeyRules(validation_expression="@")

    assert identify(json.loads(text), SCOPE, whole).payload_hash == sha256_hex(PAYMENT_CANONICAL)
    assert identify(json.loads(text), SCOPE, narrowed).payload_hash == sha256_hex('{"a":12,"c":"EUR"}')


def test_how_the_input_spells_its_key_is_not_part_of_the_validated_payload() -> None:
    # Two producers of one request may spell the expression differently: same key, same payload.
    whole = KeyRules(validation_expression="@")
    spellings = [
        identify({**PAYMENT, EXPRESSION: spelling}, SCOPE, whole) for spelling in ("paymentId", "[paymentId][0]")
    ]

    assert {identity.key for identity in spellings} == {record_id(SCOPE, '"p-7"')}
    assert {identity.payload_hash for identity in spellings} == {sha256_hex(PAYMENT_CANONICAL)}


def test_a_validation_expression_failing_on_an_input_names_the_parameter() -> None:
    rules = KeyRules(validation_expression="length(amount)")

    with pytest.raises(errors.IdempotencyKeyExpressionError) as raised:
        identify(PAYMENT, SCOPE, rules)

    assert "template parameter PayloadValidationJmespath 'length(amount)' failed on this input" in str(raised.value)


def test_the_mismatch_cause_names_the_key_never_the_payload() -> None:
    secret = {"paymentId": "p-7", "card": "4111-1111-1111-1111"}
    identity = identify(secret, SCOPE, KeyRules(key_expression="paymentId"))

    message = mismatch_message(identity.key)

    assert identity.key in message
    assert "4111" not in message and "p-7" not in message
    assert "PayloadValidationJmespath" in message
    error = errors.IdempotencyPayloadMismatchError(message)
    assert isinstance(error, errors.IdempotencyError)
    assert type(error).__name__ == "IdempotencyPayloadMismatchError"  # the ASL error name users match


def test_the_new_errors_say_what_they_mean() -> None:
    for name in ("IdempotencyKeyOverrideNotAllowedError", "IdempotencyPayloadMismatchError"):
        error_class = getattr(errors, name)
        assert issubclass(error_class, errors.IdempotencyError)
        assert error_class.__doc__ and len(error_class.__doc__) > 40
