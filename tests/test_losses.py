"""Tests for tttd.losses: importance-sampling loss (plain and clipped) and the KL advantage shift."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from tttd.losses import importance_sampling_loss, kl_advantage_shift  # noqa: E402


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_is_loss_hand_values():
    # ratios exp(logp - q): [[e^0.5, 1, e^-1], [e^0.2, 1, 1]]; last token of row 1 masked
    logp = t([[0.0, -1.0, -2.0], [-0.3, -0.7, 0.0]])
    q = t([[-0.5, -1.0, -1.0], [-0.5, -0.7, -5.0]])
    adv = t([[2.0, 2.0, 2.0], [-1.0, -1.0, -1.0]])
    mask = t([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    loss = importance_sampling_loss(logp, q, adv, mask)
    expected = -(2 * (math.exp(0.5) + 1 + math.exp(-1)) - (math.exp(0.2) + 1))
    assert float(loss) == pytest.approx(expected, rel=1e-12)
    # token-summed, not averaged: duplicating the batch doubles the loss
    loss2 = importance_sampling_loss(
        torch.cat([logp, logp]), torch.cat([q, q]), torch.cat([adv, adv]), torch.cat([mask, mask])
    )
    assert float(loss2) == pytest.approx(2 * expected, rel=1e-12)


def test_is_loss_clipped_hand_values():
    # ratios: e^0.5 = 1.6487 (A > 0: clipped to 1.2), e^-1 = 0.3679 (A > 0: unclipped min),
    # e^0.2 = 1.2214 (A < 0: min(-1.2214, -1.2) = -1.2214, unclipped), e^-0.5 (A < 0: -0.8 wins)
    logp = t([[0.0, -2.0, -0.3, -1.0]])
    q = t([[-0.5, -1.0, -0.5, -0.5]])
    adv = t([[1.0, 1.0, -1.0, -1.0]])
    mask = t([[1.0, 1.0, 1.0, 1.0]])
    loss = importance_sampling_loss(logp, q, adv, mask, clip=0.2)
    expected = -(1.2 + math.exp(-1) - math.exp(0.2) - 0.8)
    assert float(loss) == pytest.approx(expected, rel=1e-12)
    # without clip the same batch gives the plain sum
    plain = importance_sampling_loss(logp, q, adv, mask)
    assert float(plain) == pytest.approx(
        -(math.exp(0.5) + math.exp(-1) - math.exp(0.2) - math.exp(-0.5)), rel=1e-12
    )


def test_is_loss_gradient_at_ratio_one():
    # at logp == sampler logp the gradient w.r.t. logp is -A * mask (REINFORCE)
    q = t([[-0.3, -1.2, -0.1], [-2.0, -0.4, -0.9]])
    logp = q.clone().requires_grad_(True)
    adv = t([[0.5, 0.5, 0.5], [-1.5, -1.5, -1.5]])
    mask = t([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    importance_sampling_loss(logp, q, adv, mask).backward()
    torch.testing.assert_close(logp.grad, -adv * mask)
    # no gradient flows to the sampler logprobs or the advantages
    q2 = q.clone().requires_grad_(True)
    adv2 = adv.clone().requires_grad_(True)
    logp2 = q.clone().requires_grad_(True)
    importance_sampling_loss(logp2, q2, adv2, mask).backward()
    assert q2.grad is None and adv2.grad is None


def test_is_loss_gradient_away_from_ratio_one():
    # d/dlogp [-ratio * A] = -ratio * A
    q = t([[-1.0, -1.0]])
    logp = t([[-0.5, -2.0]]).requires_grad_(True)
    adv = t([[1.0, 3.0]])
    mask = t([[1.0, 1.0]])
    importance_sampling_loss(logp, q, adv, mask).backward()
    torch.testing.assert_close(logp.grad, t([[-math.exp(0.5), -3 * math.exp(-1.0)]]))


def test_kl_advantage_shift_hand_values():
    # d = q - base on unmasked tokens: [0.2, -0.4 | 0.5, (masked)]; dbar = 0.3 / 3 = 0.1
    adv = t([[1.0, 1.0], [-1.0, -1.0]])
    q = t([[-1.0, -2.0], [-0.5, -3.0]])
    base = t([[-1.2, -1.6], [-1.0, -0.1]])
    mask = t([[1.0, 1.0], [1.0, 0.0]])
    shifted, dbar = kl_advantage_shift(adv, q, base, mask, coef=0.1)
    assert dbar == pytest.approx(0.1, rel=1e-12)
    expected = t([[1.0 + 0.1 * (0.1 - 0.2), 1.0 + 0.1 * (0.1 + 0.4)],
                  [-1.0 + 0.1 * (0.1 - 0.5), -1.0]])
    torch.testing.assert_close(shifted, expected)
    # coef 0 leaves advantages unchanged; the shift has zero mean over unmasked tokens
    same, _ = kl_advantage_shift(adv, q, base, mask, coef=0.0)
    torch.testing.assert_close(same, adv)
    assert float(((shifted - adv) * mask).sum()) == pytest.approx(0.0, abs=1e-12)


def test_kl_advantage_shift_all_masked():
    adv = t([[1.0, 2.0]])
    shifted, dbar = kl_advantage_shift(adv, t([[0.0, 0.0]]), t([[1.0, 1.0]]), t([[0.0, 0.0]]), 0.1)
    assert dbar == 0.0
    torch.testing.assert_close(shifted, adv)
