"""What one execution did, read from Step Functions' answers: the same for the emulator and a deployed stack."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FINISHED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class ExecutionDidNotFinish(TimeoutError):
    """An execution was still running when the caller stopped waiting for it."""


@dataclass(frozen=True)
class ExecutionResult:
    """What one execution did: its outcome and its full event history."""

    execution_arn: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]

    @property
    def states_entered(self) -> list[str]:
        """Names of the states entered, in order (every kind of state, including Parallel branches)."""
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.history
            if event["type"].endswith("StateEntered")
        ]

    @property
    def lambda_tasks(self) -> int:
        """How many Lambda invocations the execution scheduled (``arn:aws:states:::lambda:invoke``)."""
        return sum(
            1
            for event in self.history
            if event["type"] == "TaskScheduled" and event["taskScheduledEventDetails"]["resourceType"] == "lambda"
        )


def finished_execution(sfn: Any, description: Mapping[str, Any], *, with_history: bool = True) -> ExecutionResult:
    """The outcome of a finished execution from its ``DescribeExecution`` answer and its whole history.

    ``with_history=False`` for Express executions, whose history Step Functions does not keep.
    """
    execution_arn = description["executionArn"]
    history: list[dict[str, Any]] = []
    if with_history:
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
        history = [dict(event) for page in pages for event in page["events"]]
    error, cause = description.get("error"), description.get("cause")
    for event in history:
        details = event.get("executionFailedEventDetails")
        if details:
            error, cause = details.get("error", error), details.get("cause", cause)
    return ExecutionResult(
        execution_arn=execution_arn,
        status=description["status"],
        output=_parse_output(description.get("output")),
        error=error,
        cause=cause,
        history=history,
    )


def _parse_output(output: str | None) -> Any:
    if output is None:
        return None
    try:
        return json.loads(output)
    except json.JSONDecodeError:
        return output  # moto returns a string result unquoted
