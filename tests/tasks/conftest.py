"""Fixtures for the task tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def sandbox_run():
    """tttd.sandbox.run, or skip when the sandbox module is not available."""
    sandbox = pytest.importorskip("tttd.sandbox", reason="tttd.sandbox is not available")
    if not hasattr(sandbox, "run"):
        pytest.skip("tttd.sandbox has no run()")
    return sandbox.run
