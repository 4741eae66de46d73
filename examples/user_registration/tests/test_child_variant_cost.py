"""What the envelope around a child workflow costs, measured against the inline envelope.

The same envelope, inline around the root template's example steps (``template.yaml``) and
nested around this example's registration workflow: the transitions each adds, from the
executions' histories. Each stack is deployed in turn.
"""

from __future__ import annotations

from typing import Any

from emulator import ExecutionResult, OfflineStack
from examples.user_registration.tests.test_user_registration import (
    APPLICATION,
    LONGEST_CALL_SECONDS,
    REGISTER,
    TEMPLATE,
    FailIn,
    RegistrationRejectedError,
    child_executions,
    registration,
)
from scripts import child_envelope
from tests.integration.support import QUIET


def _top_level(result: ExecutionResult, definition: dict[str, Any]) -> list[str]:
    return [name for name in result.states_entered if name in definition["States"]]


def test_what_the_child_variant_costs_in_transitions(unique: str) -> None:
    envelope = child_envelope.load()
    variant = child_envelope.derive(envelope)
    other = f"{unique}-failing"
    with OfflineStack({"LongestCallSeconds": LONGEST_CALL_SECONDS}, environment=QUIET) as root:
        inline = root.run({"orderId": unique, "forceFailure": False})
        inline_hit = root.run({"orderId": unique, "forceFailure": False})
        inline_failure = root.run({"orderId": other, "forceFailure": True})
    with OfflineStack({"LongestCallSeconds": LONGEST_CALL_SECONDS}, template_path=TEMPLATE, environment=QUIET) as stack:
        nested = stack.applications[APPLICATION]
        fresh = nested.run(registration(unique))
        (child,) = child_executions(stack, fresh)
        child_states = stack.wait_for(child["executionArn"]).states_entered
        hit = nested.run(registration(unique))
        with stack.lambdas.intercept(REGISTER, FailIn("Products", RegistrationRejectedError("Products refuses."))):
            failure = nested.run(registration(other))

    inline_envelope, variant_envelope = _top_level(inline, envelope), _top_level(fresh, variant)
    # Inline, the protected work is one state (the Parallel) around the steps; here it is a chain
    # of three (link, run the child, take its output) around the child's own states.
    assert len(variant_envelope) - len(inline_envelope) == 2
    assert [name for name in inline_envelope if name != child_envelope.PROTECTED_WORK] == [
        name
        for name in variant_envelope
        if name not in (child_envelope.LINK, child_envelope.RUN_CHILD, child_envelope.TAKE_OUTPUT)
    ]
    assert len(child_states) == 6  # Parallel, 3 registrations, confirmation, output
    # A hit costs the same: the child is never started.
    assert len(hit.states_entered) == len(inline_hit.states_entered) == 3
    # A failure: the chain also reads the child's own error out of the task's failure (four states).
    assert failure.status == inline_failure.status == "FAILED"
    assert len(_top_level(failure, variant)) - len(_top_level(inline_failure, envelope)) == 5
