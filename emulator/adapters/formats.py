"""Values the context object holds, in the format Step Functions writes them."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.backend import execution_worker


def aws_timestamp(moment: datetime.datetime | str) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, as in ``$$.Execution.StartTime``: ``2026-12-01T14:41:06.883Z``."""
    when = datetime.datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    when = when.astimezone(datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@contextlib.contextmanager
def aws_context_timestamps() -> Iterator[None]:
    """Write ``$$.Execution.StartTime`` and ``$$.State.EnteredTime`` as Step Functions does.

    moto writes Python's ``isoformat()``: microseconds and ``+00:00``
    (``2026-12-01T14:41:06.883412+00:00``); code that parses or compares these strings, or
    stores them, sees another shape and length offline than on AWS.
    """
    # Looked up by name: the interpreter modules import these TypedDicts without re-exporting them.
    original_execution_data = getattr(execution_worker, "ExecutionData")  # noqa: B009
    original_state_data = getattr(state_module, "StateData")  # noqa: B009

    def execution_data(**fields: Any) -> Any:
        if fields.get("StartTime") is not None:
            fields["StartTime"] = aws_timestamp(fields["StartTime"])
        return original_execution_data(**fields)

    def state_data(**fields: Any) -> Any:
        if fields.get("EnteredTime") is not None:
            fields["EnteredTime"] = aws_timestamp(fields["EnteredTime"])
        return original_state_data(**fields)

    with (
        mock.patch.object(execution_worker, "ExecutionData", execution_data),
        mock.patch.object(state_module, "StateData", state_data),
    ):
        yield
