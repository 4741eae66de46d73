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
  field, under the name the take gives (the parent execution's own): a retried start can only find
  the child already started (a second start of one name is refused), never start a second one.
* **Take the child workflow's output** (Pass) puts the child's ``Output``, unchanged, where the
  protected work's result went: that is what is stored and returned.
* On failure, a failed, timed-out or stopped child fails the Task with ``States.TaskFailed`` and
  the child's description (JSON) as the cause. **Did the child workflow fail?**, **Read the child
  workflow's execution**, **Did the child workflow give its error?** and **Take the child
  workflow's error** replace that with the child's own ``Error`` and ``Cause``, so the record
  holds the error the child failed with. Any other error (a child that gave no error) goes to the
  ``Catch`` target as it is.
* A start refused because the name is taken (``StepFunctions.ExecutionAlreadyExistsException``:
  a redrive of this execution reruns its start once its child has ended) does not fail: the
  states from **Look at the child workflow already started under this name** on follow the child
  this execution started (by the ARN the take returned): its output if it succeeded, a redrive of
  it if it failed, was stopped or timed out and has not been redriven since the take looked, its
  failure otherwise. A child of that name started by another execution keeps the start refused. The
  first run and a hit never enter them.
* **Resuming a failed child.** When the record is a child's failure and that child can still run
  again, the take hands the next execution that child instead of a new one (``childExecution``,
  ``childName``, ``childStartedBy``: the failed owner's): the link and the start then name that
  child, whose start is refused once it has ended, and the same states redrive it and follow it.
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
if str(PROJECT_ROOT) not in sys.path:  # run as a file (python scripts/child_envelope.py), not only with -m
    sys.path.insert(0, str(PROJECT_ROOT))

from tools.layer_import import load_modules  # noqa: E402

# The names the take function and Step Functions give the child, read from the layer that uses them.
_ownership, _taking = load_modules(
    PROJECT_ROOT / "envelope" / "layers" / "idempotency", "idempotency.ownership", "idempotency.taking"
)
# Step Functions links an execution to the one that started it through this input field.
STARTED_BY_FIELD: str = _ownership.STARTED_BY_FIELD
CHILD_EXECUTION: str = _taking.CHILD_EXECUTION
CHILD_NAME: str = _taking.CHILD_NAME
CHILD_STARTED_BY: str = _taking.CHILD_STARTED_BY
CHILD_REDRIVE_COUNT: str = _taking.CHILD_REDRIVE_COUNT

ENVELOPE_PATH = PROJECT_ROOT / "statemachine" / "idempotent_workflow.asl.json"
CHILD_ENVELOPE_PATH = PROJECT_ROOT / "envelope" / "statemachine" / "idempotent_child_workflow.asl.json"
PROTECTED_WORK = "Run the business steps"
CHILD_STATE_MACHINE_PLACEHOLDER = "${ChildStateMachineArn}"
START_CHILD_AND_WAIT = "arn:aws:states:::states:startExecution.sync:2"
CHILD_FAILED = "States.TaskFailed"

LINK = "Link the child workflow to this execution"
RUN_CHILD = "Run the child workflow"
TAKE_OUTPUT = "Take the child workflow's output"
DID_CHILD_FAIL = "Did the child workflow fail?"
READ_CHILD = "Read the child workflow's execution"
DID_CHILD_GIVE_ERROR = "Did the child workflow give its error?"
TAKE_ERROR = "Take the child workflow's error"
SAY_HOW_CHILD_ENDED = "Say how the child workflow ended"
# A redriven parent reruns its start under the same name: Step Functions refuses it once that child
# has ended (and returns the child while it runs with the same input). These follow the child instead.
ALREADY_STARTED = "StepFunctions.ExecutionAlreadyExistsException"
FIND_CHILD = "Look at the child workflow already started under this name"
IS_IT_OURS = "Is that child this execution's, and has it ended?"
NAME_TAKEN = "Say the name is taken by another execution"
TAKE_FINISHED_OUTPUT = "Take the output the child workflow finished with"
WAIT_FOR_REDRIVE = "Wait while the child workflow is redriven"
REDRIVE_CHILD = "Redrive the child workflow"
READ_HOW_CHILD_ENDED = "Read how the child workflow ended"
DESCRIBE_EXECUTION = "arn:aws:states:::aws-sdk:sfn:describeExecution"
REDRIVE_EXECUTION = "arn:aws:states:::aws-sdk:sfn:redriveExecution"
NOT_REDRIVABLE = "Sfn.ExecutionNotRedrivableException"
# The child the owner runs, as the take function names it: its own (ownership.execution_arn_of_child), or the
# failed owner's it resumes. Its ARN, its name, its parent (its input's started-by field), its redrives then.
CHILD_EXECUTION_PATH = f"$.idempotency.{CHILD_EXECUTION}"
CHILD_NAME_PATH = f"$.idempotency.{CHILD_NAME}"
CHILD_STARTED_BY_PATH = f"$.idempotency.{CHILD_STARTED_BY}"
CHILD_REDRIVE_COUNT_PATH = f"$.idempotency.{CHILD_REDRIVE_COUNT}"
# How long a parent waits before looking again at a child whose redrive Step Functions is still scheduling.
REDRIVE_POLL_SECONDS = 5
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
    clashes = sorted(set(states) & set(CHAIN_STATES))
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


# Every state of the chain that replaces the protected work, the ones that follow a child started before last.
CHAIN_STATES = (
    LINK,
    RUN_CHILD,
    TAKE_OUTPUT,
    DID_CHILD_FAIL,
    READ_CHILD,
    DID_CHILD_GIVE_ERROR,
    TAKE_ERROR,
    SAY_HOW_CHILD_ENDED,
    FIND_CHILD,
    IS_IT_OURS,
    NAME_TAKEN,
    TAKE_FINISHED_OUTPUT,
    WAIT_FOR_REDRIVE,
    REDRIVE_CHILD,
    READ_HOW_CHILD_ENDED,
)


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
            "execution (or the failed one whose child it resumes): a retried start finds the child already "
            "there instead of starting another."
        ),
        "Resource": START_CHILD_AND_WAIT,
        "Parameters": {
            "StateMachineArn": CHILD_STATE_MACHINE_PLACEHOLDER,
            "Name.$": CHILD_NAME_PATH,
            "Input.$": f"States.JsonMerge({input_path}, {LINK_PATH}, false)",
        },
        "ResultSelector": {"output.$": "$.Output"},
        "ResultPath": result_path,
    }
    if "Retry" in protected:
        run_child["Retry"] = copy.deepcopy(protected["Retry"])
    run_child["Catch"] = [
        # First: States.TaskFailed also matches every other error a task raises (but States.Timeout).
        {"ErrorEquals": [ALREADY_STARTED], "ResultPath": failure, "Next": FIND_CHILD},
        {"ErrorEquals": [CHILD_FAILED], "ResultPath": failure, "Next": DID_CHILD_FAIL},
        copy.deepcopy(catcher),
    ]
    run_child["Next"] = TAKE_OUTPUT
    return {
        LINK: {
            "Type": "Pass",
            "Comment": (
                f"The field {STARTED_BY_FIELD} links the child execution to the one that starts it in Step Functions "
                "(this execution, or the failed one whose child it resumes)."
            ),
            "Parameters": {f"{STARTED_BY_FIELD}.$": CHILD_STARTED_BY_PATH},
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
        **_following_chain(catcher, result_path, failure),
    }


def _following_chain(catcher: dict[str, Any], result_path: str, failure: str) -> dict[str, Any]:
    """The states that follow a child this execution started before (it is being redriven) instead of starting one.

    Entered when the start is refused because the name is taken: the child has ended (a redrive of
    this execution reruns the start; an execution resuming a failed owner's child starts it under
    that name), or it runs with another input (the resuming execution's input differs), or another
    execution took the name. The child is found by its ARN; one started by another execution is
    refused as the start was. A child that succeeded gives its output; one that failed, was stopped
    or timed out and whose redrive count is still the one the take saw is redriven and followed like
    a running one (the start then returns it, or is refused again and looks again); one redriven since
    (it ended again) or that can no longer be redriven fails the task as a failed child does.
    """
    recorded = catcher["Next"]
    started_by = f"{failure}.input.{STARTED_BY_FIELD}"
    status = f"{failure}.status"
    on_error = {"ErrorEquals": ["States.ALL"], "ResultPath": failure, "Next": recorded}
    return {
        FIND_CHILD: {
            "Type": "Task",
            "Comment": "The child under this execution's name: who started it, and how it is.",
            "Resource": DESCRIBE_EXECUTION,
            "Parameters": {"ExecutionArn.$": CHILD_EXECUTION_PATH},
            "ResultSelector": {
                "status.$": "$.Status",
                "redriveStatus.$": "$.RedriveStatus",
                "redriveCount.$": "$.RedriveCount",
                "input.$": "States.StringToJson($.Input)",
            },
            "ResultPath": failure,
            "Catch": [on_error],
            "Next": IS_IT_OURS,
        },
        IS_IT_OURS: {
            "Type": "Choice",
            "Comment": (
                "Only the child this execution started is followed; a running one is waited for by starting it again."
            ),
            "Choices": [
                {"Not": {"Variable": started_by, "IsPresent": True}, "Next": NAME_TAKEN},
                {
                    "Not": {"Variable": started_by, "StringEqualsPath": f"{LINK_PATH}.{STARTED_BY_FIELD}"},
                    "Next": NAME_TAKEN,
                },
                {"Variable": status, "StringEquals": "SUCCEEDED", "Next": TAKE_FINISHED_OUTPUT},
                {
                    "Or": [
                        {"Variable": status, "StringEquals": "RUNNING"},
                        {"Variable": status, "StringEquals": "PENDING_REDRIVE"},
                    ],
                    "Next": WAIT_FOR_REDRIVE,
                },
                {
                    "And": [
                        {
                            "Or": [
                                {"Variable": status, "StringEquals": "FAILED"},
                                {"Variable": status, "StringEquals": "ABORTED"},
                                {"Variable": status, "StringEquals": "TIMED_OUT"},
                            ]
                        },
                        {"Variable": f"{failure}.redriveStatus", "StringEquals": "REDRIVABLE"},
                        # Not redriven since the take looked: a child that ended again after a redrive is final.
                        {"Variable": f"{failure}.redriveCount", "NumericEqualsPath": CHILD_REDRIVE_COUNT_PATH},
                    ],
                    "Next": REDRIVE_CHILD,
                },
            ],
            "Default": READ_HOW_CHILD_ENDED,
        },
        NAME_TAKEN: {
            "Type": "Pass",
            "Comment": "Another execution's child has this name: the start stays refused.",
            "Parameters": {
                "Error": ALREADY_STARTED,
                "Cause.$": (
                    f"States.Format('Execution Already Exists: {{}} was started by another execution', "
                    f"{CHILD_EXECUTION_PATH})"
                ),
            },
            "ResultPath": failure,
            "Next": recorded,
        },
        TAKE_FINISHED_OUTPUT: {
            "Type": "Task",
            "Comment": (
                "The child finished (redriven by an operator, or before this execution's stop was seen): its output is "
                "the result."
            ),
            "Resource": DESCRIBE_EXECUTION,
            "Parameters": {"ExecutionArn.$": CHILD_EXECUTION_PATH},
            "ResultSelector": {"output.$": "States.StringToJson($.Output)"},
            "ResultPath": result_path,
            "Catch": [on_error],
            "Next": TAKE_OUTPUT,
        },
        WAIT_FOR_REDRIVE: {
            "Type": "Wait",
            "Comment": (
                "A child being redriven is started again (which returns it while it runs with this input) after a "
                "moment."
            ),
            "Seconds": REDRIVE_POLL_SECONDS,
            "Next": RUN_CHILD,
        },
        REDRIVE_CHILD: {
            "Type": "Task",
            "Comment": (
                "The child failed, was stopped or timed out: it continues from its unsuccessful state, with its input."
            ),
            "Resource": REDRIVE_EXECUTION,
            "Parameters": {"ExecutionArn.$": CHILD_EXECUTION_PATH},
            "ResultPath": None,
            "Catch": [
                # Redriven by someone else in the meantime: the next look finds it running, or not redrivable.
                {"ErrorEquals": [NOT_REDRIVABLE], "ResultPath": None, "Next": WAIT_FOR_REDRIVE},
                on_error,
            ],
            "Next": WAIT_FOR_REDRIVE,
        },
        READ_HOW_CHILD_ENDED: {
            "Type": "Task",
            "Comment": (
                "A child that ended again after its redrive, or can no longer be redriven: its description is the "
                "cause, as a failed start gives it."
            ),
            "Resource": DESCRIBE_EXECUTION,
            "Parameters": {"ExecutionArn.$": CHILD_EXECUTION_PATH},
            "ResultSelector": {"Error": CHILD_FAILED, "Cause.$": "States.JsonToString($)"},
            "ResultPath": failure,
            "Catch": [on_error],
            "Next": DID_CHILD_FAIL,
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
