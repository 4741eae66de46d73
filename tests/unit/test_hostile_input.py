"""Hostile inputs and key expressions, generated (hypothesis): every outcome is a result or a named error.

Deep and wide expressions (brackets thousands deep, long chains of operators), numbers JSON cannot
carry, slices with step 0, functions given the wrong types, unicode and inputs that are no object
are thrown at the key computation, at the take function's handler, at the front door (which must
key or refuse each input exactly as the take does, and start nothing when it refuses) and at the
release function's handler. Each either answers (a key, an outcome, a release) or fails with an error named in the
contract (``docs/contract.md``'s error table); an input it refuses leaves no record in the table.
The cases that once ended in RecursionError, ValueError, TypeError or OverflowError are fixed
regression examples.

The runs are derandomized (the same examples on every machine) and bounded in number; the slow
tier runs more, randomized.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emulator.adapters import LambdaContext
from idempotency import canonical, errors, key
from idempotency.expressions import MAX_EXPRESSION_DEPTH, MAX_EXPRESSION_STEPS, expression_depth
from idempotency.front_door import FrontDoorConfig, result_or_start
from idempotency.store import RecordStore
from tests.unit.conftest import RECORDS_TABLE
from tests.unit.test_envelope_handlers import START, Envelope, load_envelope
from tests.unit.test_front_door import RecordingStepFunctions, as_step_functions

if TYPE_CHECKING:
    from types import FrameType

FIELD = "idempotencyKeyJmespath"
CONTRACT = (Path(__file__).resolve().parents[2] / "docs" / "contract.md").read_text(encoding="utf-8")
# The error names the contract's error table documents (a row starts with the name in backquotes).
CONTRACT_ERRORS = frozenset(re.findall(r"^\| `(Idempotency\w+Error)`", CONTRACT, flags=re.MULTILINE))
# What the release answers for an event it cannot key, besides the contract's error names.
RELEASE_REASONS = frozenset(
    {"NotAnExecutionStatusChange", "NoExecutionInput", "JSONDecodeError", "ExecutionDoesNotExist", "InvalidArn"}
)
SCOPE = "wf"
CONTEXT = LambdaContext("hostile", "arn:aws:lambda:us-east-1:123456789012:function:hostile", 256, 10)
# Python frames the key computation may use beyond the caller's: Python allows 1,000 in all, and a
# Lambda handler's stack (runtime, Powertools' decorators, the function) is far below 400 of them.
FRAMES_FOR_THE_KEY = 600

FAST = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
MORE = settings(FAST, max_examples=1500, derandomize=False)

# --------------------------------------------------------------------------- what is generated
# Shapes JMESPath nests n levels deep: its parser and interpreter recurse on each.
NESTINGS: dict[str, Callable[[int], str]] = {
    "parentheses": lambda n: "(" * n + "a" + ")" * n,
    "brackets": lambda n: "[" * n + "a" + "]" * n,
    "unclosed brackets": lambda n: "[" * n,
    "hashes": lambda n: "{a:" * n + "a" + "}" * n,
    "negations": lambda n: "!" * n + "a",
    "references": lambda n: "map(" + "& " * n + "a, a)",
    "pipes": lambda n: "a" + " | a" * n,
    "ors": lambda n: "a" + " || a" * n,
    "ands": lambda n: "a" + " && a" * n,
    "comparisons": lambda n: "a" + " == a" * n,
    "projections": lambda n: "a" + "[*].a" * n,
    "flattens": lambda n: "a" + "[]" * n,
    "filters": lambda n: "a" + "[?a]" * n,
    "slices": lambda n: "a" + "[::-1]" * n,
    "value projections": lambda n: "a" + ".*" * n,
    "calls": lambda n: "not_null(" * n + "a" + ")" * n,
    "literal": lambda n: "`" + "[" * n + "1" + "]" * n + "`",
    "lists in projections": lambda n: "a[*].[" * n + "a" + "]" * n,
}
FUNCTIONS = [
    "abs",
    "avg",
    "ceil",
    "contains",
    "ends_with",
    "floor",
    "join",
    "keys",
    "length",
    "map",
    "max",
    "max_by",
    "merge",
    "min",
    "min_by",
    "not_null",
    "reverse",
    "sort",
    "sort_by",
    "starts_with",
    "sum",
    "to_array",
    "to_number",
    "to_string",
    "type",
    "values",
    "no_such_function",
]
# Integers of 20 digits to more than Python writes (4,300), made by the strategy (it cannot show them).
huge_integers = st.sampled_from([20, 4299, 5000]).map(lambda digits: 10**digits) | st.just(4299).map(
    lambda digits: -(10**digits)
)
STRANGE_STRINGS = ["", " ", "\ud800", "🙂", "ключ", "a\u0000b", "`", "'", '"', "\\", "1e400", "NaN", "-0"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | huge_integers
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(STRANGE_STRINGS)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=20,
)
depths = st.integers(min_value=1, max_value=150) | st.sampled_from([99, 100, 101, 3000, 50_000])
nested = st.builds(lambda shape, n: NESTINGS[shape](n), st.sampled_from(sorted(NESTINGS)), depths)
wide = st.builds(
    lambda template, n: template(n),
    st.sampled_from(
        [
            lambda n: "[" + ", ".join(["a"] * n) + "]",
            lambda n: "{" + ", ".join(f"k{i}: a" for i in range(n)) + "}",
            lambda n: "merge(" + ", ".join(["@"] * n) + ")",
            lambda n: "not_null(" + ", ".join(["missing"] * n) + ", a)",
        ]
    ),
    st.integers(min_value=1, max_value=5000),
)


def _literal(value: Any) -> str:
    try:
        return "`" + json.dumps(value).replace("`", "\\`") + "`"
    except ValueError:  # an integer too long to write: a number token of as many digits instead
        return "`" + "9" * 5000 + "`"


atoms = (
    st.sampled_from(["a", "b", "top", "nested", "nested.key1", "@", '"ключ"', '"with space"', "*", "[]"])
    | json_values.map(_literal)
    | st.text(max_size=6).map(lambda text: "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'")
)
numbers = st.integers(-5, 5).map(str) | st.sampled_from(["1" * 5000, "9" * 300, "-0"])
slices = st.tuples(st.none() | numbers, st.none() | numbers, st.none() | numbers | st.just("0")).map(
    lambda parts: "[" + ":".join("" if part is None else part for part in parts) + "]"
)


def _grown(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    arguments = st.lists(children | children.map(lambda child: "&" + child), max_size=3)
    return st.one_of(
        st.builds(
            lambda left, name: f"{left}.{name}", children, st.sampled_from(["a", "b", "key1", "[a, b]", "{x: a}", "*"])
        ),
        st.builds(lambda left, index: f"{left}[{index}]", children, numbers),
        st.builds(
            lambda left, part: left + part, children, slices | st.sampled_from(["[*]", "[]", "[?a]", "[?@ > `1`]"])
        ),
        st.builds(
            lambda left, op, right: f"{left} {op} {right}",
            children,
            st.sampled_from(["|", "||", "&&", "==", "!=", "<", ">="]),
            children,
        ),
        children.map(lambda child: "!" + child),
        children.map(lambda child: "&" + child),
        children.map(lambda child: f"({child})"),
        st.lists(children, min_size=1, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(children, min_size=1, max_size=4).map(
            lambda items: "{" + ", ".join(f"k{i}: {item}" for i, item in enumerate(items)) + "}"
        ),
        st.builds(lambda name, args: f"{name}({', '.join(args)})", st.sampled_from(FUNCTIONS), arguments),
    )


grammar = st.recursive(atoms, _grown, max_leaves=12)
soup = st.text(alphabet="abk1@*.[](){}|&!<>=?,:'`\"\\- 0", max_size=40)
expressions = grammar | nested | wide | soup
# Short expressions whose work doubles at each level, or that repeat the whole input many times:
# each may take the most steps allowed (about a second), so only the slow tier draws them at random.
amplifying = st.integers(min_value=1, max_value=33).map(lambda n: "[@, @]" + "[*].[@, @]" * n) | st.integers(
    min_value=1, max_value=3000
).map(lambda n: "to_string([" + ", ".join(["@"] * n) + "])")
field_values = expressions | json_values


def _with_expression(base: dict[str, Any], expression: Any) -> dict[str, Any]:
    return {**base, FIELD: expression}


objects = st.dictionaries(st.sampled_from(["a", "b", "top", "nested", "ключ"]), json_values, max_size=4)
deep_inputs = st.integers(min_value=95, max_value=3000).map(lambda n: {"a": _nest(n)})
inputs = st.builds(_with_expression, objects, field_values) | objects | json_values | deep_inputs


def _nest(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


# The expressions that once ended in generic errors, each with the words its named error must have.
REGRESSIONS = [
    ("3,000 nested parentheses", "(" * 3000 + "a" + ")" * 3000, "at most 100 are accepted"),
    ("50,000 opening brackets", "[" * 50_000, "at most 100 are accepted"),
    ("3,000 negations", "!" * 3000 + "a", "at most 100 are accepted"),
    ("3,000 pipes", "a" + " | a" * 3000, "at most 100 are accepted"),
    ("3,000 ors", "a" + " || a" * 3000, "at most 100 are accepted"),
    ("3,000 projections", "a" + "[*].a" * 3000, "at most 100 are accepted"),
    ("a literal 3,000 deep", "`" + "[" * 3000 + "]" * 3000 + "`", "at most 100 are accepted"),
    ("slice with step 0", "a[::0]", "a slice's step cannot be 0"),
    ("5,000-digit index", "a[" + "1" * 5000 + "]", "Exceeds the limit (4300 digits)"),
    ("ceil of NaN", "ceil(`NaN`)", "not a value JSON can carry"),
    ("an expression reference alone", "&a", "expression reference (&...)"),
    ("merge of a number", "merge(@, `1`)", "merge() cannot take 1 as argument 2"),
    ("floor of 1e400", "floor(`1e400`)", "not a value JSON can carry"),
]


# --------------------------------------------------------------------------- how outcomes are judged
def assert_named(error: BaseException) -> None:
    """``error`` is one of the contract's named errors, and nothing on its way was a crash it hides.

    Each function loads its own copy of the layer (as Lambda does), so classes are told by name.
    """
    name = type(error).__name__
    is_envelope_error = "IdempotencyError" in {base.__name__ for base in type(error).__mro__}
    assert is_envelope_error and name in CONTRACT_ERRORS, f"{name}: {str(error)[:300]}"
    cause: BaseException | None = error
    while cause is not None:
        # The depth bound refuses what would recurse too deep: no RecursionError is caught and renamed.
        assert not isinstance(cause, (RecursionError, MemoryError)), f"{name} hides {type(cause).__name__}"
        cause = cause.__cause__
    assert len(str(error)) < 2000  # an error repeats only an excerpt of a long expression


def identify_or_error(execution_input: Any, rules: Any) -> Any:
    try:
        identity = key.identify(execution_input, SCOPE, rules)
    except Exception as error:
        assert_named(error)
        return error
    assert re.fullmatch(rf"{SCOPE}#[0-9a-f]{{64}}", identity.key)
    assert identity.payload_hash is None or re.fullmatch(r"[0-9a-f]{64}", identity.payload_hash)
    return identity


@contextmanager
def frames_left(count: int) -> Iterator[None]:
    """Python's recursion limit set ``count`` frames above the caller's: what a Lambda handler leaves the key."""
    depth, frame = 0, cast("FrameType | None", sys._getframe())
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + count)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


@pytest.fixture
def envelope(
    dynamodb: Any, load_function: Any, template_environment: dict[str, str], aws_credentials: None
) -> Envelope:
    """The envelope's functions on moto, as ``test_envelope_handlers.py`` has them."""
    return load_envelope(load_function, template_environment)


