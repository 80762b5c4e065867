"""The ``hf`` sampling engine: ``transformers.generate`` in the trainer's own model.

Exactness: the model's own generation defaults (Qwen ships top_k=20, top_p=0.8,
repetition_penalty...) are switched off, ``top_k=0``, ``top_p=1``, and the only logits processor
is ours (:class:`tttd.policy.local_sampling.LogprobRecorder`), which divides by the temperature and
records the log-softmax of what is sampled from. So ``Sample.logprobs`` are the sampler's
log-probabilities of the *tempered* distribution (at temperature 1, the policy's). All
``prompts x n`` completions are sampled in as few, as large, left-padded batches as memory allows
(per-token Python overhead dominates, so throughput grows with batch size); only one
``(batch, vocab)`` score tensor is held at a time. Rows are cut by
:func:`tttd.policy.model_io.finish_sample`, as the vllm engine cuts them. Nothing to publish after a
step (the trainer's weights *are* the sampler's) and nothing to free before one.

Seeds: prompt i samples from its own seed (``SamplingParams.seeds[i]``, else derived from
``params.seed``, else from the policy seed and its checkpointed call counter), and sample j of it
from its own generator seeded ``sub_seed(seed_i, j)`` (``LogprobRecorder`` draws each row's token),
so a group depends neither on the batch it shares nor on the batch size.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from tttd.policy import SamplingParams, check_sampling, prompt_seeds, sub_seed
from tttd.policy.engines.common import EngineHost
from tttd.policy.local_sampling import LogprobRecorder
from tttd.types import Message, Sample


class HFEngine:
    name = "hf"
    #: left-pad the prompts of a sample call to at least this many tokens: a data-parallel rank
    #: pads its share to the width of the whole step's batch, so its rows are computed exactly
    #: as in one process (tttd.policy.distributed)
    min_width = 0

    def __init__(self, policy: EngineHost) -> None:
        self.policy = policy

    @torch.no_grad()
    def sample(self, prompts: list[list[Message]], n: int, params: SamplingParams) -> list[list[Sample]]:
        policy = self.policy
        check_sampling(n, params)
        encoded = [policy.render(p) for p in prompts]
        # sample j of prompt i draws from its own generator, seeded sub_seed(seeds[i], j)
        seeds = prompt_seeds(params, len(prompts), policy.seed * 1_000_003 + policy.sample_calls)
        policy.sample_calls += 1
        out = self.generate(encoded, n, params, seeds, min_width=self.min_width)
        if params.forced_answer:
            out = policy.force_answers(out, seeds, self._continue(params))
        return out

    def _continue(self, params: SamplingParams):
        """Phase 2 of the forced final answer: each request continues in the context left
        (requests of one length share a ``generate`` call, which needs one budget)."""
        context = self.policy.context_window()

        def more(requests: list[list[int]], seeds: list[int]) -> list[Sample | None]:
            out: list[Sample | None] = [None] * len(requests)
            by_len: dict[int, list[int]] = {}
            for k, req in enumerate(requests):
                by_len.setdefault(len(req), []).append(k)
            for length, ks in by_len.items():
                room = params.max_tokens if context is None else context - length
                if room < 1:
                    continue
                got = self.generate([requests[k] for k in ks], 1, replace(params, max_tokens=room),
                                    [seeds[k] for k in ks])
                for k, row in zip(ks, got):
                    out[k] = row[0]
            return out

        return more

    def batch_size(self, seq_len: int) -> int:
        """Sequences per ``generate`` call: ``max_batch_size``, else 256 on a CPU, else what 60% of
        the free GPU memory holds (KV cache plus the score tensors of one step)."""
        policy = self.policy
        if policy.max_batch_size is not None:
            return policy.max_batch_size
        if policy.device.type != "cuda":
            return 256
        cfg = policy.causal_lm().config
        cfg = getattr(cfg, "text_config", cfg)
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        elt = torch.finfo(policy.dtype).bits // 8
        per_seq = 2 * cfg.num_hidden_layers * kv_heads * head_dim * elt * seq_len
        per_seq += 4 * cfg.vocab_size * 4  # score tensors (logits, processed, log-softmax, probs)
        free, _ = torch.cuda.mem_get_info(policy.device)
        return int(max(1, min(1024, 0.6 * free // per_seq)))

    @torch.no_grad()
    def generate(self, encoded: list[list[int]], n: int, params: SamplingParams,
                 seeds: list[int], min_width: int = 0) -> list[list[Sample]]:
        """``n`` samples for each token-id prompt; sample j of prompt i draws from
        ``sub_seed(seeds[i], j)``; prompts left-padded to at least ``min_width`` tokens."""
        from transformers import GenerationConfig

        policy = self.policy
        jobs = [(i, j) for i in range(len(encoded)) for j in range(n)]
        base_seed = seeds[0] if seeds else 0
        out: list[list[Sample | None]] = [[None] * n for _ in encoded]
        # Like the paper's dynamic max_tokens: never ask for more than the context window holds.
        prompt_len = max(max((len(e) for e in encoded), default=0), min_width)
        context = policy.context_window()
        max_new = params.max_tokens if context is None else min(params.max_tokens, context - prompt_len)
        if max_new < 1:
            raise ValueError(f"a prompt of {prompt_len} tokens leaves no room in the model's "
                             f"{context}-token context")
        longest = prompt_len + max_new
        bsz = self.batch_size(longest)
        pad_id = policy.tokenizer.pad_token_id
        gen_config = GenerationConfig(
            do_sample=True, temperature=1.0, top_k=0, top_p=1.0, min_p=None, typical_p=1.0,
            repetition_penalty=1.0, no_repeat_ngram_size=0, num_beams=1,
            max_new_tokens=max_new, min_new_tokens=0,
            eos_token_id=policy.eos_ids, pad_token_id=pad_id, bos_token_id=None,
            stop_strings=list(params.stop) or None,
            return_dict_in_generate=True, output_scores=False, output_logits=False,
        )
        model = policy.model
        device = policy.device
        saved_defaults = model.generation_config
        was_training = model.training
        model.eval()
        try:
            # the model's own generation defaults (top_k, penalties...) must not leak in
            model.generation_config = GenerationConfig(eos_token_id=policy.eos_ids, pad_token_id=pad_id)
            for b, start in enumerate(range(0, len(jobs), bsz)):
                chunk = jobs[start : start + bsz]
                seqs = [encoded[i] for i, _ in chunk]
                width = max(max(len(s) for s in seqs), min_width)
                ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(seqs), width), dtype=torch.long)
                for r, s in enumerate(seqs):
                    ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
                    mask[r, width - len(s) :] = 1
                recorder = LogprobRecorder(params.temperature, [sub_seed(seeds[i], j) for i, j in chunk])
                devices = [device] if device.type == "cuda" else []
                with torch.random.fork_rng(devices=devices, device_type=device.type):
                    torch.manual_seed(base_seed * 7919 + b)
                    result = model.generate(
                        input_ids=ids.to(device),
                        attention_mask=mask.to(device),
                        generation_config=gen_config,
                        logits_processor=[recorder],
                        tokenizer=policy.tokenizer if params.stop else None,
                    )
                new = result.sequences[:, width:].cpu()
                logprobs = recorder.finish(new[:, -1] if new.shape[1] else new[:, :0].sum(1))
                for r, (i, j) in enumerate(chunk):
                    out[i][j] = policy.finish(seqs[r], new[r].tolist(), logprobs[r].tolist(), params)
        finally:
            model.generation_config = saved_defaults
            model.train(was_training)
        policy.count_sampling(sum(len(encoded[i]) for i, _ in jobs),
                              sum(len(s.tokens) for row in out for s in row))  # type: ignore[union-attr]
        return out  # type: ignore[return-value]

    def before_train(self) -> None:
        pass

    def weights_updated(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        import transformers

        return {"engine": "hf", "versions": {"torch": torch.__version__,
                                             "transformers": transformers.__version__}}

    def close(self) -> None:
        self.policy = None  # type: ignore[assignment]
