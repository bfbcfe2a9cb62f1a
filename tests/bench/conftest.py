"""The end-to-end benchmark test runs only when slow tests are asked for (``-m slow``, as ``make bench-quick``
does), so that CI runs it once, after ``make test``."""

import pytest


def pytest_collection_modifyitems(config, items):
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="end to end; run with 'make bench-quick' (pytest -m slow tests/bench)")
    for item in items:
        if "tests/bench/" in str(item.fspath).replace("\\", "/") and "slow" in item.keywords:
            item.add_marker(skip)