def record_ids(envelope: Envelope) -> set[str]:
    items = envelope.dynamodb.scan(TableName=RECORDS_TABLE, ConsistentRead=True)["Items"]
    return {item["id"]["S"] for item in items}


# --------------------------------------------------------------------------- the key computation
def _rules() -> list[Any]:
    return [
        key.KeyRules(),
        key.KeyRules(validation_expression="@"),
        key.KeyRules(key_expression="nested", validation_expression="[top, a]"),
    ]


@FAST
@given(execution_input=inputs)
@example(execution_input={"a": [1, 2], FIELD: "a[::0]"})
@example(execution_input={"top": "level", "nested": {"key1": "v1", "key2": "v2"}, FIELD: "[nested.key1, nested.key2]"})
def test_any_input_gets_a_key_or_a_named_error(execution_input: Any) -> None:
    for rules in _rules():
        identify_or_error(execution_input, rules)


@FAST
@given(expression=expressions, execution_inputs=st.lists(inputs, min_size=1, max_size=3))
def test_any_deployment_expression_is_refused_at_cold_start_or_keys_every_input_or_names_its_error(
    expression: str, execution_inputs: list[Any]
) -> None:
    for argument in ("key_expression", "validation_expression"):
        try:
            arguments: dict[str, Any] = {argument: expression}
            rules = key.KeyRules(**arguments)
        except Exception as refused:
            assert type(refused) is errors.IdempotencyConfigurationError, type(refused).__name__
            assert_named(refused)
            continue
        for execution_input in execution_inputs:
            identify_or_error(execution_input, rules)


