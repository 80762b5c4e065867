"""Policy-gradient losses over token tensors (torch imported lazily by the caller's module).

All functions are pure: they take per-token tensors of shape (batch, time) with a float ``mask``
(1 on sampled completion tokens, 0 on prompt and padding) and return scalars or tensors.

- :func:`importance_sampling_loss`: Tinker's ``importance_sampling`` loss, summed over tokens
  (no length normalisation, as the paper's code via Tinker; SPEC.md 2.5):
  ``-sum_t exp(logp_t - logq_t) * A_t``. With ``clip`` set, the PPO clipped surrogate instead.
- :func:`kl_advantage_shift` (torch or numpy): the paper's KL-to-base penalty, applied as an advantage shift
  ``A_t <- A_t + lam * mask_t * (mean(d) - d_t)`` with ``d_t = logq_t - logp_base_t`` and the mean
  over all unmasked tokens of the batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch


def importance_sampling_loss(
    logp: "torch.Tensor",
    sampler_logp: "torch.Tensor",
    advantages: "torch.Tensor",
    mask: "torch.Tensor",
    clip: float | None = None,
) -> "torch.Tensor":
    """Token-summed importance-sampling policy-gradient loss (a scalar to minimise).

    ``logp``: current policy log-probs (requires grad); ``sampler_logp``: log-probs recorded at
    sampling time; ``advantages``: per-token advantages; ``mask``: 1 on tokens that carry loss.
    ``clip``: None for plain importance sampling (the paper's setting), else the PPO epsilon:
    ``-sum min(ratio * A, clamp(ratio, 1-eps, 1+eps) * A)``.
    """
    import torch

    ratio = torch.exp(logp - sampler_logp.detach())
    adv = advantages.detach()
    surrogate = ratio * adv
    if clip is not None:
        clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * adv
        surrogate = torch.minimum(surrogate, clipped)
    return -(surrogate * mask).sum()


def kl_advantage_shift(advantages, sampler_logp, base_logp, mask, coef: float):
    """Shift per-token advantages by the KL-to-base penalty; returns (new advantages, mean d).

    ``d_t = logq_t - logp_base_t`` (zero where masked); ``dbar`` = mean of d over unmasked tokens;
    ``A_t + coef * mask_t * (dbar - d_t)``. The returned ``dbar`` is the logged ``kl_policy_base``.
    Works on torch tensors (local backend) and numpy arrays (tinker backend) alike.
    """
    d = (sampler_logp - base_logp) * mask
    count = float(mask.sum())
    dbar = float(d.sum()) / count if count > 0 else 0.0
    shifted = advantages + coef * mask * (dbar - d)
    return shifted, dbar
