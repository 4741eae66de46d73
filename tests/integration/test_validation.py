"""The checks around the workflow's definition and samples.

* The ASL validation of ``make validate`` (scripts/validate_asl.py) accepts the real definition and
  rejects broken ones, and each of its two validators catches mistakes the other lets through.
* The sample events in ``events/`` fit what they are for, and ``make demo`` meets its own checks.

Broken definitions are made in a copy of the template and the ASL file under ``tmp_path``: the
mutations work on the parsed definition (placeholders kept), so they follow the real file as it
changes instead of depending on its exact text.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator import OfflineStack
from emulator.demo import DEMO_PARAMETERS, FAILURE_EVENT, Demo
from emulator.demo import main as demo_main
from emulator.stack import ENVELOPE_STATE_MACHINE, is_envelope_function
from idempotency.key import compute_idempotency_key
from scripts.validate_asl import (
    main,
    moto_parser_problems,
    statelint_problems,
    substituted_definitions,
    validate_template,
)
from tests.integration.support import QUIET, intercept_steps, wait_until
from tools.template import PROJECT_ROOT, TEMPLATE_PATH, Template

Mutation = Callable[[dict[str, Any]], None]

_UNQUOTED_PLACEHOLDER = re.compile(r":\s*\$\{(\w+)\}")
_SENTINEL = re.compile(r'"__unquoted_placeholder_(\w+)__"')


def _state_machine_uri() -> str:
    return Template.load(TEMPLATE_PATH).resources[ENVELOPE_STATE_MACHINE]["Properties"]["DefinitionUri"]


def _definition_uris() -> list[str]:
    machines = Template.load(TEMPLATE_PATH).resources_of_type("AWS::Serverless::StateMachine").values()
    return sorted({resource["Properties"]["DefinitionUri"] for resource in machines})


def _top_level_states(
    definition: dict[str, Any], state_type: str | None = None, having: str | None = None
) -> list[str]:
    return [
        name
        for name, state in definition["States"].items()
        if (state_type is None or state["Type"] == state_type) and (having is None or having in state)
    ]


def broken_copy(tmp_path: Path, mutate: Mutation) -> Path:
    """Copy template.yaml and its ASL files into ``tmp_path``, apply ``mutate`` to the envelope's, return the
    template."""
    uri = _state_machine_uri()
    shutil.copy(TEMPLATE_PATH, tmp_path / "template.yaml")
    for other in _definition_uris():
        (tmp_path / other).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / other, tmp_path / other)
    source = (PROJECT_ROOT / uri).read_text(encoding="utf-8")
    # Numeric placeholders stand unquoted (": ${Name}"): park them in strings to edit the JSON.
    definition = json.loads(_UNQUOTED_PLACEHOLDER.sub(r': "__unquoted_placeholder_\1__"', source))
    mutate(definition)
    target = tmp_path / uri
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(_SENTINEL.sub(r"${\1}", json.dumps(definition, indent=2)), encoding="utf-8")
    return tmp_path / "template.yaml"


def dangling_next(definition: dict[str, Any]) -> None:
    definition["States"][_top_level_states(definition, having="Next")[0]]["Next"] = "No such state"


def unknown_service_integration(definition: dict[str, Any]) -> None:
    name = next(
        name
        for name in _top_level_states(definition, "Task")
        if definition["States"][name]["Resource"].startswith("arn:aws:states:::")
    )
    definition["States"][name]["Resource"] += "Typo"


def misspelt_type(definition: dict[str, Any]) -> None:
    definition["States"][_top_level_states(definition, "Task")[0]]["Type"] = "Taks"


def unsubstituted_placeholder(definition: dict[str, Any]) -> None:
    definition["Comment"] = "Uses ${NoSuchSubstitution}"


def _only_definition(template: Path) -> str:
    """The envelope's definition, substituted (the template has other state machines too)."""
    _, definition = substituted_definitions(template)[ENVELOPE_STATE_MACHINE]
    return definition