@FAST
@given(
    shape=st.sampled_from(sorted(NESTINGS)), levels=st.integers(min_value=1, max_value=100), validating=st.booleans()
)
def test_an_expression_within_the_depth_bound_is_evaluated_with_the_frames_a_handler_leaves(
    shape: str, levels: int, validating: bool
) -> None:
    expression = NESTINGS[shape](levels)
    if expression_depth(expression) > MAX_EXPRESSION_DEPTH:
        levels = levels // 3  # shapes counting three a level (projections of lists) reach the bound sooner
        expression = NESTINGS[shape](levels)
    # The deepest input accepted, so that what the expression builds around it is as deep as can be.
    execution_input = {"a": _nest(canonical.MAX_NESTING_DEPTH - 1), FIELD: expression}
    rules = key.KeyRules(validation_expression="@" if validating else None)
    assert expression_depth(expression) <= MAX_EXPRESSION_DEPTH

    with frames_left(FRAMES_FOR_THE_KEY):
        outcome = identify_or_error(execution_input, rules)

    if isinstance(outcome, Exception):
        assert "at most" not in str(outcome)  # not refused for its depth: it is within the bound


@pytest.mark.parametrize("shape", sorted(NESTINGS))
def test_every_shape_nested_as_deep_as_accepted_is_evaluated_with_the_frames_a_handler_leaves(shape: str) -> None:
    levels = next(
        n for n in range(MAX_EXPRESSION_DEPTH, 0, -1) if expression_depth(NESTINGS[shape](n)) <= MAX_EXPRESSION_DEPTH
    )
    execution_input = {"a": _nest(canonical.MAX_NESTING_DEPTH - 1), FIELD: NESTINGS[shape](levels)}

    with frames_left(FRAMES_FOR_THE_KEY):
        identify_or_error(execution_input, key.KeyRules(validation_expression="@"))
    with pytest.raises(errors.IdempotencyKeyExpressionError, match="at most 100 are accepted"):
        key.identify({**execution_input, FIELD: NESTINGS[shape](levels + 3)}, SCOPE)  # a level deeper is refused


