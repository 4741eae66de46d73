"""Where the layer's branch coverage is measured (make test): in the unit tier only.

The unit tests reach every branch of the layer, through its functions and through the handlers
and the emulator's in-process Lambda functions (96% of the layer's branches; the integration and
example tests add under 1%). Coverage traces every Python call while it runs, and the integration
tests make hundreds of thousands of them inside moto: measured there too, the suite took twice the
CPU time. So their test bodies run untraced (pytest-cov's ``no_cover``), as do the emulator's own unit tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

UNIT_TESTS = Path(__file__).parent / "tests" / "unit"
# The unit tests of the emulator itself (its adapters, the execution API, event rules, nested
# workflows) run moto's state machines, not the layer: traced, they cost as much CPU time as the
# rest of the suite (make test took 6 min 13 s with them traced, 3 min 18 s without coverage).
EMULATOR_UNIT_TESTS = (
    "test_adapters*.py",
    "test_task_token_adapter.py",
    "test_execution_api.py",
    "test_event_rules.py",
    "test_nested_workflows.py",
)


def _traced(path: Path) -> bool:
    return path.is_relative_to(UNIT_TESTS) and not any(path.match(pattern) for pattern in EMULATOR_UNIT_TESTS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not _traced(item.path):
            item.add_marker(pytest.mark.no_cover)
