"""An example business step: stands for one piece of real work inside the envelope.

The state machine calls this one function for steps 1 to 4, telling it which step it is.
Replace it (and its Task states) with your own steps.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()


def run_step(step: int) -> dict[str, str]:
    """Do the work of ``step`` and return its result."""
    return {"result": f"Output of step {step}"}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    step = int(event["step"])
    logger.info("Running example step", extra={"step": step})
    return run_step(step)
