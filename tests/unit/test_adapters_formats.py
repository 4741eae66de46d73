"""AWS's formats: a Lambda error's Cause as the Python runtime writes it, and the context object's timestamps."""

from __future__ import annotations

import json
import re
from typing import Any

from emulator.adapters import aws_context_timestamps, aws_timestamp, stack_trace
from tests.unit.sfn_support import Cloud, cloud_fixture, lambda_task  # noqa: F401  (the cloud fixture)
from tools.template import PROJECT_ROOT

AWS_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class PaymentDeclinedError(Exception):
    pass


def decline(event: Any, context: Any) -> Any:
    raise PaymentDeclinedError("card 42 declined")


def test_a_lambda_error_reaches_the_state_machine_as_the_python_runtimes_document(cloud: Cloud) -> None:
    function = cloud.function(decline)
    machine = cloud.machine({"StartAt": "Pay", "States": {"Pay": lambda_task(function)}})

    description = cloud.run(machine)

    assert (description["status"], description["error"]) == ("FAILED", "PaymentDeclinedError")
    cause = json.loads(description["cause"])
    assert list(cause) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert cause["errorMessage"] == "card 42 declined"
    assert cause["errorType"] == "PaymentDeclinedError"
    assert re.fullmatch(r"[0-9a-f-]{36}", cause["requestId"])
    (frame,) = cause["stackTrace"]  # starts in the handler: no frame of the emulator's own
    assert frame == (
        f'  File "tests/unit/test_adapters_formats.py", line {decline.__code__.co_firstlineno + 1}, in decline\n'
        '    raise PaymentDeclinedError("card 42 declined")\n'
    )
    assert str(PROJECT_ROOT) not in description["cause"]


def test_stack_trace_paths_are_relative_to_the_project_or_the_library_folder() -> None:
    import botocore.client

    frames = [
        ("/somewhere/else/app.py", 3, "handler", "x()"),
        (str(PROJECT_ROOT / "functions" / "take" / "app.py"), 5, "lambda_handler", "take()"),
        (botocore.client.__file__, 7, "_api_call", "call()"),
    ]
    from traceback import FrameSummary

    trace = stack_trace([FrameSummary(name, line, function, line=code) for name, line, function, code in frames])

    assert [entry.split(",")[0] for entry in trace] == [
        '  File "app.py"',
        '  File "functions/take/app.py"',
        '  File "botocore/client.py"',
    ]


def _context_times(cloud: Cloud) -> dict[str, str]:
    machine = cloud.machine(
        {
            "StartAt": "Times",
            "States": {
                "Times": {
                    "Type": "Pass",
                    "Parameters": {"start.$": "$$.Execution.StartTime", "entered.$": "$$.State.EnteredTime"},
                    "End": True,
                }
            },
        }
    )
    execution = cloud.start(machine)
    cloud.wait_for_history(execution, "ExecutionSucceeded")
    # From the history: moto as pinned cannot even describe this execution (a datetime in its output).
    (exited,) = [event for event in cloud.history(execution) if event["type"] == "PassStateExited"]
    times: dict[str, str] = json.loads(exited["stateExitedEventDetails"]["output"])
    return times


def test_moto_as_pinned_writes_python_isoformat_timestamps(cloud: Cloud) -> None:
    times = _context_times(cloud)

    assert not AWS_TIMESTAMP.fullmatch(times["start"])
    assert times["entered"].endswith("+00:00")


def test_context_timestamps_are_written_as_step_functions_writes_them(cloud: Cloud) -> None:
    with aws_context_timestamps():
        times = _context_times(cloud)

    assert AWS_TIMESTAMP.fullmatch(times["start"]), times["start"]
    assert AWS_TIMESTAMP.fullmatch(times["entered"]), times["entered"]
    assert times["start"] <= times["entered"]


def test_aws_timestamp_keeps_milliseconds_in_utc() -> None:
    assert aws_timestamp("2026-12-01T15:41:06.883412+01:00") == "2026-12-01T14:41:06.883Z"
    assert aws_timestamp("2026-12-01T14:41:06+00:00") == "2026-12-01T14:41:06.000Z"
