"""Issue 12: every guarantee holds at AWS's real limits.

Step Functions carries at most 256 KiB per state, input and output, counted in UTF-8 bytes; a
Lambda error's cause may be 32,768 characters. The envelope accepts an input of up to
``MAX_INPUT_BYTES`` and stores a result of up to ``MAX_RESULT_BYTES`` (UTF-8 JSON, not ASCII
escapes); a larger result is a named failure recorded on the record, never a silent rerun, and
a result Step Functions itself refuses (``States.DataLimitExceeded``, which no Catch handles) is
recorded FAILED by the release function.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulator import OfflineStack
from emulator.stack import ExecutionResult
from idempotency import canonical as canonical_module
from idempotency import limits
from idempotency.key import compute_idempotency_key
from tests.integration.support import (
    QUIET,
    STEP_CALLS,
    business_step_calls,
    held_owner,
    intercept_steps,
    start_registered_waiter,
    wait_until,
)

pytestmark = pytest.mark.offline_only(reason="shapes the steps' results and errors with Lambda interceptors")

MAX_RESULT_BYTES: int = limits.MAX_RESULT_BYTES
MAX_INPUT_BYTES: int = limits.MAX_INPUT_BYTES
PAYLOAD_LIMIT_BYTES = 256 * 1024
# The longest cause Step Functions accepts for an error (Fail state, SendTaskFailure, a task's failure).
MAX_CAUSE_CHARS = 32_768
WOKEN = "Return the result it saved"
HIT = "Return the stored result"
RUN_STEPS = "Run the business steps"
# What every business step call but one returns here (whatever the template's steps are).
SMALL_STEP_OUTPUT = {"n": 0}
CYRILLIC_AND_ACCENTED = "Съешь же ещё этих мягких французских булок — à côté de l'église, déjà été. "


def utf8_size(value: Any) -> int:
    """The bytes of ``value`` as compact JSON in UTF-8: how Step Functions counts it, and how the record stores a
    result."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def text_of(size: int, sample: str) -> str:
    """Text of exactly ``size`` UTF-8 bytes made of ``sample`` repeated, topped up with ASCII."""
    text: list[str] = []
    used = 0
    while True:
        for char in sample:
            width = len(char.encode("utf-8"))
            if used + width > size:
                return "".join(text) + "x" * (size - used)
            text.append(char)
            used += width


class OneStepReturns:
    """An interceptor of every business step: the calls run as they are (gates still hold them), but
    the first returns ``{"text": text}`` and the others ``SMALL_STEP_OUTPUT``, so the steps' result
    is the template's own shape with one text in it, whichever steps the template has."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._first = True
        self._lock = threading.Lock()

    def __call__(self, handler: Any, event: Any, context: Any) -> Any:
        handler(event, context)
        with self._lock:
            first, self._first = self._first, False
        return {"text": self.text} if first else SMALL_STEP_OUTPUT


def bare_result_size(stack: OfflineStack, unique: str) -> int:
    """The UTF-8 size of the steps' result when the one text is empty, measured by a run."""
    with intercept_steps(stack, OneStepReturns("")):
        probe = stack.run({"orderId": f"{unique}-size-probe", "forceFailure": False})
    assert probe.status == "SUCCEEDED", (probe.error, probe.cause)
    return utf8_size(probe.output)


def text_for_result_size(stack: OfflineStack, unique: str, size: int, sample: str) -> str:
    """The one text that makes the steps' whole result exactly ``size`` bytes of UTF-8 JSON."""
    return text_of(size - bare_result_size(stack, unique), sample)


def owner_returning_with_waiters(
    stack: OfflineStack, execution_input: Any, text: str, waiters: int
) -> tuple[ExecutionResult, list[ExecutionResult]]:
    """Run an owner whose one step returns ``text``, with ``waiters`` duplicates registered while it runs; all of them,
    ended."""
    with intercept_steps(stack, OneStepReturns(text)):
        with held_owner(stack, execution_input) as (owner_arn, gate):
            waiter_arns = [start_registered_waiter(stack, execution_input) for _ in range(waiters)]
            gate.open()
            owner = stack.wait_for(owner_arn)
        return owner, [stack.wait_for(arn) for arn in waiter_arns]


@pytest.fixture
def patient_stack() -> Iterator[OfflineStack]:
    """Waiters look on their own only after 600 s (6 s here): a waiter that returns the saved result sooner was woken.

    One per test: a test that fails here must not leave waiters running into the next one.
    """
    with OfflineStack({"PollIntervalSeconds": 600, "LockLeaseSeconds": 600}, environment=QUIET) as stack:
        yield stack