def test_the_real_definition_passes_both_validators() -> None:
    checks = validate_template(TEMPLATE_PATH)

    assert checks, "the template has no state machine to validate"
    assert all(check.ok for check in checks), [check.problems for check in checks]


def test_the_real_definition_is_checked_with_every_placeholder_substituted() -> None:
    definition = _only_definition(TEMPLATE_PATH)

    assert "${" not in definition
    parsed = json.loads(definition)
    assert isinstance(parsed["TimeoutSeconds"], int)


def test_statelint_catches_a_dangling_next_that_moto_accepts(tmp_path: Path) -> None:
    definition = _only_definition(broken_copy(tmp_path, dangling_next))

    assert any("No such state" in problem for problem in statelint_problems(definition))
    # Why statelint is needed: moto's parser (and create_state_machine) accepts this definition.
    assert moto_parser_problems(definition) == []


def test_moto_catches_an_unknown_service_integration_that_statelint_accepts(tmp_path: Path) -> None:
    definition = _only_definition(broken_copy(tmp_path, unknown_service_integration))

    assert any("Typo" in problem for problem in moto_parser_problems(definition))
    # Why moto's parser is needed: statelint only checks that Resource is a URI.
    assert statelint_problems(definition) == []


def test_both_catch_a_misspelt_state_type(tmp_path: Path) -> None:
    definition = _only_definition(broken_copy(tmp_path, misspelt_type))

    assert statelint_problems(definition)
    assert moto_parser_problems(definition)


@pytest.mark.parametrize(
    "mutation", [dangling_next, unknown_service_integration, misspelt_type, unsubstituted_placeholder]
)
def test_validation_fails_on_a_broken_definition(tmp_path: Path, mutation: Mutation) -> None:
    checks = validate_template(broken_copy(tmp_path, mutation))

    assert not all(check.ok for check in checks)


def test_a_placeholder_without_substitution_is_named(tmp_path: Path) -> None:
    (check,) = validate_template(broken_copy(tmp_path, unsubstituted_placeholder))

    assert any("NoSuchSubstitution" in problem for problem in check.problems)


def test_the_command_exits_non_zero_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--template", str(broken_copy(tmp_path, dangling_next))]) == 1

    assert "No such state" in capsys.readouterr().err


