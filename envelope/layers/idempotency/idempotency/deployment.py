"""What one function of a deployment works with: its settings, its clients and its records, made on first use.

A handler makes its ``Deployment`` on its first call (a cached function), not when it is imported:
importing a handler reads no environment and makes no client, so a test imports it like any module.
Lambda keeps it for the life of the container, as it would keep module-level objects. The handler
passes in how clients are made (``boto3.client``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from idempotency.ownership import LivenessChecker
from idempotency.settings import SDK_CONFIG, Settings
from idempotency.store import RecordStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_stepfunctions.client import SFNClient


# boto3.client, or whatever makes a client by service name and config.
ClientMaker = Callable[..., Any]


@dataclass
class Deployment:
    """A deployment's settings and clients. The Step Functions client is made only when a call needs one (a hit
    never does)."""

    settings: Settings
    dynamodb: DynamoDBClient
    make_stepfunctions: Callable[[], SFNClient]

    @classmethod
    def from_environment(cls, client: ClientMaker, environ: Mapping[str, str] = os.environ) -> Deployment:
        """The settings the template gives every envelope function, and a DynamoDB client made with ``client``.

        Raises:
            IdempotencyConfigurationError: the parameters contradict each other.
        """
        settings = Settings.from_environment(environ)
        return cls(settings, client("dynamodb", config=SDK_CONFIG), lambda: client("stepfunctions", config=SDK_CONFIG))

    @cached_property
    def records(self) -> RecordStore:
        settings = self.settings
        return RecordStore(self.dynamodb, settings.table_name, settings.record_ttl_seconds, settings.lease_seconds)

    @cached_property
    def stepfunctions(self) -> SFNClient:
        return self.make_stepfunctions()

    @cached_property
    def liveness(self) -> LivenessChecker:
        """Asks Step Functions about holders; its client is made on its first question (only a look at an
        expired lease asks)."""
        return LivenessChecker(lambda: self.stepfunctions, self.settings.longest_call_seconds)
