"""The ``hf`` sampling engine: ``transformers.generate`` in the trainer's own model.

It wraps :meth:`tttd.policy.local.LocalPolicy._sample_hf` (see that module's docstring for the
exactness argument: neutral generation config, our logits processor records the tempered
log-softmax of each sampled token). Nothing to publish after a step (the trainer's weights *are*
the sampler's) and nothing to free before one.

Seeds: batched ``generate`` draws from one random stream per batch, so with ``SamplingParams.seeds``
the call's streams are seeded from all the prompts' seeds together. Results are a deterministic
function of those seeds, but a prompt's samples also depend on the other prompts of the call (the
vllm engine seeds each prompt's request on its own).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tttd.policy import SamplingParams
from tttd.types import Message, Sample

if TYPE_CHECKING:  # pragma: no cover
    from tttd.policy.local import LocalPolicy


class HFEngine:
    name = "hf"

    def __init__(self, policy: "LocalPolicy") -> None:
        self.policy = policy

    def sample(self, prompts: list[list[Message]], n: int, params: SamplingParams) -> list[list[Sample]]:
        return self.policy._sample_hf(prompts, n, params)

    def before_train(self) -> None:
        pass

    def weights_updated(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        import torch
        import transformers

        return {"engine": "hf", "versions": {"torch": torch.__version__,
                                             "transformers": transformers.__version__}}

    def close(self) -> None:
        self.policy = None  # type: ignore[assignment]