# --------------------------------------------------------------------------- results stored as UTF-8
def test_a_result_of_150_000_bytes_of_non_ascii_text_is_stored_as_utf8_and_every_duplicate_returns_it(
    patient_stack: OfflineStack, unique: str
) -> None:
    stack = patient_stack
    execution_input = {"orderId": unique, "forceFailure": False}
    text = text_of(150_000, CYRILLIC_AND_ACCENTED)
    calls = business_step_calls(stack)
    owner, waiters = owner_returning_with_waiters(stack, execution_input, text, waiters=4)
    record = stack.get_record(compute_idempotency_key(execution_input))

    assert owner.status == "SUCCEEDED", (owner.error, owner.cause)
    assert text in json.dumps(owner.output, ensure_ascii=False)
    for waiter in waiters:
        assert waiter.status == "SUCCEEDED", (waiter.error, waiter.cause)
        assert waiter.output == owner.output
    assert business_step_calls(stack) - calls == STEP_CALLS  # five duplicates, the steps ran once
    assert record is not None and record["executionstatus"] == "SUCCESS"
    stored = record["executionresult"]
    assert json.loads(stored) == owner.output
    # UTF-8 text: about the result's own size, not six bytes per character (\uXXXX escapes).
    assert len(stored.encode("utf-8")) == utf8_size(owner.output) < 151_000
    assert "\\u" not in stored


# --------------------------------------------------------------------------- a result too large to store
def test_a_result_over_the_storable_size_is_recorded_failed_and_its_waiters_fail_with_it_without_a_rerun(
    patient_stack: OfflineStack, unique: str
) -> None:
    stack = patient_stack
    execution_input = {"orderId": unique, "forceFailure": False}
    size = MAX_RESULT_BYTES + 1
    assert size < PAYLOAD_LIMIT_BYTES - 1024  # Step Functions itself still carries it, with the envelope's fields
    text = text_for_result_size(stack, unique, size, "x")
    calls = business_step_calls(stack)
    owner, waiters = owner_returning_with_waiters(stack, execution_input, text, waiters=2)
    record = stack.get_record(compute_idempotency_key(execution_input))

    assert owner.status == "FAILED"
    assert owner.error == "IdempotencyResultTooLargeError"
    assert owner.cause is not None
    assert f"{size} bytes" in owner.cause and f"at most {MAX_RESULT_BYTES}" in owner.cause
    assert record is not None
    assert (record["executionstatus"], record["error"]) == ("FAILED", "IdempotencyResultTooLargeError")
    assert f"at most {MAX_RESULT_BYTES}" in record["cause"]
    for waiter in waiters:
        # Woken with the owner's failure: a named error, not the steps run again in silence.
        assert (waiter.status, waiter.error) == ("FAILED", "IdempotencyResultTooLargeError"), waiter.cause
        assert waiter.cause is not None and f"at most {MAX_RESULT_BYTES}" in waiter.cause
        assert RUN_STEPS not in waiter.states_entered
    assert business_step_calls(stack) - calls == STEP_CALLS


