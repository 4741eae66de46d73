"""List prices, and what a million executions of a measured usage cost at them.

Standard workflows are billed per state transition; Express workflows per request and per GB-second
of duration (memory in 64 MB steps, duration rounded up to 100 ms). Lambda per request and per
GB-second of billed duration; DynamoDB on-demand per request unit. Free tiers are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.metering import Usage

PRICES_REGION = "us-east-1"
PRICES_TAKEN = "2026-11-23"
PRICES_SOURCE = "AWS list prices for Step Functions, Lambda and DynamoDB on-demand, as quoted in the benchmark issue"
# Express bills memory in 64 MB steps; an execution's memory is not observable offline, so the smallest step.
EXPRESS_ASSUMED_MEMORY_MB = 64
EXPRESS_DURATION_STEP_MS = 100


@dataclass(frozen=True)
class Prices:
    """List prices in USD (first tier where tiered)."""

    standard_per_1k_transitions: float = 0.025
    express_per_million_requests: float = 1.00
    express_per_gb_second: float = 0.00001667
    lambda_per_million_requests: float = 0.20
    lambda_per_gb_second: Mapping[str, float] = field(
        default_factory=lambda: {"arm64": 0.0000133334, "x86_64": 0.0000166667}
    )
    dynamodb_per_million_wru: float = 0.625
    dynamodb_per_million_rru: float = 0.125


@dataclass(frozen=True)
class FunctionSpec:
    """A function of the template, as deployed: what it is billed for."""

    logical_id: str
    function_name: str
    memory_mb: int
    architecture: str
    envelope: bool


@dataclass
class Cost:
    """USD per million executions."""

    workflow: float  # Standard: state transitions; Express: requests and duration
    lambda_: float
    dynamodb: float

    @property
    def total(self) -> float:
        return self.workflow + self.lambda_ + self.dynamodb

    def as_dict(self) -> dict[str, float]:
        return {"workflow": self.workflow, "lambda": self.lambda_, "dynamodb": self.dynamodb, "total": self.total}

    @staticmethod
    def mix(share: float, first: Cost, second: Cost) -> Cost:
        """``share`` of ``first`` and the rest of ``second``."""
        return Cost(
            workflow=share * first.workflow + (1 - share) * second.workflow,
            lambda_=share * first.lambda_ + (1 - share) * second.lambda_,
            dynamodb=share * first.dynamodb + (1 - share) * second.dynamodb,
        )


def cost_per_million(
    usage: Usage,
    functions: Mapping[str, FunctionSpec],
    billed_ms: Mapping[str, int],
    prices: Prices,
    express_duration_ms: float | None = None,
) -> Cost:
    """What a million executions of ``usage`` cost; ``express_duration_ms`` prices it as an Express workflow."""
    lambda_per_call = 0.0
    for logical_id, calls in usage.lambda_calls.items():
        spec = functions[logical_id]
        gb_seconds = spec.memory_mb / 1024 * billed_ms[logical_id] / 1000
        lambda_per_call += calls * (
            prices.lambda_per_million_requests / 1e6 + gb_seconds * prices.lambda_per_gb_second[spec.architecture]
        )
    if express_duration_ms is None:
        workflow = usage.states_entered * prices.standard_per_1k_transitions * 1000
    else:
        billed_s = max(1, math.ceil(express_duration_ms / EXPRESS_DURATION_STEP_MS)) * EXPRESS_DURATION_STEP_MS / 1000
        gb_seconds = EXPRESS_ASSUMED_MEMORY_MB / 1024 * billed_s
        workflow = prices.express_per_million_requests + gb_seconds * prices.express_per_gb_second * 1e6
    return Cost(
        workflow=workflow,
        lambda_=lambda_per_call * 1e6,
        dynamodb=usage.dynamodb.wru * prices.dynamodb_per_million_wru
        + usage.dynamodb.rru * prices.dynamodb_per_million_rru,
    )
