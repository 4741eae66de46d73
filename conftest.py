"""Where the layer's branch coverage is measured (make test): in the unit tier only.

The unit tests reach every branch of the layer, through its functions and through the handlers
and the emulator's in-process Lambda functions (96% of the layer's branches; the integration and
example tests add under 1%). Coverage traces every Python call while it runs, and the integration
tests make hundreds of thousands of them inside moto: measured there too, the suite took twice the
CPU time. So their test bodies run untraced (pytest-cov's ``no_cover``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

UNIT_TESTS = Path(__file__).parent / "tests" / "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(UNIT_TESTS):
            item.add_marker(pytest.mark.no_cover)