def test_a_result_past_256_kib_fails_with_data_limit_exceeded_and_the_record_is_failed_not_deleted(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)

    # Each call's output fits, their sum does not: the steps' result is over Step Functions' 256 KiB.
    blob = "x" * (PAYLOAD_LIMIT_BYTES // max(STEP_CALLS, 2) + 1024)

    def huge_result(handler: Any, event: Any, context: Any) -> Any:
        handler(event, context)
        return {"blob": blob}

    with intercept_steps(stack, huge_result):
        owner = stack.run(execution_input)
        # States.DataLimitExceeded cannot be caught; the FAILED status-change event reaches the release function.
        wait_until(
            lambda: (stack.get_record(key) or {}).get("executionstatus") != "IN_PROGRESS",
            message="the release to record the failure",
        )
    record = stack.get_record(key)

    assert owner.status == "FAILED"
    assert owner.error == "States.DataLimitExceeded"
    assert record is not None, (
        "the record was deleted: a duplicate would rerun the steps while the owner's calls may run"
    )
    assert (record["executionstatus"], record["executionid"], record["error"]) == (
        "FAILED",
        owner.execution_arn,
        "States.DataLimitExceeded",
    )


# --------------------------------------------------------------------------- the largest input, the longest cause
class LongCauseStepError(Exception):
    """A business step's error whose cause is as long as Step Functions allows."""


def failing_step_one(message: str) -> Callable[[Any, Any, Any], Any]:
    """An interceptor of every business step: the first call fails with ``message``, the others return a small value."""
    lock, calls = threading.Lock(), [0]

    def intercept(handler: Any, event: Any, context: Any) -> Any:
        with lock:
            calls[0] += 1
            first = calls[0] == 1
        if first:
            raise LongCauseStepError(message)
        return SMALL_STEP_OUTPUT

    return intercept


def message_for_longest_cause(stack: OfflineStack, unique: str, char: str) -> str:
    """A message, of ``char`` topped up with ASCII, whose error's cause (as the stack reports it) is exactly
    32,768 characters.

    The cause is the Lambda runtime's JSON of the error (type, message, stack trace): two small
    runs measure what it adds to the message and what one ``char`` costs in it.
    """
    lengths = []
    for count in (100, 200):
        with intercept_steps(stack, failing_step_one(char * count)):
            probe = stack.run({"orderId": f"{unique}-probe-{count}", "forceFailure": False})
        assert probe.error == "LongCauseStepError" and probe.cause is not None
        lengths.append(len(probe.cause))
    per_char = (lengths[1] - lengths[0]) // 100
    room = MAX_CAUSE_CHARS - lengths[0]
    return char * (100 + room // per_char) + "x" * (room % per_char)


def input_of_size(unique: str, sample: str) -> dict[str, Any]:
    """An input whose canonical JSON (sorted keys, compact, UTF-8) is exactly ``MAX_INPUT_BYTES``."""
    bare = {"forceFailure": False, "orderId": unique, "padding": ""}
    padding = text_of(MAX_INPUT_BYTES - len(canonical_module.canonical_json(bare)), sample)
    execution_input = {**bare, "padding": padding}
    assert len(canonical_module.canonical_json(execution_input)) == MAX_INPUT_BYTES
    return execution_input


@pytest.mark.parametrize(
    ("input_sample", "cause_char"), [("x", "x"), (CYRILLIC_AND_ACCENTED, "é")], ids=["ascii", "multibyte"]
)
def test_the_largest_input_with_the_longest_cause_ends_with_the_steps_error_recorded(
    stack: OfflineStack, unique: str, input_sample: str, cause_char: str
) -> None:
    message = message_for_longest_cause(stack, unique, cause_char)
    execution_input = input_of_size(unique, input_sample)
    with intercept_steps(stack, failing_step_one(message)):
        owner = stack.run(execution_input)
    record = stack.get_record(compute_idempotency_key(execution_input))

    assert (owner.status, owner.error) == ("FAILED", "LongCauseStepError"), owner.cause
    assert owner.cause is not None and len(owner.cause) == MAX_CAUSE_CHARS
    assert "States.DataLimitExceeded" not in json.dumps(owner.history, default=str)
    assert record is not None
    assert (record["executionstatus"], record["error"], record["cause"]) == (
        "FAILED",
        "LongCauseStepError",
        owner.cause,
    )


# --------------------------------------------------------------------------- the largest result, returned
@pytest.mark.parametrize("sample", ["x", CYRILLIC_AND_ACCENTED], ids=["ascii", "multibyte"])
def test_a_waiter_wake_up_and_a_hit_at_the_largest_result_succeed(
    patient_stack: OfflineStack, unique: str, sample: str
) -> None:
    stack = patient_stack
    execution_input = {"orderId": unique, "forceFailure": False}
    text = text_for_result_size(stack, unique, MAX_RESULT_BYTES, sample)
    calls = business_step_calls(stack)
    owner, (waiter,) = owner_returning_with_waiters(stack, execution_input, text, waiters=1)
    hit: ExecutionResult = stack.run(execution_input)

    assert owner.status == "SUCCEEDED", (owner.error, owner.cause)
    result = owner.output
    assert utf8_size(result) == MAX_RESULT_BYTES and text in json.dumps(result, ensure_ascii=False)
    assert (waiter.status, waiter.output) == ("SUCCEEDED", result), (waiter.error, waiter.cause)
    assert WOKEN in waiter.states_entered  # the wake-up itself carried the largest result
    assert (hit.status, hit.output) == ("SUCCEEDED", result), (hit.error, hit.cause)
    assert HIT in hit.states_entered and RUN_STEPS not in hit.states_entered
    assert business_step_calls(stack) - calls == STEP_CALLS
