"""Waiter slots: where an execution waiting for a record's owner leaves its task token.

A waiter leaves its token in an item of its own (``<key>#waiter#<owner tag>#<n>``), so the record
never grows with contention and a hit never reads tokens. The slot's number ``n`` comes from a
counter on the record (``store.RecordStore.count_waiter``); whoever changes the record next reads
the slots of its holder, sends each token a message (``wakeup``) and clears them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from typing import Any

from idempotency.record import ID, TTL, Owner, SavedOutcome, text_of
from idempotency.retries import ATTEMPTS, back_off, chunks, with_retries
from idempotency.store import RecordStore

# Attribute names of a waiter slot.
TASK_TOKEN = "tasktoken"
WAITING_ON = "waitingon"
WAITER_SLOT_INFIX = "#waiter#"
# How long a slot not there yet is waited for, read after read: a waiter counted on the record
# writes its slot right after.
SETTLE_SECONDS = (0.05, 0.2, 0.5)


def waiter_slot_id(key: str, tag: str, number: int) -> str:
    return f"{key}{WAITER_SLOT_INFIX}{tag}#{number}"


def slot_ids(saved: SavedOutcome) -> list[str]:
    """The ids of the slots handed out under the holder of ``saved``: ``waiter_slot_id(key, tag, n)``, n from 1."""
    return [waiter_slot_id(saved.key, saved.owner_tag, number) for number in range(1, saved.waiter_count + 1)]


def register_waiter(store: RecordStore, key: str, holder: Owner, task_token: str, now: int) -> bool:
    """Leave a waiter's task token in a slot of its own, so the record's owner wakes it when it saves.

    The slot's number comes from a counter on the record, incremented under the condition that
    the record is still the live IN_PROGRESS record of ``holder`` (the record stays small: the
    increment costs one write unit whatever the number of waiters). The slot lives as long as a
    record would. Returns False when the record changed since the waiter looked (saved, released,
    taken over, expired): nobody would wake that token, so the waiter should look again now.
    """
    number = store.count_waiter(key, holder, now)
    if number is None:
        return False
    with_retries(
        lambda: store.client.put_item(
            TableName=store.table_name,
            Item={
                ID: {"S": waiter_slot_id(key, holder.tag, number)},
                TASK_TOKEN: {"S": task_token},
                WAITING_ON: {"S": holder.execution_id},
                TTL: {"N": str(now + store.record_ttl_seconds)},
            },
        )
    )
    return True


def waiter_tokens(
    store: RecordStore, saved: SavedOutcome, *, settle_seconds: Sequence[float] = SETTLE_SECONDS
) -> dict[str, str]:
    """The task tokens in the waiter slots of ``saved`` (slot id -> token), by strongly consistent reads.

    A waiter counted on the record writes its slot right after: a slot not there yet is read
    again after each of ``settle_seconds``, then left (that waiter finds the outcome on its own
    when its wait for a wake-up times out).
    """
    missing = slot_ids(saved)
    tokens: dict[str, str] = {}
    for pause in (0.0, *settle_seconds):
        if not missing:
            break
        time.sleep(pause)
        for slot_id, token in _tokens_of(store, missing):
            tokens[slot_id] = token
        missing = [slot_id for slot_id in missing if slot_id not in tokens]
    return tokens


def clear_waiter_slots(store: RecordStore, ids: Sequence[str]) -> None:
    """Delete waiter slots whose tokens were sent (a later save must not find them again)."""
    for chunk in chunks(ids, 25):
        requests: dict[str, Any] = {
            store.table_name: [{"DeleteRequest": {"Key": {ID: {"S": slot_id}}}} for slot_id in chunk]
        }
        for attempt in range(ATTEMPTS):
            response = with_retries(functools.partial(store.client.batch_write_item, RequestItems=requests))
            unprocessed = response.get("UnprocessedItems") or {}
            if not unprocessed:
                break
            requests = unprocessed
            back_off(attempt)


def _tokens_of(store: RecordStore, ids: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(slot id, task token) of each of the slots ``ids`` that is there."""
    for chunk in chunks(ids, 100):
        request: dict[str, Any] = {
            store.table_name: {"Keys": [{ID: {"S": slot_id}} for slot_id in chunk], "ConsistentRead": True}
        }
        for attempt in range(ATTEMPTS):
            response = with_retries(functools.partial(store.client.batch_get_item, RequestItems=request))
            for item in response.get("Responses", {}).get(store.table_name, []):
                yield text_of(item, ID) or "", text_of(item, TASK_TOKEN) or ""
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            back_off(attempt)


# --------------------------------------------------------------------------- for the operators' records tool
def is_waiter_slot(item_id: str) -> bool:
    """Whether an item of the table is a waiter slot (``<key>#waiter#<owner tag>#<n>``) rather than a record."""
    return WAITER_SLOT_INFIX in item_id


def record_id_of_waiter_slot(slot_id: str) -> str:
    """The id of the record a waiter slot belongs to: the part of its id before ``#waiter#``."""
    return slot_id.split(WAITER_SLOT_INFIX, 1)[0]
