"""Fixtures for the integration tests: the real template deployed into the offline emulator.

With ``AWS_SAM_STACK_NAME`` set, the ``stack`` fixture is that deployed stack instead (found from
its CloudFormation outputs; ``AWS_ENDPOINT_URL`` and ``AWS_REGION`` say where), and tests marked
``offline_only`` are skipped: they need what only the emulator can do (count or intercept Lambda
calls, inject DynamoDB faults, override parameters, scale time). Without the variable nothing
is skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from emulator import OfflineStack
from tests.integration.support import QUIET
from tools.deployed import STACK_NAME_VARIABLE, DeployedStack


@pytest.hookimpl(tryfirst=True)  # before fixtures: a skipped module never connects to the stack
def pytest_runtest_setup(item: pytest.Item) -> None:
    stack_name = os.environ.get(STACK_NAME_VARIABLE)
    marker = item.get_closest_marker("offline_only")
    if stack_name and marker is not None:
        why = marker.kwargs.get("reason", "it needs the offline emulator")
        pytest.skip(f"offline_only ({why}); {STACK_NAME_VARIABLE}={stack_name} selects a deployed stack")


TEST_LONGEST_CALL_SECONDS = 2


@pytest.fixture(scope="module")
def stack() -> Iterator[OfflineStack | DeployedStack]:
    """The stack, shared by a module's tests (each uses its own inputs), with its default parameters but one.

    ``LongestCallSeconds`` is the bound on the steps' calls, which the key of a stopped or failed
    owner waits out: the example steps take milliseconds, so 2 s, not the default minute.
    """
    deployed = DeployedStack.from_environment()
    if deployed is not None:
        with deployed:
            yield deployed
        return
    with OfflineStack({"LongestCallSeconds": TEST_LONGEST_CALL_SECONDS}, environment=QUIET) as offline:
        yield offline


@pytest.fixture
def unique() -> str:
    """A value that makes a test's inputs, and so its idempotency keys, its own."""
    return uuid.uuid4().hex
