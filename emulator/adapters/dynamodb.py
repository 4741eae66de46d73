"""DynamoDB item operations made atomic, as DynamoDB's are."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from moto.dynamodb.models import DynamoDBBackend

_ITEM_OPERATIONS = ("put_item", "update_item", "delete_item", "get_item", "transact_write_items")


@contextlib.contextmanager
def atomic_dynamodb_writes() -> Iterator[threading.RLock]:
    """Serialize moto's DynamoDB item operations so each conditional write is atomic."""
    lock = threading.RLock()

    def locked(original: Callable[..., Any]) -> Callable[..., Any]:
        def operation(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return operation

    with contextlib.ExitStack() as patches:
        for name in _ITEM_OPERATIONS:
            patches.enter_context(mock.patch.object(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name))))
        yield lock
