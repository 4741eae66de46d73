"""Deployment settings of the envelope, read from the function's environment.

Each value comes from a template parameter (``template.yaml``), so the parameter is the one
place to change it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    table_name: str
    record_ttl_seconds: int
    lease_seconds: int
    poll_interval_seconds: int
    wait_timeout_seconds: int

    @property
    def max_polls(self) -> int:
        """How many times a waiter waits one poll interval before giving up."""
        return math.ceil(self.wait_timeout_seconds / self.poll_interval_seconds)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            table_name=environ["IDEMPOTENCY_TABLE_NAME"],
            record_ttl_seconds=int(environ["RECORD_TTL_SECONDS"]),
            lease_seconds=int(environ["LOCK_LEASE_SECONDS"]),
            poll_interval_seconds=int(environ["POLL_INTERVAL_SECONDS"]),
            wait_timeout_seconds=int(environ["WAIT_TIMEOUT_SECONDS"]),
        )
