"""Shared fixtures of the policy tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def make_policy(tiny_model_dir):
    """LocalPolicy on the tiny test model (LoRA rank 8 unless given), closed after the test."""
    pytest.importorskip("peft")
    from tttd.policy.local import LocalPolicy

    made = []

    def make(**kwargs):
        kwargs.setdefault("lora_rank", 8)
        policy = LocalPolicy(tiny_model_dir, device="cpu", **kwargs)
        made.append(policy)
        return policy

    yield make
    for policy in made:
        policy.close()
