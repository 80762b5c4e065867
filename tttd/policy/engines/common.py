"""What every sampling engine of the local backend shares, and what it needs from its policy.

Engines depend on this module and on :mod:`tttd.policy.model_io` only, never on
:mod:`tttd.policy.local` (which composes an engine) nor on the engine package's ``__init__``
(which picks and builds one), so the import graph has no circle.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from tttd.policy import SamplingParams, sub_seed
from tttd.types import Message, Sample

# One seed rule for every engine and backend (tttd.policy): prompt i's seed, and sample j's
# seed ``derive(seed of its prompt, j)``.
derive = sub_seed


def quiet_vllm() -> None:
    """Before vllm is first imported: its log goes to stderr (it defaults to stdout, which would
    break ``--json``'s last line) at WARNING level (its INFO lines would drown tttd's progress).
    Both stay overridable through the environment."""
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


class EngineHost(Protocol):
    """What an engine uses of the policy it samples for (:class:`tttd.policy.local.LocalPolicy`):
    the trainer's model and tokenizer, the seed counters, and the token-side helpers of
    :mod:`tttd.policy.model_io` bound to that tokenizer."""

    model: Any  # the trainer's (peft) model
    tokenizer: Any
    eos_ids: list[int]
    model_path: str
    device: Any  # torch.device
    dtype: Any  # torch.dtype
    seed: int
    sample_calls: int  # checkpointed: the fallback seed of the next call
    step: int  # optimizer steps taken (the adapter version)
    lora_rank: int
    full_finetune: bool
    max_batch_size: int | None

    def causal_lm(self) -> Any:
        """The transformers model under the adapter (its ``config`` has the shapes)."""
        ...

    def context_window(self) -> int | None:
        ...

    def render(self, messages: list[Message]) -> list[int]:
        ...

    def finish(self, prompt: list[int], new: list[int], logprobs: list[float],
               params: SamplingParams) -> Sample:
        ...

    def force_answers(self, groups: list[list[Sample]], seeds: list[int], sample_more) -> list[list[Sample]]:
        ...

    def count_sampling(self, prompt_tokens: int, sampled_tokens: int) -> None:
        """Add one sampling request's tokens to the policy's usage (the spend ledger)."""
        ...
