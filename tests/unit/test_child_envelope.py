"""The child variant of the envelope is derived from the envelope and must match it."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from idempotency import ownership, taking
from scripts import child_envelope
from scripts.validate_asl import validate_definition
from tools.template import substitute_definition

CHAIN = set(child_envelope.CHAIN_STATES)


@pytest.fixture(scope="module")
def envelope() -> dict[str, Any]:
    return child_envelope.load()


@pytest.fixture(scope="module")
def variant(envelope: dict[str, Any]) -> dict[str, Any]:
    return child_envelope.derive(envelope)


def test_the_committed_variant_is_up_to_date(variant: dict[str, Any]) -> None:
    committed = child_envelope.CHILD_ENVELOPE_PATH.read_text(encoding="utf-8")

    assert committed == child_envelope.dump(variant), "run `python scripts/child_envelope.py --write`"


def test_every_other_state_of_the_envelope_is_copied_unchanged(
    envelope: dict[str, Any], variant: dict[str, Any]
) -> None:
    kept = {name: state for name, state in envelope["States"].items() if name != child_envelope.PROTECTED_WORK}

    assert set(variant["States"]) == set(kept) | CHAIN
    for name, state in kept.items():
        expected = child_envelope._redirected(copy.deepcopy(state), child_envelope.PROTECTED_WORK, child_envelope.LINK)
        payload = expected.get("Parameters", {}).get("Payload")
        if expected.get("Parameters", {}).get("FunctionName") == child_envelope.TAKE_FUNCTION_PLACEHOLDER:
            # The one addition: a look at the record names the child, so its record names the child execution.
            payload[child_envelope.CHILD_FIELD] = child_envelope.CHILD_STATE_MACHINE_PLACEHOLDER
        assert variant["States"][name] == expected, name
    assert {name: value for name, value in variant.items() if name not in ("States", "Comment")} == {
        name: value for name, value in envelope.items() if name not in ("States", "Comment")
    }


def test_the_chain_is_wired_as_the_protected_work_was(envelope: dict[str, Any], variant: dict[str, Any]) -> None:
    protected = envelope["States"][child_envelope.PROTECTED_WORK]
    (catcher,) = protected["Catch"]
    states = variant["States"]
    run_child = states[child_envelope.RUN_CHILD]

    entries = [
        target
        for name, state in states.items()
        if name not in CHAIN
        for target in [state.get("Next"), *(rule.get("Next") for rule in state.get("Choices", []))]
        if target in CHAIN
    ]
    assert entries and set(entries) == {child_envelope.LINK}
    assert states[child_envelope.TAKE_OUTPUT]["Next"] == protected["Next"]
    assert run_child["ResultPath"] == states[child_envelope.TAKE_OUTPUT]["ResultPath"] == protected["ResultPath"]
    assert run_child["Catch"][-1] == catcher
    assert run_child["Catch"][0] == {
        "ErrorEquals": [child_envelope.ALREADY_STARTED],
        "ResultPath": catcher["ResultPath"],
        "Next": child_envelope.FIND_CHILD,
    }
    assert run_child["Catch"][1]["ResultPath"] == catcher["ResultPath"]
    assert states[child_envelope.DID_CHILD_FAIL]["Default"] == catcher["Next"]
    assert states[child_envelope.DID_CHILD_GIVE_ERROR]["Default"] == child_envelope.SAY_HOW_CHILD_ENDED
    for name in (child_envelope.TAKE_ERROR, child_envelope.SAY_HOW_CHILD_ENDED):
        assert states[name]["Next"] == catcher["Next"]
    assert run_child.get("Retry") == protected.get("Retry")


def _targets(state: dict[str, Any]) -> set[str]:
    return {
        target
        for target in [
            state.get("Next"),
            state.get("Default"),
            *(rule.get("Next") for rule in state.get("Choices", [])),
            *(catcher.get("Next") for catcher in state.get("Catch", [])),
        ]
        if target
    }


def test_a_refused_start_follows_the_child_already_there_and_leaves_only_where_the_chain_does(
    envelope: dict[str, Any], variant: dict[str, Any]
) -> None:
    (catcher,) = envelope["States"][child_envelope.PROTECTED_WORK]["Catch"]
    states = variant["States"]
    following = set(child_envelope.CHAIN_STATES[child_envelope.CHAIN_STATES.index(child_envelope.FIND_CHILD) :])

    entered_from = {name for name, state in states.items() if name not in following and _targets(state) & following}
    left_to = set().union(*(_targets(states[name]) for name in following)) - following

    # Only the refused start enters; out: the start again, the output, the child's failure, or the failure's record.
    assert entered_from == {child_envelope.RUN_CHILD}
    assert left_to == {
        child_envelope.RUN_CHILD,
        child_envelope.TAKE_OUTPUT,
        child_envelope.DID_CHILD_FAIL,
        catcher["Next"],
    }
    for name in following:
        if states[name]["Type"] == "Task":
            assert states[name]["Parameters"] == {"ExecutionArn.$": child_envelope.CHILD_EXECUTION_PATH}, name


def test_the_child_is_started_with_the_protected_works_input_under_the_name_and_parent_the_take_gives(
    variant: dict[str, Any],
) -> None:
    parameters = variant["States"][child_envelope.RUN_CHILD]["Parameters"]
    link = variant["States"][child_envelope.LINK]
    protected_input = child_envelope.load()["States"][child_envelope.PROTECTED_WORK]["InputPath"]

    assert variant["States"][child_envelope.RUN_CHILD]["Resource"] == "arn:aws:states:::states:startExecution.sync:2"
    assert parameters["StateMachineArn"] == "${ChildStateMachineArn}"
    # The take's answer names the child: this execution's own (its name), or a failed owner's it resumes.
    assert parameters["Name.$"] == f"$.idempotency.{taking.CHILD_NAME}"
    assert parameters["Input.$"] == f"States.JsonMerge({protected_input}, {link['ResultPath']}, false)"
    assert link["Parameters"] == {f"{ownership.STARTED_BY_FIELD}.$": f"$.idempotency.{taking.CHILD_STARTED_BY}"}


def test_the_variant_passes_both_asl_validators(variant: dict[str, Any]) -> None:
    text = child_envelope.dump(variant)
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    substitutions = {name: "60" if name.endswith("Seconds") else _fake_arn(name) for name in placeholders}

    assert validate_definition(substitute_definition(text, substitutions)) == []


def test_an_envelope_without_the_protected_work_is_refused(envelope: dict[str, Any]) -> None:
    renamed = copy.deepcopy(envelope)
    renamed["States"]["Do the work"] = renamed["States"].pop(child_envelope.PROTECTED_WORK)

    with pytest.raises(child_envelope.EnvelopeShapeError, match="Run the business steps"):
        child_envelope.derive(renamed)


def test_protected_work_that_catches_only_some_errors_is_refused(envelope: dict[str, Any]) -> None:
    narrowed = copy.deepcopy(envelope)
    narrowed["States"][child_envelope.PROTECTED_WORK]["Catch"][0]["ErrorEquals"] = ["States.TaskFailed"]

    with pytest.raises(child_envelope.EnvelopeShapeError, match=r"States\.ALL"):
        child_envelope.derive(narrowed)


def test_a_changed_envelope_changes_the_variant(envelope: dict[str, Any], variant: dict[str, Any]) -> None:
    changed = copy.deepcopy(envelope)
    changed["States"]["Return the stored result"]["Comment"] = "A new comment in the envelope"

    derived = child_envelope.derive(changed)

    assert derived["States"]["Return the stored result"]["Comment"] == "A new comment in the envelope"
    assert child_envelope.dump(derived) != child_envelope.dump(variant)


def _fake_arn(name: str) -> str:
    kind = "stateMachine" if "StateMachine" in name else "function"
    return f"arn:aws:{'states' if kind == 'stateMachine' else 'lambda'}:us-east-1:123456789012:{kind}:{name}"
