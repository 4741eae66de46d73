"""How long the take function takes to compute the key of a large input (200 KiB)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.targets import HASH_MAX_MS, Target
from emulator.adapters import load_module

KEY_MODULE = "idempotency.key"
HASH_INPUT_BYTES = 200 * 1024


@dataclass
class HashTiming:
    """Time to compute the key of a large input."""

    input_bytes: int
    median_ms: float
    runs: int
    target: Target


def large_input(canonical_json: Callable[[Any], bytes], size: int = HASH_INPUT_BYTES) -> dict[str, Any]:
    """A deterministic order-like input whose canonical JSON is at least ``size`` bytes."""
    items: list[dict[str, Any]] = []
    payload: dict[str, Any] = {"orderId": "bench-200KiB", "customer": {"id": "c-42", "tier": "gold"}, "items": items}
    while len(canonical_json(payload)) < size:
        index = len(items)
        items.append(
            {
                "sku": f"SKU-{index:06d}",
                "quantity": index % 7 + 1,
                "unitPrice": round(index * 1.37 % 100, 2),
                "attributes": {"size": "XL" if index % 2 else "M", "colour": f"c{index % 13}", "gift": index % 5 == 0},
                "description": f"Item {index} of the benchmark order, with a description of ordinary length.",
            }
        )
    return payload


def measure_key_hash(import_roots: Sequence[Path], runs: int) -> HashTiming:
    """Median time of ``compute_idempotency_key`` on a 200 KiB input (key of the whole input)."""
    key_module = load_module(list(import_roots), KEY_MODULE)
    payload = large_input(key_module.canonical_json)
    for _ in range(3):
        key_module.compute_idempotency_key(payload)
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        key_module.compute_idempotency_key(payload)
        timings.append((time.perf_counter() - start) * 1000)
    median = statistics.median(timings)
    return HashTiming(
        len(key_module.canonical_json(payload)), median, runs, Target("", round(median, 2), HASH_MAX_MS, "ms")
    )
