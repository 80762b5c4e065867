"""The trainer's view of a batch: checks that a batch can be trained, and its split into
micro-batches by padded size (the local backend and its data-parallel ranks use the same split,
which is what makes a rank's shard one of the micro-batches a single process accumulates)."""

from __future__ import annotations

from typing import Sequence

from tttd.types import TrainDatum


def check_batch(batch: Sequence[TrainDatum]) -> None:
    if not batch:
        raise ValueError("train_step got an empty batch (skip the step instead)")
    for k, d in enumerate(batch):
        if not d.prompt_tokens:
            raise ValueError(f"datum {k}: empty prompt_tokens")
        if not d.tokens:
            raise ValueError(f"datum {k}: no completion tokens")
        if not len(d.tokens) == len(d.logprobs) == len(d.advantages):
            raise ValueError(
                f"datum {k}: tokens ({len(d.tokens)}), logprobs ({len(d.logprobs)}) and "
                f"advantages ({len(d.advantages)}) must have the same length"
            )
        if d.mask is not None and len(d.mask) != len(d.tokens):
            raise ValueError(f"datum {k}: mask ({len(d.mask)}) and tokens ({len(d.tokens)}) differ in length")


def micro_batches(batch: Sequence[TrainDatum], budget: int) -> list[list[int]]:
    """Consecutive index chunks whose padded size (rows x longest) stays within ``budget``."""
    chunks: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    for k, d in enumerate(batch):
        length = len(d.prompt_tokens) + len(d.tokens)
        if cur and max(longest, length) * (len(cur) + 1) > budget:
            chunks.append(cur)
            cur, longest = [], 0
        cur.append(k)
        longest = max(longest, length)
    if cur:
        chunks.append(cur)
    return chunks
