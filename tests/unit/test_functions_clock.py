"""The functions' clock: real time unless a test moves it on, read by the handler modules of a stack only."""

from __future__ import annotations

import time
import types

import pytest

from emulator.adapters import FunctionsClock


def test_the_clock_is_real_time_until_moved_on_and_real_again_after() -> None:
    clock = FunctionsClock()
    before = time.time()
    assert before <= clock.time() <= time.time()
    with clock.moved_on(3600):
        assert clock.ahead_s == 3600
        assert before + 3600 <= clock.time() <= time.time() + 3600
        with clock.moved_on(60):  # moves add up
            assert clock.ahead_s == 3660
        assert clock.ahead_s == 3600
    assert clock.ahead_s == 0
    assert clock.time() <= time.time()


def test_the_clock_never_moves_back() -> None:
    clock = FunctionsClock()
    with pytest.raises(ValueError, match="not back"), clock.moved_on(-1):
        pass
    assert clock.ahead_s == 0


def test_a_module_reading_time_reads_the_clock_and_keeps_the_rest_of_the_time_module() -> None:
    clock = FunctionsClock()
    handler_module = types.ModuleType("app")
    handler_module.time = time  # type: ignore[attr-defined]
    other_module = types.ModuleType("other")
    other_module.time = "not the time module"  # type: ignore[attr-defined]

    clock.read_by(handler_module)
    clock.read_by(other_module)

    assert handler_module.time is clock
    assert other_module.time == "not the time module"
    assert handler_module.time.monotonic is time.monotonic and handler_module.time.sleep is time.sleep
    with clock.moved_on(120):
        assert handler_module.time.time() >= time.time() + 119


def test_the_deployed_functions_read_the_stacks_clock() -> None:
    from emulator import OfflineStack
    from idempotency.key import compute_idempotency_key
    from tests.integration.support import QUIET

    execution_input = {"orderId": "clock", "forceFailure": False}
    with OfflineStack({"RecordTtlSeconds": 3600}, environment=QUIET) as stack:
        before = time.time()
        with stack.functions_clock.moved_on(86_400):
            result = stack.run(execution_input)
        after = time.time()
        record = stack.get_record(compute_idempotency_key(execution_input))
    assert result.status == "SUCCEEDED"
    # The take dated the record's TTL from the functions' clock, a day ahead of DynamoDB's.
    assert record is not None and int(before) + 86_400 + 3600 <= record["ttl"] <= after + 86_400 + 3600
