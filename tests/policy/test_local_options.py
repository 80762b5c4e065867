"""The local trainer's options change what it computes (issue 25): each expected figure is derived
here from the policy's own log-probabilities and the formula (SPEC.md 2.5), never copied from a
run, so a trainer that ignores the option fails.

- clip: the reported loss is the PPO clipped surrogate of the ratios, not the plain sum;
- kl_coef: the reported loss uses the KL-shifted advantages, with base log-probs read with the
  adapter switched off, and ``kl_policy_base`` is their mean difference;
- learning_rate: Adam's first step moves each trained parameter by lr * g / (|g| + eps), so the
  largest move equals the learning rate;
- lora_rank, micro_batch_tokens, max_grad_norm: the adapter's shape, the number of micro-batches,
  the gradient norm the optimizer sees.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from tttd.policy import SamplingParams, TrainConfig  # noqa: E402
from tttd.types import TrainDatum  # noqa: E402

PROMPTS = [
    [{"role": "user", "content": "Write a list of numbers."}],
    [{"role": "user", "content": "Improve the solution: x = [3, 1, 4]"}],
]


def _batch(samples):
    """Advantage +1 for even samples, -1 for odd ones (both signs exercise the clip)."""
    flat = [s for row in samples for s in row]
    return [TrainDatum(s.prompt_tokens, s.tokens, s.logprobs, [1.0 if i % 2 == 0 else -1.0] * len(s.tokens))
            for i, s in enumerate(flat)]


@pytest.fixture
def moved(make_policy):
    """A policy one large step away from the sampler that produced ``batch`` (ratios != 1)."""
    policy = make_policy(seed=0)
    batch = _batch(policy.sample(PROMPTS, 3, SamplingParams(max_tokens=12, seed=4)))
    policy.train_step(batch, TrainConfig(learning_rate=5e-2))
    return policy, batch


def _tokens(batch, now):
    """(current log-prob, sampler log-prob, advantage) of every completion token, in order."""
    return [t for d, lps in zip(batch, now) for t in zip(lps, d.logprobs, d.advantages)]


def test_clip_gives_the_clipped_surrogate(moved):
    policy, batch = moved
    eps = 0.05
    now = policy.logprobs(batch)
    rows = [(math.exp(lp - q), a) for lp, q, a in _tokens(batch, now)]
    assert sum(abs(r - 1) > eps for r, _ in rows) >= 3  # the clip has something to do
    plain = -sum(r * a for r, a in rows)
    clipped = -sum(min(r * a, min(max(r, 1 - eps), 1 + eps) * a) for r, a in rows)
    assert abs(clipped - plain) > 1e-2 * abs(plain)
    got = policy.accumulate_gradients(batch, TrainConfig(clip=eps))
    assert got["loss"] == pytest.approx(clipped, rel=1e-4)
    assert policy.accumulate_gradients(batch, TrainConfig())["loss"] == pytest.approx(plain, rel=1e-4)


def test_kl_coef_shifts_the_advantages_by_the_distance_to_the_base(moved):
    policy, _ = moved
    lam = 0.5
    batch = _batch(policy.sample(PROMPTS, 3, SamplingParams(max_tokens=12, seed=5)))  # from the moved policy
    policy.train_step(batch, TrainConfig(learning_rate=5e-2))  # and one more step: ratios != 1 too
    now = policy.logprobs(batch)
    with policy.model.disable_adapter():
        base = policy.logprobs(batch)
    rows = _tokens(batch, now)
    d = [q - b for (_, q, _), b in zip(rows, (b for bs in base for b in bs))]  # log q - log p_base
    dbar = sum(d) / len(d)
    assert abs(dbar) > 1e-3  # the policy has moved away from the base
    want = -sum(math.exp(lp - q) * (a + lam * (dbar - di)) for (lp, q, a), di in zip(rows, d))
    plain = -sum(math.exp(lp - q) * a for lp, q, a in rows)
    got = policy.accumulate_gradients(batch, TrainConfig(kl_coef=lam))
    assert got["kl_policy_base"] == pytest.approx(dbar, rel=1e-3)
    assert got["loss"] == pytest.approx(want, rel=1e-4)
    assert abs(want - plain) > 1e-3 * abs(plain)
    assert "kl_policy_base" not in policy.accumulate_gradients(batch, TrainConfig(kl_coef=0.0))


@pytest.mark.parametrize("lr", [2e-2, 5e-3])
def test_learning_rate_sets_the_size_of_the_first_step(make_policy, lr):
    policy = make_policy(seed=0)  # constructed without a learning rate: the step's config sets it
    batch = _batch(policy.sample(PROMPTS, 2, SamplingParams(max_tokens=8, seed=1)))
    named = [(n, p) for n, p in policy.model.named_parameters() if p.requires_grad]
    before = [p.detach().clone() for _, p in named]
    policy.train_step(batch, TrainConfig(learning_rate=lr))
    moved = max(float((p.detach() - b).abs().max()) for (_, p), b in zip(named, before))
    assert moved == pytest.approx(lr, rel=1e-3)


def test_lora_rank_sets_the_adapter_shape(make_policy):
    policy = make_policy(lora_rank=3)
    shapes = [(n, tuple(p.shape)) for n, p in policy.model.named_parameters() if "lora_" in n]
    assert shapes
    for name, shape in shapes:
        assert (shape[0] if "lora_A" in name else shape[1]) == 3, (name, shape)


def test_micro_batch_tokens_splits_the_batch(make_policy):
    small, large = make_policy(micro_batch_tokens=1), make_policy(micro_batch_tokens=10**6)
    batch = _batch(small.sample(PROMPTS, 2, SamplingParams(max_tokens=8, seed=2)))
    assert small.accumulate_gradients(batch, TrainConfig())["micro_batches"] == len(batch)
    assert large.accumulate_gradients(batch, TrainConfig())["micro_batches"] == 1


def test_max_grad_norm_caps_the_gradient_the_optimizer_sees(make_policy):
    cap = 1e-3
    policy = make_policy(max_grad_norm=cap)
    batch = _batch(policy.sample(PROMPTS, 2, SamplingParams(max_tokens=8, seed=3)))
    norms = []
    step = policy.optimizer.step

    def spy(*a, **k):
        norms.append(math.sqrt(sum(float((p.grad ** 2).sum()) for p in policy.params if p.grad is not None)))
        return step(*a, **k)

    policy.optimizer.step = spy
    metrics = policy.train_step(batch, TrainConfig(learning_rate=1e-3))
    assert metrics["grad_norm"] > 10 * cap  # the norm before clipping
    assert norms and norms[0] == pytest.approx(cap, rel=1e-3)