def test_the_depth_counts_brackets_and_operators_and_skips_quoted_text() -> None:
    depth = expression_depth

    assert (depth("a"), depth("a.b"), depth("(a)"), depth("[a, b, c]"), depth("[a.b.c, d]")) == (0, 1, 1, 1, 3)
    assert depth("a | b | c") == depth("a || b") == depth("!!a") == 2
    assert depth("sort_by(items, &price)[0].id") == 3  # the examples docs/keys.md gives
    assert depth("'((((((' || \"]]]]\"") == 2  # brackets in a raw string or a quoted name are text
    assert depth('`[[1, "]]]]"], {"a": [2]}]`') == 3  # a literal's own nesting, its strings skipped
    assert depth('`"\\`[[["`') == 0  # an escaped backtick does not end the literal


def test_an_expression_that_multiplies_its_work_is_stopped_after_a_bounded_number_of_steps() -> None:
    # The largest input an execution may have, as 10,000 small items.
    items = {"items": [{"sku": f"s{i}", "n": i} for i in range(10_000)]}
    doubling = "[@, @]" + "[*].[@, @]" * 32  # 2^33 values from 300 characters
    repeating = "[" + ", ".join(["@"] * 100) + "]"  # the whole input 100 times over
    for expression in (doubling, repeating):
        with pytest.raises(
            errors.IdempotencyKeyExpressionError,
            match=f"more than {MAX_EXPRESSION_STEPS:,} steps",
        ):
            key.identify({**items, FIELD: expression}, SCOPE)

    # What a key is usually made of, from the same input, stays well within the steps.
    for expression in (
        "items[*].sku",
        "sort_by(items, &n)[*].sku",
        "to_string(@)",
        "items[?n > `5`].[sku, n]",
        "[@, @, @, @]",
    ):
        assert isinstance(identify_or_error({**items, FIELD: expression}, key.KeyRules()), key.Identity), expression


