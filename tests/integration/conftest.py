"""Fixtures for the integration tests: the real template deployed into the offline emulator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from emulator import OfflineStack
from tests.integration.support import QUIET


@pytest.fixture(scope="module")
def stack() -> Iterator[OfflineStack]:
    """The stack with its default parameters, shared by a module's tests (each uses its own inputs)."""
    with OfflineStack(environment=QUIET) as deployed:
        yield deployed


@pytest.fixture
def unique() -> str:
    """A value that makes a test's inputs, and so its idempotency keys, its own."""
    return uuid.uuid4().hex
