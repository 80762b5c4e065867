"""Shared fixtures: one tiny model per test session (policy, loop and end-to-end tests).

The model is built once with a short, fixed pretraining budget (reproducible, ~10-20 s on 2
cores) into pytest's cache directory (``.pytest_cache/d/tttd-models``), so later sessions reuse
it (a temporary folder when the cache plugin is off). ``TTTD_TEST_MODEL`` may point to an already built model folder instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TEST_PRETRAIN_STEPS = 12


@pytest.fixture(scope="session")
def tiny_model_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny Qwen2-style model folder (built locally, never downloaded)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tttd.policy.tiny import build_tiny_model

    if os.environ.get("TTTD_TEST_MODEL"):
        return Path(os.environ["TTTD_TEST_MODEL"])
    cache_plugin = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    if cache_plugin is not None:
        cache = cache_plugin.mkdir("tttd-models")
    else:
        cache = tmp_path_factory.mktemp("tttd-models")
    return build_tiny_model(
        "tiny", cache_dir=cache, pretrain_steps=TEST_PRETRAIN_STEPS, seed=0, progress=False
    )
