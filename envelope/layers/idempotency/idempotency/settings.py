"""Deployment settings of the envelope, read from the functions' environment.

Each value comes from a template parameter (``template.yaml``), so the parameter is the one
place to change it. A function reads only the variables it is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from botocore.config import Config

from idempotency.errors import IdempotencyConfigurationError
from idempotency.key import KeyRules, check_scope
from idempotency.vocabulary import FailurePolicy, WaitMode, WorkflowType

EXPRESS_MAX_DURATION_SECONDS = 300

# A waiter is woken by the owner's task token; it also looks again on its own, in case a wake-up
# was lost. Those looks back off exponentially from the poll interval up to this cap, so a long
# wait costs a few transitions, not three per poll interval.
MAX_RECHECK_INTERVAL_SECONDS = 600

# The state machine retries every task with named errors and backoff (see the ASL); the SDK's own
# retries would hide the fault from it and multiply the attempts.
SDK_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=5)


@dataclass(frozen=True)
class Settings:
    table_name: str
    record_ttl_seconds: int
    lease_seconds: int
    poll_interval_seconds: int
    wait_timeout_seconds: int
    # Given as the parameters' text, made the members once checked.
    waiter_failure_policy: FailurePolicy | str
    workflow_type: WorkflowType | str
    execution_timeout_seconds: int
    # The longest one call the steps make can run (a Lambda function's Timeout): an owner that
    # stopped frees its key only this long after it stopped, since its calls in flight run on.
    longest_call_seconds: int = 900
    # How a request is identified (key expression, override, payload validation), and the scope of
    # its record's id ("" means each state machine's own name).
    key_rules: KeyRules = field(default_factory=KeyRules)
    scope: str = ""

    def __post_init__(self) -> None:
        problems = []
        if self.waiter_failure_policy not in tuple(FailurePolicy):
            problems.append(
                f"WaitersOnFailure must be one of {', '.join(FailurePolicy)}, got {str(self.waiter_failure_policy)!r}"
            )
        if self.workflow_type not in tuple(WorkflowType):
            problems.append(
                f"WorkflowType must be {WorkflowType.STANDARD} or {WorkflowType.EXPRESS}, "
                f"got {str(self.workflow_type)!r}"
            )
        if self.workflow_type == WorkflowType.EXPRESS and self.execution_timeout_seconds > EXPRESS_MAX_DURATION_SECONDS:
            problems.append(
                f"ExecutionTimeoutSeconds={self.execution_timeout_seconds} but an Express workflow lasts at most "
                f"{EXPRESS_MAX_DURATION_SECONDS} s"
            )
        if self.longest_call_seconds < 1:
            problems.append(f"LongestCallSeconds must be at least 1, got {self.longest_call_seconds}")
        owner_lifetime = self.execution_timeout_seconds + self.longest_call_seconds
        if self.record_ttl_seconds <= owner_lifetime:
            problems.append(
                f"RecordTtlSeconds={self.record_ttl_seconds} must be longer than "
                f"ExecutionTimeoutSeconds + LongestCallSeconds ({owner_lifetime}): the record of an owner still at "
                "work would expire and be taken by a duplicate"
            )
        if self.workflow_type == WorkflowType.EXPRESS and self.lease_seconds < owner_lifetime:
            problems.append(
                f"LockLeaseSeconds={self.lease_seconds} must be at least ExecutionTimeoutSeconds + LongestCallSeconds "
                f"({owner_lifetime}) for an Express workflow: Step Functions cannot tell whether an Express owner "
                "still runs, so its lease alone must outlive it"
            )
        if self.wait_timeout_seconds >= self.execution_timeout_seconds:
            problems.append(
                f"WaitTimeoutSeconds={self.wait_timeout_seconds} must be shorter than "
                f"ExecutionTimeoutSeconds={self.execution_timeout_seconds}, or waiters time out instead of failing "
                "with a named error"
            )
        if self.scope:
            check_scope(self.scope)
        if problems:
            raise IdempotencyConfigurationError("; ".join(problems) + ".")
        object.__setattr__(self, "waiter_failure_policy", FailurePolicy(self.waiter_failure_policy))
        object.__setattr__(self, "workflow_type", WorkflowType(self.workflow_type))

    @property
    def wait_by(self) -> WaitMode:
        """How a BUSY execution waits: Express workflows cannot use task tokens, so they poll."""
        return WaitMode.POLLING if self.workflow_type == WorkflowType.EXPRESS else WaitMode.TASK_TOKEN

    @property
    def checks_liveness(self) -> bool:
        """Whether an expired lease is checked with Step Functions before it is taken over.

        Express executions cannot be described: their lease alone decides.
        """
        return self.workflow_type == WorkflowType.STANDARD

    def recheck_after(self, rechecks: int, waited_seconds: int, due_in: int | None = None) -> int:
        """Seconds a waiter waits for a wake-up before its next own look, or 0 when its wait is used up.

        ``due_in``: seconds until the record says to look again (its lease runs out, or an ended
        owner's calls can have finished): nobody wakes a waiter then, so it looks by itself.
        """
        remaining = self.wait_timeout_seconds - waited_seconds
        if remaining <= 0:
            return 0
        backoff: int = self.poll_interval_seconds * 2 ** min(rechecks, 16)
        return max(
            1, min(backoff, MAX_RECHECK_INTERVAL_SECONDS, remaining, due_in if due_in is not None else remaining)
        )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the settings from the variables the template gives every envelope function.

        Raises:
            IdempotencyConfigurationError: the parameters contradict each other.
        """
        return cls(
            table_name=environ["IDEMPOTENCY_TABLE_NAME"],
            record_ttl_seconds=int(environ["RECORD_TTL_SECONDS"]),
            lease_seconds=int(environ["LOCK_LEASE_SECONDS"]),
            poll_interval_seconds=int(environ["POLL_INTERVAL_SECONDS"]),
            wait_timeout_seconds=int(environ["WAIT_TIMEOUT_SECONDS"]),
            waiter_failure_policy=environ["WAITERS_ON_FAILURE"],
            workflow_type=environ["WORKFLOW_TYPE"],
            execution_timeout_seconds=int(environ["EXECUTION_TIMEOUT_SECONDS"]),
            longest_call_seconds=int(environ["LONGEST_CALL_SECONDS"]),
            key_rules=KeyRules.from_parameters(
                key_expression=environ.get("IDEMPOTENCY_KEY_JMESPATH", ""),
                allow_key_override=environ.get("ALLOW_KEY_OVERRIDE", "true"),
                validation_expression=environ.get("PAYLOAD_VALIDATION_JMESPATH", ""),
            ),
            scope=environ.get("IDEMPOTENCY_SCOPE", ""),
        )

    def scope_of(self, state_machine_arn: str) -> str:
        """The scope of the records of a state machine's executions: the deployment's, or the state machine's name."""
        return record_scope(self.scope, state_machine_arn)


def record_scope(scope: str, state_machine_arn: str) -> str:
    """The scope of a state machine's records: ``scope`` (IdempotencyScope) if set, else the state machine's name."""
    return check_scope(scope or state_machine_name(state_machine_arn))


def state_machine_name(arn: str) -> str:
    """The name in a state machine's ARN, or in one of its executions' ARNs (Standard or Express)."""
    parts = arn.split(":")
    kind = parts[5] if len(parts) > 6 else ""
    if kind in ("stateMachine", "execution", "express"):
        return parts[6]
    raise IdempotencyConfigurationError(f"{arn!r} is not the ARN of a state machine or of an execution.")
