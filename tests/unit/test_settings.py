"""The envelope's settings (the layer's ``settings.py``): read from the environment the template gives, and checked for
coherence."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from typing import Any

import pytest

from idempotency import errors
from idempotency.key import KeyRules
from idempotency.settings import Settings, state_machine_name
from tests.unit.conftest import RECORDS_TABLE
from tools.template import Template

# Template parameter -> the variable Globals gives the functions (checked by the first test below).
VARIABLE_OF_PARAMETER = {
    "RecordTtlSeconds": "RECORD_TTL_SECONDS",
    "LockLeaseSeconds": "LOCK_LEASE_SECONDS",
    "PollIntervalSeconds": "POLL_INTERVAL_SECONDS",
    "WaitTimeoutSeconds": "WAIT_TIMEOUT_SECONDS",
    "WaitersOnFailure": "WAITERS_ON_FAILURE",
    "WorkflowType": "WORKFLOW_TYPE",
    "ExecutionTimeoutSeconds": "EXECUTION_TIMEOUT_SECONDS",
    "LongestCallSeconds": "LONGEST_CALL_SECONDS",
    "IdempotencyScope": "IDEMPOTENCY_SCOPE",
    "IdempotencyKeyJmespath": "IDEMPOTENCY_KEY_JMESPATH",
    "AllowKeyOverride": "ALLOW_KEY_OVERRIDE",
    "PayloadValidationJmespath": "PAYLOAD_VALIDATION_JMESPATH",
}
# Read with a default: a deployment of an earlier version of the template has none of them.
OPTIONAL_VARIABLES = {
    "IDEMPOTENCY_SCOPE",
    "IDEMPOTENCY_KEY_JMESPATH",
    "ALLOW_KEY_OVERRIDE",
    "PAYLOAD_VALIDATION_JMESPATH",
}


@pytest.fixture
def settings_with(template_environment: dict[str, str]) -> Any:
    """Settings from the template's defaults, with some fields replaced: ``settings_with(lease_seconds=5)``."""
    defaults = Settings.from_environment(template_environment)
    return lambda **changes: dataclasses.replace(defaults, **changes)


def _express(**changes: Any) -> dict[str, Any]:
    """An Express deployment that passes every rule, with ``changes``."""
    return {
        "workflow_type": "EXPRESS",
        "execution_timeout_seconds": 300,
        "longest_call_seconds": 60,
        "lease_seconds": 360,
        "wait_timeout_seconds": 240,
        **changes,
    }


def test_the_template_environment_gives_the_parameters_defaults(
    template: Template, template_environment: dict[str, str]
) -> None:
    defaults = template.parameter_values()

    settings = Settings.from_environment(template_environment)

    assert {variable: template_environment[variable] for variable in VARIABLE_OF_PARAMETER.values()} == {
        variable: str(defaults[parameter]) for parameter, variable in VARIABLE_OF_PARAMETER.items()
    }
    assert settings == Settings(
        table_name=RECORDS_TABLE,
        record_ttl_seconds=int(defaults["RecordTtlSeconds"]),
        lease_seconds=int(defaults["LockLeaseSeconds"]),
        poll_interval_seconds=int(defaults["PollIntervalSeconds"]),
        wait_timeout_seconds=int(defaults["WaitTimeoutSeconds"]),
        waiter_failure_policy=defaults["WaitersOnFailure"],
        workflow_type=defaults["WorkflowType"],
        execution_timeout_seconds=int(defaults["ExecutionTimeoutSeconds"]),
        longest_call_seconds=int(defaults["LongestCallSeconds"]),
        key_rules=KeyRules(),
        scope="",
    )


def test_the_template_defaults_are_coherent(template: Template) -> None:
    # Settings built from them (above) would have refused them too; this says which rules they meet.
    defaults = {name: int(value) for name, value in template.parameter_values().items() if str(value).isdigit()}

    assert defaults["RecordTtlSeconds"] > defaults["ExecutionTimeoutSeconds"] + defaults["LongestCallSeconds"]
    assert defaults["WaitTimeoutSeconds"] < defaults["ExecutionTimeoutSeconds"]


