"""The front door: answer a repeat from its record, or start the envelope; one read, never a write.

A Standard execution costs state transitions even on a hit. The front door identifies a request
exactly as the take does (``key.identify``: key expression, override rules, scope, payload
validation) and reads its record once, strongly consistent, with the take's own reading
(``take.stored_result``: TTL, payload validation, states). A live SUCCESS record answers with its
stored result; anything else (absent, expired, FAILED, IN_PROGRESS) starts one execution of the
envelope with the input and returns its ARN at once: the envelope then does what it always does,
waiting for a running owner included. The envelope stays the only writer of records, so every
guarantee holds whether a caller comes through here or starts the state machine itself.

Executions are started without a name: Step Functions names each one with a UUID, so its rule that
a name is unusable for 90 days after its execution closed never refuses a legitimate rerun. A start
whose reply was lost and is retried may start a second execution: the envelope makes it a repeat.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from idempotency.key import DEFAULT_RULES, KeyRules, identify
from idempotency.settings import Settings, record_scope
from idempotency.store import RecordStore
from idempotency.take import stored_result
from idempotency.vocabulary import Outcome

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

# The front door function's variable that names the envelope's state machine (the template sets it).
WORKFLOW_ARN_VARIABLE = "IDEMPOTENT_WORKFLOW_ARN"


@dataclass(frozen=True)
class FrontDoorConfig:
    """How a request is identified and what it starts: the envelope's state machine and its key rules."""

    state_machine_arn: str
    key_rules: KeyRules = DEFAULT_RULES
    # IdempotencyScope; "" means the state machine's own name, as in the envelope.
    scope: str = ""

    @classmethod
    def of(cls, settings: Settings, state_machine_arn: str) -> FrontDoorConfig:
        """The front door of the envelope ``state_machine_arn`` deployed with ``settings``."""
        return cls(state_machine_arn, settings.key_rules, settings.scope)


@dataclass(frozen=True)
class FrontDoorAnswer:
    """The stored result (``COMPLETED``), or the ARN of the execution just started (``STARTED``)."""

    outcome: Outcome
    key: str
    result: Any = None
    execution_arn: str | None = None

    def as_output(self) -> dict[str, Any]:
        if self.outcome == Outcome.COMPLETED:
            return {"outcome": Outcome.COMPLETED, "key": self.key, "result": self.result}
        return {"outcome": Outcome.STARTED, "key": self.key, "executionArn": self.execution_arn}


def result_or_start(
    execution_input: Any,
    config: FrontDoorConfig,
    records: RecordStore,
    stepfunctions: Callable[[], SFNClient],
    now: int,
) -> FrontDoorAnswer:
    """The stored result of ``execution_input``, or the ARN of the envelope execution started with it.

    ``stepfunctions`` gives the Step Functions client, called only to start an execution (a hit
    makes none: ``lambda: client`` where one exists already).

    Raises the envelope's own named errors before anything is started: the input's (not an object,
    too deep, too large, not JSON-safe), its key expression's, ``IdempotencyPayloadMismatchError``
    for a record written for another payload, ``IdempotencyRecordStateError`` for a record in no
    known state.
    """
    identity = identify(execution_input, record_scope(config.scope, config.state_machine_arn), config.key_rules)
    stored = stored_result(records, identity.key, now, identity.payload_hash)
    if stored is not None:
        return FrontDoorAnswer(Outcome.COMPLETED, identity.key, result=stored.result)
    started = stepfunctions().start_execution(
        stateMachineArn=config.state_machine_arn, input=json.dumps(execution_input, ensure_ascii=False)
    )
    return FrontDoorAnswer(Outcome.STARTED, identity.key, execution_arn=started["executionArn"])
