"""Fixtures shared by the examples' tests (each example deploys its own template in its tests)."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def unique() -> str:
    """A value that makes a test's inputs, and so its idempotency keys, its own."""
    return uuid.uuid4().hex
