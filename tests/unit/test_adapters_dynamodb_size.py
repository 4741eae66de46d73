"""DynamoDB's 400 KB item limit, counted as DynamoDB counts (emulator/dynamodb_size.py), on every write.

Each behaviour is shown on moto with ``dynamodb_item_size_limit`` and, where moto as pinned is
laxer (or refuses what DynamoDB accepts), without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models.dynamo_type import DynamoType, Item

from emulator.adapters import atomic_dynamodb_writes, dynamodb_item_size_limit
from emulator.dynamodb_size import (
    MAX_ITEM_BYTES,
    attribute_value_size,
    item_size_bytes,
    read_capacity_units,
    write_capacity_units,
)
from tests.unit.conftest import RECORDS_TABLE as TABLE

PUT_TOO_LARGE = "Item size has exceeded the maximum allowed size"
UPDATE_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"
# An item {"id": "k", "data": <text>} is 2 + 1 + 4 = 7 bytes besides the text.
OVERHEAD = len("id") + len("k") + len("data")


# --------------------------------------------------------------------------- the count
def test_strings_count_their_utf8_bytes_not_their_characters() -> None:
    assert attribute_value_size({"S": "abc"}) == 3
    assert attribute_value_size({"S": "жук"}) == 6
    assert attribute_value_size({"S": "🙂"}) == 4
    assert item_size_bytes({"имя": {"S": "x"}}) == 7


@pytest.mark.parametrize(
    ("number", "size"),
    [("0", 2), ("7", 2), ("12", 2), ("123", 3), ("1000", 2), ("0.0012", 2), ("-5", 3), ("12345678901234567890", 11)],
)
def test_numbers_count_one_byte_per_two_significant_digits_plus_one(number: str, size: int) -> None:
    assert attribute_value_size({"N": number}) == size


def test_maps_and_lists_add_three_bytes_and_one_per_element() -> None:
    assert attribute_value_size({"L": [{"S": "ab"}, {"BOOL": True}]}) == 3 + (1 + 2) + (1 + 1)
    assert attribute_value_size({"M": {"w1": {"S": "token"}, "n": {"NULL": True}}}) == 3 + (1 + 2 + 5) + (1 + 1 + 1)
    assert attribute_value_size({"B": b"\x00\x01\x02"}) == 3
    assert attribute_value_size({"B": "AAEC"}) == 3  # base64 on the wire
    assert attribute_value_size({"SS": ["a", "жж"]}) == 5


def test_moto_items_count_as_the_wire_format_does() -> None:
    wire: dict[str, Any] = {
        "id": {"S": "k"},
        "waiters": {"M": {"w": {"S": "жук🙂"}}},
        "n": {"N": "1234"},
        "l": {"L": [{"N": "1"}]},
    }
    stored = Item(DynamoType(wire["id"]), None, wire)

    assert item_size_bytes(stored) == item_size_bytes(wire) == 3 + (7 + 3 + 1 + 1 + 10) + (1 + 3) + (1 + 3 + 1 + 2)


def test_capacity_units_follow_the_larger_item_and_round_up() -> None:
    small = {"id": {"S": "k"}}
    two_kb = {"id": {"S": "k"}, "data": {"S": "x" * (2048 - OVERHEAD)}}
    assert write_capacity_units(None, small) == 1
    assert write_capacity_units(two_kb, small) == 2
    assert write_capacity_units({"id": {"S": "k"}, "data": {"S": "x" * (2049 - OVERHEAD)}}, None) == 3
    assert read_capacity_units(two_kb) == 1
    assert read_capacity_units({"id": {"S": "k"}, "data": {"S": "x" * (4097 - OVERHEAD)}}) == 2
    assert read_capacity_units(two_kb, consistent=False) == 0.5


# --------------------------------------------------------------------------- the limit in moto
@pytest.fixture
def strict(dynamodb: Any) -> Iterator[Any]:
    """The same, with the size adapter (and the lock, in the order the stack enters them)."""
    with dynamodb_item_size_limit(), atomic_dynamodb_writes():
        yield dynamodb


def _item(data: Any, key: str = "k") -> dict[str, Any]:
    return {"id": {"S": key}, "data": data if isinstance(data, dict) else {"S": data}}


def _stored(client: Any, key: str = "k") -> dict[str, Any] | None:
    return client.get_item(TableName=TABLE, Key={"id": {"S": key}}, ConsistentRead=True).get("Item")


@contextlib.contextmanager
def _refused(message: str) -> Iterator[None]:
    with pytest.raises(ClientError) as refused:
        yield
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert message in refused.value.response["Error"]["Message"]


def test_moto_as_pinned_refuses_an_item_of_exactly_400_kb(dynamodb: Any) -> None:
    with _refused(PUT_TOO_LARGE):
        dynamodb.put_item(TableName=TABLE, Item=_item("x" * (MAX_ITEM_BYTES - OVERHEAD)))


def test_an_item_of_exactly_400_kb_is_stored_one_byte_more_is_refused(strict: Any) -> None:
    exact = _item("x" * (MAX_ITEM_BYTES - OVERHEAD))
    assert item_size_bytes(exact) == MAX_ITEM_BYTES

    strict.put_item(TableName=TABLE, Item=exact)
    with _refused(PUT_TOO_LARGE):
        strict.put_item(TableName=TABLE, Item=_item("y" * (MAX_ITEM_BYTES - OVERHEAD + 1)))

    assert _stored(strict) == exact


@pytest.mark.parametrize("character", ["ж", "🙂"], ids=["cyrillic", "emoji"])
def test_multibyte_text_counts_its_utf8_bytes(strict: Any, character: str) -> None:
    width = len(character.encode("utf-8"))
    fits = character * ((MAX_ITEM_BYTES - OVERHEAD) // width)
    strict.put_item(TableName=TABLE, Item=_item(fits, key="a"))
    # Fewer characters than the limit in bytes, more bytes than it.
    with _refused(PUT_TOO_LARGE):
        strict.put_item(TableName=TABLE, Item=_item(fits + character, key="b"))

    assert _stored(strict, "b") is None


def _waiter_update(client: Any, token: str, marker: str = "changed") -> None:
    client.update_item(
        TableName=TABLE,
        Key={"id": {"S": "k"}},
        UpdateExpression="SET marker = :marker, #waiters.#w = :token",
        ExpressionAttributeNames={"#waiters": "waiters", "#w": "w2"},
        ExpressionAttributeValues={":marker": {"S": marker}, ":token": {"S": token}},
    )


def _record_with_a_waiter(client: Any) -> dict[str, Any]:
    item = {"id": {"S": "k"}, "marker": {"S": "original"}, "waiters": {"M": {"w1": {"S": "t" * 300_000}}}}
    client.put_item(TableName=TABLE, Item=item)
    return item


def test_moto_as_pinned_stores_a_nested_update_past_the_limit(dynamodb: Any) -> None:
    _record_with_a_waiter(dynamodb)
    _waiter_update(dynamodb, "u" * 200_000)

    stored = _stored(dynamodb)
    assert stored is not None and item_size_bytes(stored) > MAX_ITEM_BYTES


def test_a_nested_update_past_the_limit_is_refused_and_changes_nothing(strict: Any) -> None:
    record = _record_with_a_waiter(strict)

    with _refused(UPDATE_TOO_LARGE):
        _waiter_update(strict, "u" * 200_000)

    assert _stored(strict) == record  # the marker set before the waiter is not kept


def test_a_nested_update_that_fits_exactly_is_applied(strict: Any) -> None:
    record = _record_with_a_waiter(strict)
    # The item grows by the waiter's entry in the map: 1 + len("w2") + the token; "changed" is as long as
    # "original" - 1.
    room = MAX_ITEM_BYTES - item_size_bytes(record) + 1 - (1 + 2)
    _waiter_update(strict, "u" * room)

    stored = _stored(strict)
    assert stored is not None and item_size_bytes(stored) == MAX_ITEM_BYTES
    with _refused(UPDATE_TOO_LARGE):
        _waiter_update(strict, "u" * (room + 1), marker="changes")
    assert _stored(strict) == stored


def test_moto_as_pinned_keeps_half_of_a_refused_update(dynamodb: Any) -> None:
    dynamodb.put_item(
        TableName=TABLE, Item={"id": {"S": "k"}, "marker": {"S": "original"}, "data": {"S": "x" * 300_000}}
    )
    with pytest.raises(ClientError):
        dynamodb.update_item(
            TableName=TABLE,
            Key={"id": {"S": "k"}},
            UpdateExpression="SET marker = :marker, more = :more",
            ExpressionAttributeValues={":marker": {"S": "changed"}, ":more": {"S": "y" * 200_000}},
        )

    stored = _stored(dynamodb)
    assert stored is not None and stored["marker"] == {"S": "changed"}


@pytest.mark.parametrize(
    ("expression", "values"),
    [
        ("SET entries = list_append(entries, :more)", {":more": {"L": [{"S": "y" * 200_000}]}}),
        ("ADD tags :more", {":more": {"SS": ["y" * 200_000]}}),
        ("SET marker = :changed, data2 = :more", {":changed": {"S": "changed"}, ":more": {"S": "y" * 200_000}}),
    ],
    ids=["list_append", "add-to-set", "two-set-clauses"],
)
def test_every_kind_of_update_past_the_limit_changes_nothing(
    strict: Any, expression: str, values: dict[str, Any]
) -> None:
    item = {
        "id": {"S": "k"},
        "marker": {"S": "original"},
        "entries": {"L": [{"S": "x" * 250_000}]},
        "tags": {"SS": ["a"]},
    }
    strict.put_item(TableName=TABLE, Item=item)

    with _refused(UPDATE_TOO_LARGE):
        strict.update_item(
            TableName=TABLE, Key={"id": {"S": "k"}}, UpdateExpression=expression, ExpressionAttributeValues=values
        )

    assert _stored(strict) == item


def _create_too_large(client: Any) -> None:
    client.update_item(
        TableName=TABLE,
        Key={"id": {"S": "new"}},
        UpdateExpression="SET payload = :payload",
        ExpressionAttributeValues={":payload": {"S": "x" * MAX_ITEM_BYTES}},
    )


def test_moto_as_pinned_keeps_the_key_of_an_item_a_refused_update_would_create(dynamodb: Any) -> None:
    with _refused(UPDATE_TOO_LARGE):
        _create_too_large(dynamodb)

    assert _stored(dynamodb, "new") == {"id": {"S": "new"}}


def test_an_update_that_would_create_a_too_large_item_leaves_no_item(strict: Any) -> None:
    with _refused(UPDATE_TOO_LARGE):
        _create_too_large(strict)

    assert _stored(strict, "new") is None


def test_an_update_failing_on_a_later_clause_changes_nothing(strict: Any) -> None:
    item = {"id": {"S": "k"}, "marker": {"S": "original"}, "count": {"S": "not a number"}}
    strict.put_item(TableName=TABLE, Item=item)

    with pytest.raises(ClientError):
        strict.update_item(
            TableName=TABLE,
            Key={"id": {"S": "k"}},
            UpdateExpression="SET marker = :changed ADD #count :one",
            ExpressionAttributeNames={"#count": "count"},
            ExpressionAttributeValues={":changed": {"S": "changed"}, ":one": {"N": "1"}},
        )

    assert _stored(strict) == item


def test_a_refused_conditional_update_changes_nothing(strict: Any) -> None:
    item = {"id": {"S": "k"}, "marker": {"S": "original"}, "status": {"S": "SUCCESS"}}
    strict.put_item(TableName=TABLE, Item=item)

    with pytest.raises(ClientError) as refused:
        strict.update_item(
            TableName=TABLE,
            Key={"id": {"S": "k"}},
            UpdateExpression="SET marker = :changed",
            ConditionExpression="#status = :running",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":changed": {"S": "changed"}, ":running": {"S": "IN_PROGRESS"}},
        )

    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert _stored(strict) == item


def _batch(client: Any) -> None:
    client.batch_write_item(
        RequestItems={
            TABLE: [
                {"PutRequest": {"Item": _item("small", key="first")}},
                {"PutRequest": {"Item": _item("x" * MAX_ITEM_BYTES, key="too-large")}},
            ]
        }
    )


def test_moto_as_pinned_writes_part_of_a_refused_batch(dynamodb: Any) -> None:
    with pytest.raises(ClientError):
        _batch(dynamodb)

    assert _stored(dynamodb, "first") is not None


def test_a_batch_with_one_item_past_the_limit_writes_nothing(strict: Any) -> None:
    with _refused(PUT_TOO_LARGE):
        _batch(strict)

    assert _stored(strict, "first") is None


def test_a_transaction_past_the_limit_changes_nothing(strict: Any) -> None:
    strict.put_item(TableName=TABLE, Item=_item("x" * 300_000))

    with _refused(UPDATE_TOO_LARGE):
        strict.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": _item("small", key="other")}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"id": {"S": "k"}},
                        "UpdateExpression": "SET more = :more",
                        "ExpressionAttributeValues": {":more": {"S": "y" * 200_000}},
                    }
                },
            ]
        )
    with _refused(PUT_TOO_LARGE):
        strict.transact_write_items(
            TransactItems=[{"Put": {"TableName": TABLE, "Item": _item("x" * MAX_ITEM_BYTES, key="other")}}]
        )

    assert _stored(strict, "other") is None
    stored = _stored(strict)
    assert stored is not None and "more" not in stored


def test_moto_counts_as_its_own_again_after_the_block(dynamodb: Any) -> None:
    with dynamodb_item_size_limit():
        dynamodb.put_item(TableName=TABLE, Item=_item("x" * (MAX_ITEM_BYTES - OVERHEAD)))
    with _refused(PUT_TOO_LARGE):
        dynamodb.put_item(TableName=TABLE, Item=_item("x" * (MAX_ITEM_BYTES - OVERHEAD), key="again"))