@pytest.mark.parametrize(
    ("expression", "words"), [case[1:] for case in REGRESSIONS], ids=[case[0] for case in REGRESSIONS]
)
def test_the_expressions_that_once_crashed_are_named_errors_for_the_input_and_for_the_deployment(
    expression: str, words: str
) -> None:
    with pytest.raises(errors.IdempotencyKeyExpressionError, match=re.escape(words)) as refused:
        key.identify({"a": [1, 2], FIELD: expression}, SCOPE)
    with pytest.raises(errors.IdempotencyConfigurationError, match=re.escape(words)) as refused_at_start:
        key.KeyRules(key_expression=expression)

    assert_named(refused.value)
    assert_named(refused_at_start.value)


# --------------------------------------------------------------------------- the take function's handler
_executions = itertools.count()


def take(envelope: Envelope, execution_input: Any) -> Any:
    """The take function's handler, as the state machine calls it; its output or its error."""
    event = {
        "input": execution_input,
        "executionId": f"arn:aws:states:us-east-1:123456789012:execution:wf:hostile-{next(_executions)}",
        "startTime": START,
        "stateMachine": envelope.machine,
        "runId": "run",
    }
    try:
        return envelope.take.lambda_handler(event, CONTEXT)
    except Exception as error:
        return error


def assert_taken_or_refused_without_a_record(envelope: Envelope, execution_input: Any) -> None:
    before = record_ids(envelope)
    outcome = take(envelope, execution_input)
    if isinstance(outcome, Exception):
        assert_named(outcome)
        assert record_ids(envelope) == before  # refused: nothing written
    else:
        assert outcome["outcome"] in ("ACQUIRED", "COMPLETED", "BUSY"), outcome
        assert outcome["key"].startswith(f"{SCOPE}#")


@FAST
@given(execution_input=inputs)
def test_the_take_handler_answers_or_refuses_any_input_with_a_named_error_and_no_record(
    envelope: Envelope, execution_input: Any
) -> None:
    assert_taken_or_refused_without_a_record(envelope, execution_input)


def test_the_take_handler_refuses_the_expressions_that_once_crashed_without_a_record(envelope: Envelope) -> None:
    for case, expression, words in REGRESSIONS:  # one stack for all: setting it up takes longer than the cases
        outcome = take(envelope, {"a": [1, 2], FIELD: expression})

        assert type(outcome).__name__ == "IdempotencyKeyExpressionError" and words in str(outcome), case
        assert_named(outcome)
    assert record_ids(envelope) == set()


