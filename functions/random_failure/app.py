"""An example business step that fails at random, to show how the envelope records failures.

The execution input can force the outcome, for tests and demos: ``"forceFailure": true`` always
fails, ``"forceFailure": false`` never does; without it the step fails with probability
``FAILURE_PROBABILITY`` (default 0.5).
"""

from __future__ import annotations

import os
import random
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()

FORCE_FAILURE_FIELD = "forceFailure"
SUCCESS_OUTPUT = "All good"


class SimulatedStepFailure(Exception):
    """The example step failed, on purpose. Step Functions reports it under this class name."""


def decide_to_fail(execution_input: Any, failure_probability: float, draw: float) -> bool:
    """Return whether the step fails: the input's ``forceFailure`` wins over the random ``draw``."""
    forced = execution_input.get(FORCE_FAILURE_FIELD) if isinstance(execution_input, dict) else None
    if isinstance(forced, bool):
        return forced
    return draw < failure_probability


def run_step(execution_input: Any, failure_probability: float, draw: float) -> str:
    if decide_to_fail(execution_input, failure_probability, draw):
        raise SimulatedStepFailure("The example step failed (forced by the input or drawn at random).")
    return SUCCESS_OUTPUT


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> str:
    probability = float(os.environ.get("FAILURE_PROBABILITY", "0.5"))
    return run_step(event.get("input"), probability, random.random())
