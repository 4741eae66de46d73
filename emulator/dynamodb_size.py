"""DynamoDB's item size, counted by DynamoDB's documented rules, and what it costs.

One function serves the emulator (the 400 KB item limit) and the bench (capacity units), so the
two cannot count differently. The rules ("Item sizes and formats" in the DynamoDB developer
guide): an item's size is the sum of its attribute names' and values' sizes; a string is its
UTF-8 length; a number is about one byte per two significant digits plus one; binary is its
length; a map or a list costs 3 bytes plus 1 byte per element besides its content; a boolean or
null is 1 byte. Where the guide says "about", this rounds up: the emulator may be stricter than
AWS, never laxer.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

# 400 KB, as DynamoDB counts it (KB = 1,024 bytes).
MAX_ITEM_BYTES = 400 * 1024
_CONTAINER_OVERHEAD = 3
_PER_ELEMENT_OVERHEAD = 1
_WRITE_UNIT_BYTES = 1024
_READ_UNIT_BYTES = 4 * 1024


def item_size_bytes(item: Any) -> int:
    """The size DynamoDB counts for an item, in bytes.

    ``item`` is the wire format (``{"name": {"S": "..."}}``, as boto3's client takes it, binary
    as bytes or base64 text) or one of moto's stored items (``Item``, whose ``attrs`` hold
    ``DynamoType`` values). ``None`` (no item) is 0 bytes.
    """
    if item is None:
        return 0
    attributes = getattr(item, "attrs", item)
    return sum(_utf8(name) + attribute_value_size(value) for name, value in attributes.items())


def attribute_value_size(value: Any) -> int:
    """The size of one attribute value (wire format or moto's ``DynamoType``), without its name."""
    kind, content = _typed(value)
    if kind == "S":
        return _utf8(content)
    if kind == "N":
        return _number_size(content)
    if kind == "B":
        return _binary_size(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8(element) for element in content)
    if kind == "NS":
        return sum(_number_size(element) for element in content)
    if kind == "BS":
        return sum(_binary_size(element) for element in content)
    if kind == "L":
        return _CONTAINER_OVERHEAD + sum(_PER_ELEMENT_OVERHEAD + attribute_value_size(element) for element in content)
    if kind == "M":
        return _CONTAINER_OVERHEAD + sum(
            _PER_ELEMENT_OVERHEAD + _utf8(name) + attribute_value_size(element) for name, element in content.items()
        )
    raise ValueError(f"not a DynamoDB attribute value: {value!r}")


def write_capacity_units(old_item: Any, new_item: Any) -> int:
    """On-demand write units of one write: 1 per started KB of the larger of the old and new item.

    A write of a missing item with nothing new (a refused conditional put of an absent key) still
    costs 1 unit.
    """
    size = max(item_size_bytes(old_item), item_size_bytes(new_item))
    return max(1, math.ceil(size / _WRITE_UNIT_BYTES))


def read_capacity_units(item: Any, *, consistent: bool = True) -> float:
    """On-demand read units of one read: 1 per started 4 KB strongly consistent, half that eventually."""
    units = max(1, math.ceil(item_size_bytes(item) / _READ_UNIT_BYTES))
    return units if consistent else units / 2


def _typed(value: Any) -> tuple[str, Any]:
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise ValueError(f"not a DynamoDB attribute value: {value!r}")
        ((kind, content),) = value.items()
        return str(kind), content
    # moto's DynamoType: its lists and maps hold DynamoType elements.
    return str(value.type), value.value


def _utf8(text: Any) -> int:
    return len(text.encode("utf-8")) if isinstance(text, str) else len(bytes(text))


def _binary_size(content: Any) -> int:
    if isinstance(content, bytes | bytearray | memoryview):
        return len(content)
    # On the wire (and in moto) binary is base64 text.
    try:
        return len(base64.b64decode(content, validate=True))
    except (binascii.Error, ValueError):
        return _utf8(content)


def _number_size(content: Any) -> int:
    try:
        digits = Decimal(str(content)).normalize().as_tuple()
    except InvalidOperation:
        return _utf8(str(content))
    significant = len(digits.digits) if any(digits.digits) else 1
    # Rounded up; a negative number takes one byte more in DynamoDB's encoding.
    return math.ceil(significant / 2) + 1 + (1 if digits.sign else 0)
