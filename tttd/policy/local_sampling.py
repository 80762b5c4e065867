"""Sampling helpers of the local backend: exact per-token log-probs and stop strings."""

from __future__ import annotations

from typing import Sequence

import torch


class LogprobRecorder:
    """A logits processor that applies the temperature and records sampled tokens' log-probs.

    At step t it receives ``input_ids`` that end with the token sampled at step t-1, so it gathers
    that token's log-prob from the log-softmax it kept from step t-1 (one (batch, vocab) tensor).
    """

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature
        self.prev: torch.Tensor | None = None
        self.logprobs: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.prev is not None:
            self.logprobs.append(self.prev.gather(1, input_ids[:, -1:]).squeeze(1).float().cpu())
        if self.temperature != 1.0:
            scores = scores / self.temperature
        self.prev = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def finish(self, last_tokens: torch.Tensor) -> torch.Tensor:
        """(batch, steps) log-probs, after the final sampled tokens are known."""
        if self.prev is not None:
            self.logprobs.append(self.prev.gather(1, last_tokens[:, None]).squeeze(1).float().cpu())
            self.prev = None
        return torch.stack(self.logprobs, dim=1) if self.logprobs else torch.zeros(len(last_tokens), 0)


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    hits = [text.find(s) for s in stops if s]
    hits = [h for h in hits if h >= 0]
    return min(hits) if hits else None
