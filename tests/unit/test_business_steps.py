"""The example business steps (functions/example_step, functions/random_failure), called as Lambda calls them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.adapters import LambdaContext
from scripts.validate_asl import substituted_definitions
from tests.unit.conftest import FunctionLoader

EXECUTION_INPUT = {"orderId": "42", "nested": {"key1": "value1"}}


def example_step_payloads() -> list[dict[str, Any]]:
    """The static part of each payload the state machine sends the example step function."""
    payloads: list[dict[str, Any]] = []

    def collect(states: dict[str, Any]) -> None:
        for state in states.values():
            parameters = state.get("Parameters", {})
            if "ExampleStepFunction" in str(parameters.get("FunctionName", "")):
                payloads.append(
                    {name: value for name, value in parameters["Payload"].items() if not name.endswith(".$")}
                )
            for branch in state.get("Branches", []):
                collect(branch["States"])

    for _uri, definition in substituted_definitions().values():
        collect(json.loads(definition)["States"])
    return payloads


# --------------------------------------------------------------------------- example step
def test_the_state_machine_runs_the_example_step_as_steps_1_to_4() -> None:
    assert sorted(payload["step"] for payload in example_step_payloads()) == [1, 2, 3, 4]


@pytest.mark.parametrize("step", [1, 2, 3, 4], ids=lambda step: f"step {step}")
def test_the_example_step_returns_the_output_of_its_step(
    load_function: FunctionLoader, lambda_context: LambdaContext, step: int
) -> None:
    app = load_function("ExampleStepFunction")

    assert app.lambda_handler({"step": step, "input": EXECUTION_INPUT}, lambda_context) == {
        "result": f"Output of step {step}"
    }


def test_the_example_step_needs_to_be_told_its_step(
    load_function: FunctionLoader, lambda_context: LambdaContext
) -> None:
    app = load_function("ExampleStepFunction")

    with pytest.raises(KeyError, match="step"):
        app.lambda_handler({"input": EXECUTION_INPUT}, lambda_context)


# --------------------------------------------------------------------------- random failure
def _event(**fields: Any) -> dict[str, Any]:
    return {"input": {**EXECUTION_INPUT, **fields}}


@pytest.mark.parametrize("probability", ["0", "1"], ids=lambda p: f"FAILURE_PROBABILITY={p}")
def test_force_failure_true_always_fails_with_the_named_error(
    load_function: FunctionLoader, lambda_context: LambdaContext, probability: str
) -> None:
    app = load_function("RandomFailureFunction", {"FAILURE_PROBABILITY": probability})

    with pytest.raises(app.SimulatedStepFailure) as failed:
        app.lambda_handler(_event(forceFailure=True), lambda_context)

    # Step Functions names the error after the class: executions, records and Catch rules use this name.
    assert type(failed.value).__name__ == "SimulatedStepFailure"
    assert "failed" in str(failed.value)


@pytest.mark.parametrize("probability", ["0", "1"], ids=lambda p: f"FAILURE_PROBABILITY={p}")
def test_force_failure_false_never_fails(
    load_function: FunctionLoader, lambda_context: LambdaContext, probability: str
) -> None:
    app = load_function("RandomFailureFunction", {"FAILURE_PROBABILITY": probability})

    assert app.lambda_handler(_event(forceFailure=False), lambda_context) == app.SUCCESS_OUTPUT


def test_without_force_failure_probability_0_never_fails(
    load_function: FunctionLoader, lambda_context: LambdaContext
) -> None:
    app = load_function("RandomFailureFunction", {"FAILURE_PROBABILITY": "0"})

    assert {app.lambda_handler(_event(), lambda_context) for _ in range(50)} == {app.SUCCESS_OUTPUT}


def test_without_force_failure_probability_1_always_fails(
    load_function: FunctionLoader, lambda_context: LambdaContext
) -> None:
    app = load_function("RandomFailureFunction", {"FAILURE_PROBABILITY": "1"})

    for _ in range(50):
        with pytest.raises(app.SimulatedStepFailure):
            app.lambda_handler(_event(), lambda_context)


def test_the_probability_is_read_at_each_call(
    load_function: FunctionLoader, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_function("RandomFailureFunction", {"FAILURE_PROBABILITY": "0"})
    assert app.lambda_handler(_event(), lambda_context) == app.SUCCESS_OUTPUT

    monkeypatch.setenv("FAILURE_PROBABILITY", "1")
    with pytest.raises(app.SimulatedStepFailure):
        app.lambda_handler(_event(), lambda_context)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("true", id="the string true"),
        pytest.param("false", id="the string false"),
        pytest.param(1, id="one"),
        pytest.param(0, id="zero"),
        pytest.param(None, id="null"),
        pytest.param({"enabled": True}, id="an object"),
    ],
)
def test_a_non_boolean_force_failure_is_refused_not_taken_as_random(
    load_function: FunctionLoader, lambda_context: LambdaContext, value: Any
) -> None:
    # With FAILURE_PROBABILITY=0 a silently ignored value would return success instead of failing.
    app = load_function("RandomFailureFunction", {"FAILURE_PROBABILITY": "0"})

    with pytest.raises(app.ForceFailureNotBooleanError) as refused:
        app.lambda_handler(_event(forceFailure=value), lambda_context)

    assert not isinstance(refused.value, app.SimulatedStepFailure)
    assert f"forceFailure must be true or false, got {json.dumps(value)}." in str(refused.value)
