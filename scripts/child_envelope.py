"""Derive the envelope around a child workflow from the envelope itself.

    python scripts/child_envelope.py            # print the derived definition
    python scripts/child_envelope.py --write    # write statemachine/idempotent_child_workflow.asl.json

``statemachine/idempotent_workflow.asl.json`` is the one source of the idempotency envelope. The
child variant is that file with one state replaced: the protected work ("Run the business
steps", the Parallel) becomes a Task that starts another state machine, ``${ChildStateMachineArn}``,
and waits for it (``arn:aws:states:::states:startExecution.sync:2``). Every other state is copied
as it is, so a change to the envelope reaches the variant with ``--write``; a unit test fails
while the committed file is out of date.

The replacement is a short chain with the same wiring as the state it replaces: it is entered
where that state was, leaves to its ``Next``, and its failures reach its ``Catch`` target with the
same ``ResultPath``:

* **Link the child workflow to this execution** (Pass) builds the field
  ``AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID``, with which Step Functions links the child to
  its parent (JSONPath cannot add a field to the input inside the Task's own parameters).
* **Run the child workflow** (Task) starts the child with the protected work's input plus that
  field, under the parent execution's name: a retried start can only find the child already
  started (a second start of one name is refused), never start a second one.
* **Take the child workflow's output** (Pass) puts the child's ``Output``, unchanged, where the
  protected work's result went: that is what is stored and returned.
* On failure, a failed, timed-out or stopped child fails the Task with ``States.TaskFailed`` and
  the child's description (JSON) as the cause. **Did the child workflow fail?**, **Read the child
  workflow's execution**, **Did the child workflow give its error?** and **Take the child
  workflow's error** replace that with the child's own ``Error`` and ``Cause``, so the record
  holds the error the child failed with. Any other error (the start refused, a child that gave
  no error) goes to the ``Catch`` target as it is.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVELOPE_PATH = PROJECT_ROOT / "statemachine" / "idempotent_workflow.asl.json"
CHILD_ENVELOPE_PATH = PROJECT_ROOT / "envelope" / "statemachine" / "idempotent_child_workflow.asl.json"
PROTECTED_WORK = "Run the business steps"
CHILD_STATE_MACHINE_PLACEHOLDER = "${ChildStateMachineArn}"
START_CHILD_AND_WAIT = "arn:aws:states:::states:startExecution.sync:2"
# Step Functions links an execution to the one that started it through this input field.
STARTED_BY_FIELD = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"
CHILD_FAILED = "States.TaskFailed"

LINK = "Link the child workflow to this execution"
RUN_CHILD = "Run the child workflow"
TAKE_OUTPUT = "Take the child workflow's output"
DID_CHILD_FAIL = "Did the child workflow fail?"
READ_CHILD = "Read the child workflow's execution"
DID_CHILD_GIVE_ERROR = "Did the child workflow give its error?"
TAKE_ERROR = "Take the child workflow's error"
SAY_HOW_CHILD_ENDED = "Say how the child workflow ended"
# The take function is told which child the owner will start, so a look at the record can ask whether it still runs.
TAKE_FUNCTION_PLACEHOLDER = "${AcquireLockFunctionArn}"
CHILD_FIELD = "childStateMachine"
# Where the chain keeps its own data in the execution's state (beside input, idempotency, output).
LINK_PATH = "$.childExecution"

# Numeric placeholders stand unquoted in the file (": ${Name}"); they are parked in strings to edit the JSON.
_UNQUOTED_PLACEHOLDER = re.compile(r":\s*\$\{(\w+)\}")
_SENTINEL = re.compile(r'"__unquoted_placeholder_(\w+)__"')


class EnvelopeShapeError(ValueError):
    """The envelope no longer has the shape the child variant is derived from."""


def load(path: Path = ENVELOPE_PATH) -> dict[str, Any]:
    """The envelope definition, with its unquoted placeholders parked in strings."""
    return json.loads(_UNQUOTED_PLACEHOLDER.sub(r': "__unquoted_placeholder_\1__"', path.read_text(encoding="utf-8")))


def dump(definition: dict[str, Any]) -> str:
    """The definition as the file holds it: indented as the envelope is, placeholders unquoted again."""
    return _SENTINEL.sub(r"${\1}", json.dumps(definition, indent=2, ensure_ascii=False)) + "\n"


def derive(envelope: dict[str, Any]) -> dict[str, Any]:
    """The child variant of ``envelope``: the protected work replaced by a started child workflow."""
    states: dict[str, Any] = envelope["States"]
    protected = states.get(PROTECTED_WORK)
    if protected is None:
        raise EnvelopeShapeError(f"The envelope has no state {PROTECTED_WORK!r} to replace with the child workflow")
    catcher = _the_catch_all(protected)
    if protected.get("End") or "Next" not in protected:
        raise EnvelopeShapeError(f"{PROTECTED_WORK!r} must go on to a state that saves its result (it has no Next)")
    clashes = sorted(
        set(states)
        & {
            LINK,
            RUN_CHILD,
            TAKE_OUTPUT,
            DID_CHILD_FAIL,
            READ_CHILD,
            DID_CHILD_GIVE_ERROR,
            TAKE_ERROR,
            SAY_HOW_CHILD_ENDED,
        }
    )
    if clashes:
        raise EnvelopeShapeError(f"The envelope already has states named {', '.join(clashes)}")

    variant = copy.deepcopy(envelope)
    variant["Comment"] = (
        "Idempotent child workflow: the envelope of idempotent_workflow.asl.json around another state machine, "
        "started and awaited in place of the business steps. Generated by scripts/child_envelope.py --write: "
        "edit the envelope, not this file."
    )
    chain = _chain(protected, catcher)
    variant["States"] = {}
    for name, state in envelope["States"].items():
        if name == PROTECTED_WORK:
            variant["States"].update(chain)
        else:
            variant["States"][name] = _with_child_named(_redirected(copy.deepcopy(state), PROTECTED_WORK, LINK))
    if variant["StartAt"] == PROTECTED_WORK:
        variant["StartAt"] = LINK
    return variant


def _the_catch_all(protected: dict[str, Any]) -> dict[str, Any]:
    catchers = protected.get("Catch", [])
    if len(catchers) != 1 or catchers[0].get("ErrorEquals") != ["States.ALL"]:
        raise EnvelopeShapeError(
            f"{PROTECTED_WORK!r} must have exactly one Catch, on States.ALL, that records the failure"
        )
    return catchers[0]


def _chain(protected: dict[str, Any], catcher: dict[str, Any]) -> dict[str, Any]:
    """The states that take the protected work's place, wired as it was."""
    input_path = protected.get("InputPath", "$")
    result_path = protected.get("ResultPath", "$")
    failure = catcher.get("ResultPath", "$")
    recorded = catcher["Next"]
    run_child: dict[str, Any] = {
        "Type": "Task",
        "Comment": (
            "Starts the child state machine with the execution input and waits for its end. Named after this "
            "execution: a retried start finds the child already there instead of starting another."
        ),
        "Resource": START_CHILD_AND_WAIT,
        "Parameters": {
            "StateMachineArn": CHILD_STATE_MACHINE_PLACEHOLDER,
            "Name.$": "$$.Execution.Name",
            "Input.$": f"States.JsonMerge({input_path}, {LINK_PATH}, false)",
        },
        "ResultSelector": {"output.$": "$.Output"},
        "ResultPath": result_path,
    }
    if "Retry" in protected:
        run_child["Retry"] = copy.deepcopy(protected["Retry"])
    run_child["Catch"] = [
        {"ErrorEquals": [CHILD_FAILED], "ResultPath": failure, "Next": DID_CHILD_FAIL},
        copy.deepcopy(catcher),
    ]
    run_child["Next"] = TAKE_OUTPUT
    return {
        LINK: {
            "Type": "Pass",
            "Comment": f"The field {STARTED_BY_FIELD} links the child execution to this one in Step Functions.",
            "Parameters": {f"{STARTED_BY_FIELD}.$": "$$.Execution.Id"},
            "ResultPath": LINK_PATH,
            "Next": RUN_CHILD,
        },
        RUN_CHILD: run_child,
        TAKE_OUTPUT: {
            "Type": "Pass",
            "Comment": "The child's output, unchanged, is the result to store and return.",
            "InputPath": f"{_child_of(result_path)}.output",
            "ResultPath": result_path,
            "Next": protected["Next"],
        },
        DID_CHILD_FAIL: {
            "Type": "Choice",
            "Comment": (
                f"{CHILD_FAILED} with a JSON cause is a child that ended without success; any other error is "
                "recorded as it is."
            ),
            "Choices": [
                {
                    "And": [
                        {"Variable": f"{failure}.Error", "StringEquals": CHILD_FAILED},
                        {"Variable": f"{failure}.Cause", "StringMatches": "{*}"},
                    ],
                    "Next": READ_CHILD,
                }
            ],
            "Default": recorded,
        },
        READ_CHILD: {
            "Type": "Pass",
            "Comment": (
                "The cause is the child's description as JSON (with its input): it is read in place of the text, "
                "never beside it, to stay within the payload limit."
            ),
            "Parameters": {
                "Error.$": f"{failure}.Error",
                "execution.$": f"States.StringToJson({failure}.Cause)",
            },
            "ResultPath": failure,
            "Next": DID_CHILD_GIVE_ERROR,
        },
        DID_CHILD_GIVE_ERROR: {
            "Type": "Choice",
            "Comment": "A child that failed gives its error and cause; one that was stopped may give none.",
            "Choices": [
                {
                    "And": [
                        {"Variable": f"{failure}.execution.Error", "IsPresent": True},
                        {"Variable": f"{failure}.execution.Cause", "IsPresent": True},
                    ],
                    "Next": TAKE_ERROR,
                }
            ],
            "Default": SAY_HOW_CHILD_ENDED,
        },
        SAY_HOW_CHILD_ENDED: {
            "Type": "Pass",
            "Comment": "A child stopped or timed out gives no error of its own: its status is the cause.",
            "Parameters": {
                "Error.$": f"{failure}.Error",
                "Cause.$": (
                    "States.Format('The child execution {} ended {}.', "
                    f"{failure}.execution.ExecutionArn, {failure}.execution.Status)"
                ),
            },
            "ResultPath": failure,
            "Next": recorded,
        },
        TAKE_ERROR: {
            "Type": "Pass",
            "Comment": "The child's own error and cause become the failure to record and fail with.",
            "Parameters": {"Error.$": f"{failure}.execution.Error", "Cause.$": f"{failure}.execution.Cause"},
            "ResultPath": failure,
            "Next": recorded,
        },
    }