def test_the_command_exits_zero_on_the_real_template(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0

    assert "ASL OK" in capsys.readouterr().out


# --------------------------------------------------------------------------- samples and demo
EVENTS = PROJECT_ROOT / "events"


def test_every_sample_event_is_one_its_function_accepts_and_every_envelope_function_has_one() -> None:
    """``events/<CodeUri folder>.json`` is what ``sam local invoke <Function> -e`` would send.

    The envelope's functions must have one; any other function (a step of your own) may.
    """
    template = Template.load(TEMPLATE_PATH)
    functions = template.resources_of_type("AWS::Serverless::Function")
    with OfflineStack(environment=QUIET) as stack:
        client = boto3.client("lambda", region_name="us-east-1")
        for logical_id, resource in functions.items():
            event_path = EVENTS / f"{Path(resource['Properties']['CodeUri']).name}.json"
            if not is_envelope_function(template, logical_id) and not event_path.is_file():
                continue
            assert event_path.is_file(), f"{logical_id} has no sample event {event_path.relative_to(PROJECT_ROOT)}"

            response = client.invoke(FunctionName=stack.physical_id(logical_id), Payload=event_path.read_bytes())

            payload = json.loads(response["Payload"].read())
            assert "FunctionError" not in response, f"{logical_id} rejected {event_path.name}: {payload}"


def test_the_envelope_sample_events_tell_one_story_about_the_fresh_input() -> None:
    """One owner (sample execution 1) of the fresh input's record: taken, waited for, saved, released."""

    def load(name: str) -> Any:
        return json.loads((EVENTS / name).read_text(encoding="utf-8"))

    fresh = load("execution_fresh.json")
    take, wait, save, release = (
        load(f"{name}.json") for name in ("take_record", "wait_for_owner", "save_outcome", "release_abandoned_record")
    )
    stack_name = tomllib.loads((PROJECT_ROOT / "samconfig.toml").read_text(encoding="utf-8"))["default"]["global"][
        "parameters"
    ]["stack_name"]
    # Scoped as the deployed envelope scopes it: by its state machine's name.
    key = f"{stack_name}-IdempotentWorkflow#{compute_idempotency_key(fresh)}"
    owner = take["executionId"]

    assert take["input"] == fresh and json.loads(release["detail"]["input"]) == fresh
    assert wait["key"] == save["key"] == key
    assert wait["heldBy"] == save["executionId"] == release["detail"]["executionArn"] == owner
    assert wait["executionId"] != owner and wait["taskToken"]
    assert save["runId"] == take["runId"]
    # Named as sam deploy names them for the stack in samconfig.toml.
    assert f":execution:{stack_name}-IdempotentWorkflow:" in owner
    assert release["detail"]["stateMachineArn"].endswith(f":stateMachine:{stack_name}-IdempotentWorkflow")


def test_the_env_vars_file_sets_every_variable_of_every_function_to_the_template_default() -> None:
    """``events/env.json`` is ``sam local invoke --env-vars``: the stack's variables, parameters at their defaults."""
    template = Template.load(TEMPLATE_PATH)
    given = json.loads((EVENTS / "env.json").read_text(encoding="utf-8"))["Parameters"]
    expected: dict[str, str] = {}
    for logical_id in template.resources_of_type("AWS::Serverless::Function"):
        for name, value in template.function_properties(logical_id).get("Environment", {}).get("Variables", {}).items():
            reference = value.get("Ref") if isinstance(value, dict) else None
            if reference in template.body["Parameters"]:
                expected[name] = str(template.body["Parameters"][reference]["Default"])
            elif reference is None:
                expected[name] = str(value)
    # The two that name the stack's own resources (its table, the envelope the front door starts) are the deployment's.
    assert set(given) == set(expected) | {"IDEMPOTENCY_TABLE_NAME", "IDEMPOTENT_WORKFLOW_ARN"}
    assert {name: given[name] for name in expected} == expected


@pytest.mark.parametrize(
    ("event", "force_failure"),
    [("execution_fresh.json", False), ("execution_jmespath_key.json", False), ("execution_forced_failure.json", True)],
)
def test_execution_samples_are_objects_that_say_whether_the_step_fails(event: str, force_failure: bool) -> None:
    execution_input = json.loads((EVENTS / event).read_text(encoding="utf-8"))

    assert isinstance(execution_input, dict)
    assert execution_input["forceFailure"] is force_failure


def test_the_demo_meets_its_own_expectations(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo_main([]) == 0, capsys.readouterr().err

    assert "Demo OK" in capsys.readouterr().out


def test_the_demos_rerun_of_a_failure_runs_the_steps_even_when_the_other_branches_outlived_the_failing_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # On a busy machine (or on AWS) the failing step may end while its siblings' calls still run: the
    # record is then quiet for LongestCallSeconds, and the demo's rerun must still run the steps.
    key = compute_idempotency_key(json.loads(FAILURE_EVENT.read_text(encoding="utf-8")))

    def hold_the_other_branches(handler: Any, event: Any, context: Any) -> Any:
        # Held until the failure is recorded (first run only: the rerun finds the record FAILED at once).
        wait_until(
            lambda: (stack.get_record(key) or {}).get("executionstatus") == "FAILED",
            message="the failure to be recorded",
        )
        return handler(event, context)

    with (
        OfflineStack(DEMO_PARAMETERS, environment=QUIET) as stack,
        intercept_steps(stack, hold_the_other_branches, ("ExampleStepFunction",)),
    ):
        demo = Demo(stack)
        demo.forced_failure(FAILURE_EVENT)

    assert demo.unmet == []
    assert "stays\n      quiet until" in capsys.readouterr().out
