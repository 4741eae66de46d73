"""An example business step that fails at random, to show how the envelope records failures.

The execution input can force the outcome, for tests and demos: ``"forceFailure": true`` always
fails, ``"forceFailure": false`` never does; without it the step fails with probability
``FAILURE_PROBABILITY`` (default 0.5). Any other ``forceFailure`` (``"true"``, ``1``, ``null``) is
refused with ``ForceFailureNotBooleanError`` rather than silently left to chance.
"""

from __future__ import annotations

import json
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


class ForceFailureNotBooleanError(Exception):
    """The input's ``forceFailure`` is there but is not a JSON boolean."""


def decide_to_fail(execution_input: Any, failure_probability: float, draw: float) -> bool:
    """Return whether the step fails: the input's ``forceFailure`` wins over the random ``draw``.

    Raises:
        ForceFailureNotBooleanError: ``forceFailure`` is not ``true`` or ``false``.
    """
    if not isinstance(execution_input, dict) or FORCE_FAILURE_FIELD not in execution_input:
        return draw < failure_probability
    forced = execution_input[FORCE_FAILURE_FIELD]
    if not isinstance(forced, bool):
        # "true" or 1 taken as "not forced" would make a test that meant to force the outcome random.
        raise ForceFailureNotBooleanError(f"{FORCE_FAILURE_FIELD} must be true or false, got {json.dumps(forced)}.")
    return forced


def run_step(execution_input: Any, failure_probability: float, draw: float) -> str:
    if decide_to_fail(execution_input, failure_probability, draw):
        raise SimulatedStepFailure("The example step failed (forced by the input or drawn at random).")
    return SUCCESS_OUTPUT


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> str:
    probability = float(os.environ.get("FAILURE_PROBABILITY", "0.5"))
    return run_step(event.get("input"), probability, random.random())
