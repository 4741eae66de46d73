"""The envelope's settings (layers/idempotency/idempotency/settings.py): read from the environment the template gives."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest

from emulator.template import Resolver, Template

TABLE_NAME = "records-table"


@pytest.fixture(scope="module")
def template_environment(template: Template) -> dict[str, str]:
    """The variables ``Globals.Function.Environment`` gives every function, resolved with the parameters' defaults."""
    resolver = Resolver(parameters=template.parameter_values(), pseudo={}, refs={"IdempotencyTable": TABLE_NAME})
    variables = template.body["Globals"]["Function"]["Environment"]["Variables"]
    return {name: str(value) for name, value in resolver.resolve(variables).items()}


@pytest.fixture
def settings_with(layer: SimpleNamespace, template_environment: dict[str, str]) -> Any:
    """Settings from the template's defaults, with some fields replaced: ``settings_with(lease_seconds=5)``."""
    defaults = layer.settings.Settings.from_environment(template_environment)
    return lambda **changes: dataclasses.replace(defaults, **changes)


def test_the_template_environment_gives_the_parameters_defaults(
    layer: SimpleNamespace, template: Template, template_environment: dict[str, str]
) -> None:
    defaults = template.parameter_values()

    settings = layer.settings.Settings.from_environment(template_environment)

    assert settings == layer.settings.Settings(
        table_name=TABLE_NAME,
        record_ttl_seconds=int(defaults["RecordTtlSeconds"]),
        lease_seconds=int(defaults["LockLeaseSeconds"]),
        poll_interval_seconds=int(defaults["PollIntervalSeconds"]),
        wait_timeout_seconds=int(defaults["WaitTimeoutSeconds"]),
        waiter_failure_policy=defaults["WaitersOnFailure"],
        workflow_type=defaults["WorkflowType"],
        execution_timeout_seconds=int(defaults["ExecutionTimeoutSeconds"]),
    )


def test_settings_read_every_variable_the_template_gives_and_no_other(
    layer: SimpleNamespace, template_environment: dict[str, str]
) -> None:
    read: list[str] = []

    class RecordingEnvironment(dict[str, str]):
        def __getitem__(self, name: str) -> str:
            read.append(name)
            return super().__getitem__(name)

    layer.settings.Settings.from_environment(RecordingEnvironment(template_environment))

    powertools = {name for name in template_environment if name.startswith("POWERTOOLS_")}
    assert sorted(read) == sorted(set(template_environment) - powertools)


def test_a_missing_variable_fails_naming_it(layer: SimpleNamespace, template_environment: dict[str, str]) -> None:
    for name in [name for name in template_environment if not name.startswith("POWERTOOLS_")]:
        environment = {key: value for key, value in template_environment.items() if key != name}

        with pytest.raises(KeyError) as missing:
            layer.settings.Settings.from_environment(environment)

        assert missing.value.args == (name,)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        pytest.param({"waiter_failure_policy": "Retry"}, "WaitersOnFailure must be one of TakeOver, Fail, got 'Retry'", id="unknown waiter policy"),
        pytest.param({"workflow_type": "SYNC"}, "WorkflowType must be STANDARD or EXPRESS, got 'SYNC'", id="unknown workflow type"),
        pytest.param(
            {"workflow_type": "EXPRESS", "execution_timeout_seconds": 301, "lease_seconds": 60, "wait_timeout_seconds": 60},
            "ExecutionTimeoutSeconds=301 but an Express workflow lasts at most 300 s",
            id="express longer than 5 minutes",
        ),
        pytest.param({"lease_seconds": 1801}, "LockLeaseSeconds=1801 outlives ExecutionTimeoutSeconds=1800", id="lease outlives the execution"),
        pytest.param({"wait_timeout_seconds": 1800}, "WaitTimeoutSeconds=1800 must be shorter than ExecutionTimeoutSeconds=1800", id="wait as long as the execution"),
    ],
)
def test_contradicting_parameters_are_refused_with_a_named_error(
    layer: SimpleNamespace, settings_with: Any, changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(layer.errors.IdempotencyConfigurationError) as refused:
        settings_with(**changes)

    assert problem in str(refused.value)
    assert isinstance(refused.value, layer.errors.IdempotencyError)


def test_every_contradiction_is_named_at_once(layer: SimpleNamespace, settings_with: Any) -> None:
    with pytest.raises(layer.errors.IdempotencyConfigurationError) as refused:
        settings_with(waiter_failure_policy="Retry", lease_seconds=1801, wait_timeout_seconds=1800)

    assert str(refused.value).count(";") == 2


def test_limits_at_their_edge_are_accepted(settings_with: Any) -> None:
    settings_with(lease_seconds=1800, wait_timeout_seconds=1799)
    settings_with(workflow_type="EXPRESS", execution_timeout_seconds=300, lease_seconds=300, wait_timeout_seconds=299)


@pytest.mark.parametrize(
    ("workflow_type", "wait_by"),
    [pytest.param("STANDARD", "TASK_TOKEN", id="standard waits for a task token"), pytest.param("EXPRESS", "POLLING", id="express polls")],
)
def test_how_a_busy_execution_waits_follows_the_workflow_type(settings_with: Any, workflow_type: str, wait_by: str) -> None:
    settings = settings_with(workflow_type=workflow_type, execution_timeout_seconds=300, lease_seconds=300, wait_timeout_seconds=120)

    assert settings.wait_by == wait_by


@pytest.mark.parametrize(
    ("poll", "timeout", "rechecks", "waited", "expected"),
    [
        pytest.param(10, 300, 0, 0, 10, id="first look after one poll interval"),
        pytest.param(10, 300, 1, 10, 20, id="then twice as long"),
        pytest.param(10, 300, 3, 70, 80, id="doubling each time"),
        pytest.param(10, 300, 4, 150, 150, id="cut to the wait that is left"),
        pytest.param(10, 300, 5, 300, 0, id="wait used up"),
        pytest.param(10, 300, 5, 310, 0, id="wait overrun"),
        pytest.param(300, 1799, 2, 0, 600, id="capped at 600 s"),
        pytest.param(10, 1799, 10_000, 0, 600, id="huge recheck count stays capped"),
        pytest.param(1, 0, 0, 0, 0, id="no wait at all"),
    ],
)
def test_recheck_after_backs_off_up_to_the_cap_and_the_bound(
    settings_with: Any, poll: int, timeout: int, rechecks: int, waited: int, expected: int
) -> None:
    settings = settings_with(poll_interval_seconds=poll, wait_timeout_seconds=timeout)

    assert settings.recheck_after(rechecks, waited) == expected


@pytest.mark.parametrize(
    ("poll", "timeout"),
    [pytest.param(10, 300, id="defaults"), pytest.param(7, 50, id="interval not dividing the bound"), pytest.param(1, 1, id="one second"), pytest.param(600, 1799, id="interval above the cap")],
)
def test_a_waiter_waits_exactly_the_bound_in_few_looks(settings_with: Any, poll: int, timeout: int) -> None:
    # The last look is rounded up to the bound, never short of it and never past it.
    settings = settings_with(poll_interval_seconds=poll, wait_timeout_seconds=timeout)
    waited = looks = 0
    while (seconds := settings.recheck_after(looks, waited)) > 0:
        assert seconds >= 1
        waited, looks = waited + seconds, looks + 1

    assert waited == timeout
    assert looks <= timeout // 600 + 12  # exponential: a few looks, not one per poll interval