def test_settings_read_every_variable_the_template_gives_and_no_other(template_environment: dict[str, str]) -> None:
    read: list[str] = []

    class RecordingEnvironment(dict[str, str]):
        def __getitem__(self, name: str) -> str:
            read.append(name)
            return super().__getitem__(name)

        def get(self, name: str, default: Any = None) -> Any:
            read.append(name)
            return super().get(name, default)

    Settings.from_environment(RecordingEnvironment(template_environment))

    powertools = {name for name in template_environment if name.startswith("POWERTOOLS_")}
    assert sorted(read) == sorted(set(template_environment) - powertools)


def test_a_missing_required_variable_fails_naming_it(template_environment: dict[str, str]) -> None:
    required = [
        name for name in template_environment if not name.startswith("POWERTOOLS_") and name not in OPTIONAL_VARIABLES
    ]
    assert "LONGEST_CALL_SECONDS" in required
    for name in required:
        environment = {key: value for key, value in template_environment.items() if key != name}

        with pytest.raises(KeyError) as missing:
            Settings.from_environment(environment)

        assert missing.value.args == (name,)


def test_the_key_variables_default_to_the_whole_input_validated_and_the_state_machines_scope(
    template_environment: dict[str, str],
) -> None:
    environment = {key: value for key, value in template_environment.items() if key not in OPTIONAL_VARIABLES}

    settings = Settings.from_environment(environment)

    assert (settings.key_rules, settings.scope) == (KeyRules(), "")


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        pytest.param(
            {"waiter_failure_policy": "Retry"},
            "WaitersOnFailure must be one of TakeOver, Fail, got 'Retry'",
            id="unknown waiter policy",
        ),
        pytest.param(
            {"workflow_type": "SYNC"},
            "WorkflowType must be STANDARD or EXPRESS, got 'SYNC'",
            id="unknown workflow type",
        ),
        pytest.param(
            _express(execution_timeout_seconds=301, lease_seconds=400),
            "ExecutionTimeoutSeconds=301 but an Express workflow lasts at most 300 s",
            id="express longer than 5 minutes",
        ),
        pytest.param(
            {"longest_call_seconds": 0}, "LongestCallSeconds must be at least 1, got 0", id="no time for a call"
        ),
        pytest.param(
            {"record_ttl_seconds": 1860},
            "RecordTtlSeconds=1860 must be longer than ExecutionTimeoutSeconds + LongestCallSeconds (1860)",
            id="record expires while its owner may still act",
        ),
        pytest.param(
            _express(lease_seconds=359),
            "LockLeaseSeconds=359 must be at least ExecutionTimeoutSeconds + LongestCallSeconds (360) for an Express "
            "workflow",
            id="express lease shorter than the owner can act",
        ),
        pytest.param(
            {"wait_timeout_seconds": 1800},
            "WaitTimeoutSeconds=1800 must be shorter than ExecutionTimeoutSeconds=1800",
            id="wait as long as the execution",
        ),
    ],
)
def test_contradicting_parameters_are_refused_at_construction_naming_them(
    settings_with: Any, changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(errors.IdempotencyConfigurationError) as refused:
        settings_with(**changes)

    assert problem in str(refused.value)
    assert isinstance(refused.value, errors.IdempotencyError)


def test_every_contradiction_is_named_at_once(settings_with: Any) -> None:
    with pytest.raises(errors.IdempotencyConfigurationError) as refused:
        settings_with(waiter_failure_policy="Retry", record_ttl_seconds=100, wait_timeout_seconds=1800)

    message = str(refused.value)
    assert message.count(";") == 2
    assert all(name in message for name in ("WaitersOnFailure", "RecordTtlSeconds", "WaitTimeoutSeconds"))


@pytest.mark.parametrize("scope", ["has#hash", "has space", "x" * 129])
def test_an_unusable_scope_is_refused(settings_with: Any, scope: str) -> None:
    with pytest.raises(errors.IdempotencyConfigurationError, match="IdempotencyScope"):
        settings_with(scope=scope)


def test_limits_at_their_edge_are_accepted(settings_with: Any) -> None:
    settings_with(record_ttl_seconds=1861, wait_timeout_seconds=1799)
    settings_with(lease_seconds=1)  # Standard: a short lease is checked with Step Functions, not trusted
    settings_with(**_express())
    settings_with(**_express(longest_call_seconds=1, lease_seconds=301, wait_timeout_seconds=299))


@pytest.mark.parametrize(
    ("workflow_type", "wait_by", "checks_liveness"),
    [
        pytest.param("STANDARD", "TASK_TOKEN", True, id="standard waits for a task token and asks about the holder"),
        pytest.param("EXPRESS", "POLLING", False, id="express polls and trusts the lease"),
    ],
)
def test_how_a_busy_execution_waits_follows_the_workflow_type(
    settings_with: Any, workflow_type: str, wait_by: str, checks_liveness: bool
) -> None:
    settings = settings_with(**_express(workflow_type=workflow_type))

    assert (settings.wait_by, settings.checks_liveness) == (wait_by, checks_liveness)


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
    ("rechecks", "waited", "due_in", "expected"),
    [
        pytest.param(3, 70, 5, 5, id="due before the backoff: looks when due"),
        pytest.param(0, 0, 500, 10, id="due after the backoff: the backoff"),
        pytest.param(4, 150, 400, 150, id="due after the wait runs out: the wait that is left"),
        pytest.param(0, 0, 0, 1, id="due now: one second, never zero"),
        pytest.param(5, 300, 5, 0, id="wait used up: no look, however soon it is due"),
    ],
)
def test_recheck_after_honours_when_the_record_says_to_look_again(
    settings_with: Any, rechecks: int, waited: int, due_in: int, expected: int
) -> None:
    settings = settings_with(poll_interval_seconds=10, wait_timeout_seconds=300)

    assert settings.recheck_after(rechecks, waited, due_in) == expected


