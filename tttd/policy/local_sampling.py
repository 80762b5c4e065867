"""Sampling helper of the local backend's hf engine: exact per-token log-probs (stop strings:
:func:`tttd.policy.model_io.first_stop`)."""

from __future__ import annotations

import math
from typing import Sequence

import torch


class LogprobRecorder:
    """A logits processor that applies the temperature and records sampled tokens' log-probs.

    At step t it receives ``input_ids`` that end with the token sampled at step t-1, so it gathers
    that token's log-prob from the log-softmax it kept from step t-1 (one (batch, vocab) tensor).

    With ``row_seeds`` (one per batch row) it also draws each row's token itself, by inverse-CDF
    sampling with one uniform per row and step from that row's own generator, and returns scores
    that allow only that token: each row's samples then depend on its seed alone, not on the
    batch it shares or the batch size (per-prompt seeds, SamplingParams.seeds). The draw is exact
    up to the float32 rounding of the cumulative sum.
    """

    def __init__(self, temperature: float, row_seeds: Sequence[int] | None = None) -> None:
        self.temperature = temperature
        self.prev: torch.Tensor | None = None
        self.logprobs: list[torch.Tensor] = []
        self.generators = None
        if row_seeds is not None:
            self.generators = [torch.Generator().manual_seed(int(s)) for s in row_seeds]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        from tttd.progress import ACTIVITY

        ACTIVITY.add_tokens(scores.shape[0])  # the progress heartbeat (issue 36)
        if self.prev is not None:
            self.logprobs.append(self.prev.gather(1, input_ids[:, -1:]).squeeze(1).float().cpu())
        if self.temperature != 1.0:
            scores = scores / self.temperature
        self.prev = torch.log_softmax(scores.float(), dim=-1)
        if self.generators is None:
            return scores
        u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in self.generators])
        cdf = self.prev.exp().cumsum(dim=-1)
        u = (u.to(cdf.device, torch.float32)[:, None] * cdf[:, -1:]).contiguous()
        idx = torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.shape[1] - 1)
        only = torch.full_like(scores, -math.inf)
        return only.scatter_(1, idx, 0.0)

    def finish(self, last_tokens: torch.Tensor) -> torch.Tensor:
        """(batch, steps) log-probs, after the final sampled tokens are known."""
        if self.prev is not None:
            self.logprobs.append(self.prev.gather(1, last_tokens[:, None]).squeeze(1).float().cpu())
            self.prev = None
        return torch.stack(self.logprobs, dim=1) if self.logprobs else torch.zeros(len(last_tokens), 0)