def _with_child_named(state: dict[str, Any]) -> dict[str, Any]:
    """A call of the take function also names the child state machine (its record then names the child execution)."""
    payload = state.get("Parameters", {}).get("Payload")
    if state.get("Parameters", {}).get("FunctionName") == TAKE_FUNCTION_PLACEHOLDER and isinstance(payload, dict):
        payload[CHILD_FIELD] = CHILD_STATE_MACHINE_PLACEHOLDER
    return state


def _child_of(path: str) -> str:
    # "$" + ".output" must read "$.output", not "$$.output".
    return "" if path == "$" else path


def _redirected(value: Any, old: str, new: str) -> Any:
    """``value`` with every transition to state ``old`` (Next, Default, Choices, Catch) sent to ``new``."""
    if isinstance(value, list):
        return [_redirected(item, old, new) for item in value]
    if not isinstance(value, dict):
        return value
    redirected = {}
    for name, item in value.items():
        if name in ("Next", "Default") and item == old:
            redirected[name] = new
        elif name in ("Branches", "ItemProcessor", "Iterator"):
            redirected[name] = item  # states of their own, which cannot go to a top-level state
        else:
            redirected[name] = _redirected(item, old, new)
    return redirected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {CHILD_ENVELOPE_PATH.relative_to(PROJECT_ROOT)}")
    arguments = parser.parse_args(argv)
    text = dump(derive(load()))
    if arguments.write:
        CHILD_ENVELOPE_PATH.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
