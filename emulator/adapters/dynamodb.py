"""DynamoDB item operations made atomic, and items held to DynamoDB's size limit, as DynamoDB does."""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from moto.dynamodb.exceptions import ItemSizeTooLarge, ItemSizeToUpdateTooLarge
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing.executors import UpdateExpressionExecutor
from moto.dynamodb.responses import DynamoHandler

from emulator.dynamodb_size import MAX_ITEM_BYTES, item_size_bytes

_ITEM_OPERATIONS = ("put_item", "update_item", "delete_item", "get_item", "transact_write_items")


@contextlib.contextmanager
def atomic_dynamodb_writes() -> Iterator[threading.RLock]:
    """Serialize moto's DynamoDB item operations so each conditional write is atomic.

    An update answers with a copy of the item taken inside the lock: moto builds UpdateItem's
    ``ReturnValues`` from the live item after the backend returns, where another write may already
    have changed it (two waiters incrementing one counter were both answered with the later number).
    """
    lock = threading.RLock()

    def locked(original: Callable[..., Any], answers_with_a_copy: bool) -> Callable[..., Any]:
        def operation(*args: Any, **kwargs: Any) -> Any:
            with lock:
                result = original(*args, **kwargs)
                return copy.deepcopy(result) if answers_with_a_copy else result

        return operation

    with contextlib.ExitStack() as patches:
        for name in _ITEM_OPERATIONS:
            operation = locked(getattr(DynamoDBBackend, name), answers_with_a_copy=name == "update_item")
            patches.enter_context(mock.patch.object(DynamoDBBackend, name, operation))
        yield lock


# --------------------------------------------------------------------------- DynamoDB, item size
@contextlib.contextmanager
def dynamodb_item_size_limit(max_bytes: int = MAX_ITEM_BYTES) -> Iterator[None]:
    """Refuse every write whose item would pass DynamoDB's 400 KB, counted as DynamoDB counts, and apply nothing of it.

    moto counts by rules of its own (numbers by their text, no list or map overhead) against
    405,000 bytes, and only as each attribute is set: an update that grows one nested attribute
    (``SET #waiters.#w = :token``) or a list (``list_append``) passes, and a refused update keeps
    the clauses applied before the refusal. Here moto's own count is off and:

    * ``PutItem`` (also inside ``TransactWriteItems``) is checked before anything is read or written;
    * ``BatchWriteItem`` is checked for all its items first: DynamoDB refuses the whole batch;
    * ``UpdateItem`` (also inside ``TransactWriteItems``) is checked on the item it produced,
      before moto records the change, and any failure of an update (too large, a refused
      condition, a clause that cannot apply) puts the item back as it was, or removes the item
      the update created.

    Enter it before ``atomic_dynamodb_writes``, so the lock covers the put-back.
    """

    def check(size: int, error: type[Exception]) -> None:
        if size > max_bytes:
            raise error()

    original_put = Table.put_item

    def put_item(self: Table, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        check(item_size_bytes(item_attrs), ItemSizeTooLarge)
        return original_put(self, item_attrs, *args, **kwargs)

    original_batch = DynamoHandler.batch_write_item

    def batch_write_item(self: DynamoHandler) -> Any:
        for requests in self.body["RequestItems"].values():
            for request in requests:
                if "PutRequest" in request:
                    check(item_size_bytes(request["PutRequest"]["Item"]), ItemSizeTooLarge)
        return original_batch(self)

    original_execute = UpdateExpressionExecutor.execute

    def execute(self: UpdateExpressionExecutor, node: Any = None) -> None:
        original_execute(self, node)
        if node is None:  # the whole expression, not one of its recursive steps
            check(item_size_bytes(self.item), ItemSizeTooLarge)  # moto reports it as "to update"

    original_attribute_updates = Item.update_with_attribute_updates

    def update_with_attribute_updates(self: Item, attribute_updates: dict[str, Any]) -> None:
        original_attribute_updates(self, attribute_updates)
        check(item_size_bytes(self), ItemSizeToUpdateTooLarge)

    original_update = DynamoDBBackend.update_item

    def update_item(self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        table = self.get_table(table_name)
        try:
            hash_value, range_value = self.get_keys_value(table, key)
        except Exception:
            return original_update(self, table_name, key, *args, **kwargs)  # moto's own error for a bad key
        before = copy.deepcopy(table.get_item(hash_value, range_value))
        try:
            return original_update(self, table_name, key, *args, **kwargs)
        except Exception:
            _put_back(table, hash_value, range_value, before)
            raise

    with (
        mock.patch.object(LimitedSizeDict, "__setitem__", dict.__setitem__),
        mock.patch.object(Table, "put_item", put_item),
        mock.patch.object(DynamoHandler, "batch_write_item", batch_write_item),
        mock.patch.object(UpdateExpressionExecutor, "execute", execute),
        mock.patch.object(Item, "update_with_attribute_updates", update_with_attribute_updates),
        mock.patch.object(DynamoDBBackend, "update_item", update_item),
    ):
        yield


def _put_back(table: Table, hash_value: Any, range_value: Any, item: Item | None) -> None:
    """Make the table hold ``item`` (None: no item) under this key again, as before a refused write."""
    if item is None:
        # moto's Table.delete_item would record a stream event for a write that never happened.
        if range_value is not None:
            table.items.get(hash_value, {}).pop(range_value, None)
        else:
            table.items.pop(hash_value, None)
    elif range_value is not None:
        table.items[hash_value][range_value] = item
    else:
        table.items[hash_value] = item  # type: ignore[assignment]  # as moto stores it
