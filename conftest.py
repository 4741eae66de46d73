"""Where the layer's branch coverage is measured (make test): in the unit tier only.

The unit tests reach every branch of the layer, through its functions and through the handlers
and the emulator's in-process Lambda functions (96% of the layer's branches; the integration and
example tests add under 1%). Coverage traces every Python call while it runs, and the integration
tests make hundreds of thousands of them inside moto: measured there too, the suite took twice the
CPU time. So their test bodies run untraced (pytest-cov's ``no_cover``), as do the emulator's own unit tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.adapters import work_done_once

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


def _untraced_while(item: pytest.Item) -> Iterator[None]:
    # pytest-cov's no_cover pauses the test's body only; its fixtures (a stack deployed into moto,
    # the executions a module fixture runs) were traced, a third of the suite's coverage cost.
    coverage = item.config.pluginmanager.getplugin("_cov")
    controller = getattr(coverage, "cov_controller", None)
    if controller is None or not item.get_closest_marker("no_cover") or not controller.started:
        yield
        return
    controller.pause()
    try:
        yield
    finally:
        controller.resume()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    return (yield from _untraced_while(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    return (yield from _untraced_while(item))


@pytest.fixture(autouse=True, scope="session")
def _work_done_once_per_process() -> Iterator[None]:
    """botocore's service models, moto's task clients, parsed JSONPaths and definitions, made once per test process
    rather than per stack, task and execution (a quarter of the suite's CPU time): the unit tests that
    start moto themselves (``mock_aws``) get it too, not only the emulator's stacks."""
    with work_done_once():
        yield