# --------------------------------------------------------------------------- the front door
def front_door(envelope: Envelope, execution_input: Any) -> tuple[Any, RecordingStepFunctions]:
    """The front door's library call, with the take function's own deployment settings; its answer or its error."""
    settings = envelope.deployment(envelope.take).settings
    config = FrontDoorConfig(
        envelope.machine,
        key.KeyRules.from_parameters(
            key_expression=settings.key_rules.key_expression or "",
            allow_key_override="true" if settings.key_rules.allow_key_override else "false",
            validation_expression=settings.key_rules.validation_expression or "",
        ),
        settings.scope,
    )
    sfn = RecordingStepFunctions()
    try:
        store = RecordStore(envelope.dynamodb, settings.table_name, settings.record_ttl_seconds, settings.lease_seconds)
        return result_or_start(execution_input, config, store, lambda: as_step_functions(sfn), int(time.time())), sfn
    except Exception as error:
        return error, sfn


@FAST
@given(execution_input=inputs)
def test_the_front_door_keys_or_refuses_any_input_as_the_take_does_and_a_refusal_starts_and_writes_nothing(
    envelope: Envelope, execution_input: Any
) -> None:
    before = record_ids(envelope)
    answer, sfn = front_door(envelope, execution_input)
    taken = take(envelope, execution_input)

    if isinstance(answer, Exception):
        assert_named(answer)
        assert sfn.started == []
        assert type(taken).__name__ == type(answer).__name__, (answer, taken)
        assert record_ids(envelope) == before
    else:
        assert not isinstance(taken, Exception), taken
        assert answer.key == taken["key"]
        assert (answer.outcome, len(sfn.started)) == (
            ("COMPLETED", 0) if taken["outcome"] == "COMPLETED" else ("STARTED", 1)
        )


# --------------------------------------------------------------------------- the release function's handler
def _input_text(value: Any) -> str:
    try:
        return json.dumps(value)
    except ValueError:  # an integer too long to write: written by hand, as a JSON number
        return '{"a": ' + "1" * 5000 + "}"


# Inputs as Step Functions keeps them (JSON text), and texts no JSON parser should be given whole.
input_texts = (
    (st.builds(_with_expression, objects, field_values) | objects | json_values).map(_input_text)
    | st.sampled_from(["", "not json", "[", "{", "null", '"\\ud800"'])
    | st.integers(4290, 6000).map(lambda digits: '{"a": ' + "1" * digits + "}")
    | st.integers(1, 200_000).map(lambda levels: '{"a": ' + "[" * levels + "]" * levels + "}")
)
ARN_PREFIX = "arn:aws:states:us-east-1:123456789012:"
dates = (
    st.none()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.text(max_size=5)
    | st.sampled_from([1_800_000_000_000, 10**30])
)
events = st.fixed_dictionaries(
    {
        "executionArn": st.sampled_from([f"{ARN_PREFIX}execution:wf:gone", "junk", "", None, 5])
        | st.just(3000).map(lambda n: "arn:" + "x" * n),
        "stateMachineArn": st.sampled_from(
            [f"{ARN_PREFIX}stateMachine:wf", f"{ARN_PREFIX}stateMachine:a#b", "junk", None]
        ),
        "status": st.sampled_from(["ABORTED", "TIMED_OUT", "FAILED", "SUCCEEDED", None, 7]),
        "input": input_texts | json_values,
        "inputDetails": st.sampled_from([{"included": True}, {"included": False}, None, "yes", []]),
        "startDate": dates,
        "stopDate": dates,
    },
    optional={"error": st.text(max_size=20) | json_values, "cause": st.text(max_size=50) | json_values},
)


def release(envelope: Envelope, event: Any) -> dict[str, Any]:
    """The release function's handler, given an EventBridge event whose ``detail`` is ``event``: it must answer."""
    output: dict[str, Any] = envelope.release.lambda_handler(
        {
            "version": "0",
            "id": "e",
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "detail": event,
        },
        CONTEXT,
    )
    assert isinstance(output["released"], bool)
    if "reason" in output:
        assert output["reason"] in CONTRACT_ERRORS | RELEASE_REASONS, output
    return output