@pytest.mark.parametrize(
    ("poll", "timeout"),
    [
        pytest.param(10, 300, id="defaults"),
        pytest.param(7, 50, id="interval not dividing the bound"),
        pytest.param(1, 1, id="one second"),
        pytest.param(600, 1799, id="interval above the cap"),
    ],
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


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:states:us-east-1:123456789012:stateMachine:orders",
        "arn:aws:states:us-east-1:123456789012:execution:orders:run-1",
        "arn:aws:states:us-east-1:123456789012:express:orders:run-1:5c8a",
    ],
    ids=["state machine", "standard execution", "express execution"],
)
def test_the_scope_is_the_state_machines_name_unless_the_deployment_sets_one(settings_with: Any, arn: str) -> None:
    assert state_machine_name(arn) == "orders"
    assert settings_with().scope_of(arn) == "orders"
    assert settings_with(scope="shared-orders").scope_of(arn) == "shared-orders"


@pytest.mark.parametrize("arn", ["", "orders", "arn:aws:lambda:us-east-1:123456789012:function:orders"])
def test_a_scope_asked_of_something_not_a_state_machine_is_a_named_error(settings_with: Any, arn: str) -> None:
    with pytest.raises(errors.IdempotencyConfigurationError, match="is not the ARN of a state machine"):
        settings_with().scope_of(arn)


def test_the_sample_environment_for_local_invocations_gives_every_variable_the_settings_read(
    template: Template,
) -> None:
    # make invoke passes events/env.json to ``sam local invoke --env-vars``: each envelope function reads its
    # settings on its first call.
    sample = json.loads((template.root / "events" / "env.json").read_text(encoding="utf-8"))["Parameters"]

    Settings.from_environment(sample)


def test_every_deployment_the_docs_show_is_coherent(template: Template) -> None:
    # A documented ``sam deploy --parameter-overrides`` must start: the functions refuse incoherent parameters
    # at cold start.
    resolved = {name: str(value) for name, value in template.parameter_values().items()}
    commands = []
    for page in [template.root / "README.md", *sorted((template.root / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8").replace("\\\n", " ")
        commands += [
            (page.name, line) for line in text.splitlines() if re.search(r"sam deploy .*--parameter-overrides", line)
        ]
    assert commands, "no documented deployment found"

    for page_name, command in commands:
        overrides = dict(
            word.split("=", 1) for word in shlex.split(command.split("--parameter-overrides", 1)[1]) if "=" in word
        )
        environment = {
            "IDEMPOTENCY_TABLE_NAME": RECORDS_TABLE,
            **{variable: {**resolved, **overrides}[parameter] for parameter, variable in VARIABLE_OF_PARAMETER.items()},
        }
        try:
            Settings.from_environment(environment)
        except errors.IdempotencyConfigurationError as refused:
            pytest.fail(f"{page_name}: `{command.strip()}` is refused: {refused}")
