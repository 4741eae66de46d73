"""The closed sets of values the envelope writes to DynamoDB, returns to Step Functions or reads from its parameters.

One name per value. Each is a ``StrEnum``, so a member is the very string the record, the ASL's
Choice states, the wake-up messages and the template's ``AllowedValues`` carry: it is written,
compared and serialized as that string.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """A record's ``executionstatus`` (docs/contract.md, "The record")."""

    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


class Outcome(StrEnum):
    """What a look at a record found (the take's ``outcome``, on which the state machine branches), and what a
    waiter is woken with."""

    # The take: the caller owns the record now and runs the steps.
    ACQUIRED = "ACQUIRED"
    # The take, a wake-up, the front door: the stored result.
    COMPLETED = "COMPLETED"
    # The take: another execution holds the record; wait.
    BUSY = "BUSY"
    # The take, for a waiter whose policy is to fail with the failure it waited for (WaitersOnFailure=Fail);
    # and a wake-up: the owner failed, look again.
    FAILED = "FAILED"
    # A wake-up: the owner ended without saving, its record was released; look again.
    RELEASED = "RELEASED"
    # A wake-up a waiter sends itself: the record changed before its token was left; look again.
    RECORD_CHANGED = "RECORD_CHANGED"
    # The front door: an execution of the envelope was started.
    STARTED = "STARTED"


class WaitMode(StrEnum):
    """How a BUSY execution waits (the take's ``waitBy``): for the owner's wake-up, or by polling."""

    TASK_TOKEN = "TASK_TOKEN"
    POLLING = "POLLING"


class FailurePolicy(StrEnum):
    """What waiters do when the execution they waited for failed (template parameter ``WaitersOnFailure``)."""

    # One waiter takes the record and runs the steps again; the others keep waiting.
    TAKE_OVER = "TakeOver"
    # Every waiter fails with the error the owner failed with.
    FAIL = "Fail"


class WorkflowType(StrEnum):
    """The state machine's type (template parameter ``WorkflowType``).

    Express workflows cannot wait for task tokens (waiters poll instead), last at most five minutes,
    send no status-change events, and cannot be described by Step Functions' API.
    """

    STANDARD = "STANDARD"
    EXPRESS = "EXPRESS"