@FAST
@given(event=events | json_values)
def test_the_release_handler_never_fails_on_a_status_change_event_and_leaves_what_it_cannot_key(
    envelope: Envelope, event: Any
) -> None:
    before = record_ids(envelope)
    output = release(envelope, event)

    if not output["released"] and "reason" in output:
        assert record_ids(envelope) == before  # no key, so no record: nothing written


def test_the_release_handler_says_why_it_leaves_an_event_it_cannot_key(envelope: Envelope) -> None:
    machine, gone = envelope.machine, f"{ARN_PREFIX}execution:wf:gone"
    ended = {
        "executionArn": gone,
        "stateMachineArn": machine,
        "status": "ABORTED",
        "input": '{"orderId": "1"}',
        "inputDetails": {"included": True},
    }
    cases = [
        ({"status": "ABORTED"}, "NotAnExecutionStatusChange"),
        ({**ended, "executionArn": "junk"}, "NotAnExecutionStatusChange"),
        ({**ended, "stateMachineArn": f"{ARN_PREFIX}function:not-a-state-machine"}, "IdempotencyConfigurationError"),
        ({**ended, "inputDetails": {"included": False}}, "ExecutionDoesNotExist"),
        ({**ended, "input": '{"a": ' + "[" * 5000 + "]" * 5000 + "}"}, "IdempotencyInputTooDeepError"),
        ({**ended, "input": '{"a": ' + "1" * 5000 + "}"}, "IdempotencyInputNotJsonSafeError"),
        ({**ended, "input": "not json"}, "JSONDecodeError"),
        ({**ended, "input": '{"a": 1, "idempotencyKeyJmespath": "a[::0]"}'}, "IdempotencyKeyExpressionError"),
    ]
    for detail, reason in cases:
        assert release(envelope, detail) == {"released": False, "reason": reason}, reason
    assert record_ids(envelope) == set()


def test_the_release_handler_dates_an_event_without_a_usable_stop_date_now(envelope: Envelope) -> None:
    settings = envelope.deployment(envelope.release).settings
    for number, stop_date in enumerate([float("nan"), float("inf"), -1, 10**30, True, "yesterday"]):
        detail = {
            "executionArn": f"{ARN_PREFIX}execution:wf:gone-{number}",
            "stateMachineArn": envelope.machine,
            "status": "ABORTED",
            "input": json.dumps({"orderId": number}),
            "inputDetails": {"included": True},
            "stopDate": stop_date,
            "startDate": stop_date,
        }
        output = envelope.release_ended(detail, envelope.sfn, now=1_800_000_000)

        # No record yet: one held by the ended execution until its calls can have ended, dated from now.
        assert output == {
            "released": False,
            "key": output["key"],
            "freeAt": 1_800_000_000 + settings.longest_call_seconds,
        }, stop_date


def test_the_release_handler_leaves_the_executions_whose_expressions_once_crashed(envelope: Envelope) -> None:
    for number, (case, expression, _) in enumerate(REGRESSIONS):  # one stack for all, as above
        owner = envelope.start(f"owner-{number}", {"a": [1, 2], FIELD: expression})
        event = {
            "executionArn": owner,
            "stateMachineArn": envelope.machine,
            "status": "ABORTED",
            "inputDetails": {"included": False},
        }

        assert release(envelope, event) == {"released": False, "reason": "IdempotencyKeyExpressionError"}, case
    assert record_ids(envelope) == set()


# --------------------------------------------------------------------------- more of it, in the slow tier
@pytest.mark.slow
@MORE
@given(execution_input=inputs, expression=expressions | amplifying)
def test_many_more_random_inputs_and_expressions_get_keys_or_named_errors(
    execution_input: Any, expression: str
) -> None:
    identify_or_error(execution_input, key.KeyRules())
    if isinstance(execution_input, dict):
        identify_or_error({**execution_input, FIELD: expression}, key.KeyRules(validation_expression="@"))
    try:
        rules = key.KeyRules(key_expression=expression)
    except errors.IdempotencyConfigurationError as refused:
        assert_named(refused)
    else:
        identify_or_error(execution_input, rules)
