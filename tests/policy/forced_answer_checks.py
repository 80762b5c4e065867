"""Checks of the forced final answer on a local policy (hf or vllm engine), shared by
``test_forced_answer.py`` (hf) and ``test_vllm_engine.py`` (vllm).

The tiny model's tokenizer gets a chat template with Harmony-style analysis/final channels (plain
text markers: its vocabulary has no such special tokens, the answer format is read from the
template). The context is shrunk so that phase 2 has a known, small room."""

from __future__ import annotations

from typing import Callable

from tttd.policy import SamplingParams, TrainConfig
from tttd.policy.forced_answer import HARMONY, OUT_OF_THINKING
from tttd.types import TrainDatum

_TURNS = "{% for m in messages %}<|start|>{{ m['role'] }}<|message|>{{ m['content'] }}<|end|>{% endfor %}"
#: the generation prompt opens the analysis (thinking) channel, as gpt-oss does
ANALYSIS_TEMPLATE = _TURNS + "{% if add_generation_prompt %}<|start|>assistant<|channel|>analysis<|message|>{% endif %}"
#: the generation prompt opens the final channel: a sample out of budget just continues
FINAL_TEMPLATE = _TURNS + "{% if add_generation_prompt %}<|start|>assistant<|channel|>final<|message|>{% endif %}"
PROMPT = [{"role": "user", "content": "Write a list of numbers."}]


def check_forced_answer(policy, set_context: Callable[[int], None], budget: int = 4,
                        answer_room: int = 16, n: int = 6) -> dict:
    """Run the checks; returns counts for the caller to report."""
    tok = policy.tokenizer
    saved = tok.chat_template
    try:
        tok.chat_template = ANALYSIS_TEMPLATE
        ids = policy.render(PROMPT)
        added = list(tok(OUT_OF_THINKING + HARMONY.close + HARMONY.header, add_special_tokens=False)["input_ids"])
        set_context(len(ids) + budget + len(added) + answer_room)
        plain = policy.sample([PROMPT], n, SamplingParams(max_tokens=budget, seeds=[3]))[0]
        forced = policy.sample([PROMPT], n, SamplingParams(max_tokens=budget, seeds=[3], forced_answer=True))[0]
        continued = 0
        for a, b in zip(plain, forced):
            assert b.tokens[: len(a.tokens)] == a.tokens, "phase 1 must be the plain sample (same seed)"
            if a.stop_reason == "stop":
                assert b.tokens == a.tokens and b.mask is None
                continue
            continued += 1
            n1, k = len(a.tokens), len(added)
            assert n1 == budget
            assert b.tokens[n1 : n1 + k] == added
            n2 = len(b.tokens) - n1 - k
            assert 1 <= n2 <= answer_room
            assert b.mask == [1.0] * n1 + [0.0] * k + [1.0] * n2
            assert b.logprobs[:n1] == a.logprobs and b.logprobs[n1 : n1 + k] == [0.0] * k
            assert OUT_OF_THINKING in b.text and "<|channel|>final<|message|>" in b.text
            # phase 2 was sampled from the policy conditioned on the whole sequence
            lp = policy.logprobs([TrainDatum(b.prompt_tokens, b.tokens, b.logprobs, [0.0] * len(b.tokens))])[0]
            assert max(abs(x - y) for x, y, m in zip(b.logprobs, lp, b.mask) if m) < 1e-3
        assert continued >= 1, "no sample ran out of its budget"

        # the appended tokens carry no loss: with zero advantage on every sampled token (and no
        # KL), the gradient is exactly zero although those tokens have sampler log-prob 0
        batch = [TrainDatum.from_sample(s, 0.0) for s in forced]
        metrics = policy.accumulate_gradients(batch, TrainConfig(learning_rate=1e-3))
        assert metrics["loss"] == 0.0
        assert all(p.grad is None or float(p.grad.abs().max()) == 0.0 for p in policy.params)
        batch = [TrainDatum.from_sample(s, 1.0) for s in forced]
        assert all(d.advantages[i] == 0.0 for d in batch if d.mask for i, m in enumerate(d.mask) if not m)
        step = policy.train_step(batch, TrainConfig(learning_rate=1e-3, kl_coef=0.1))
        assert step["tokens"] == sum(sum(d.mask_or_ones()) for d in batch)

        # already in the final channel: just continue, nothing appended
        tok.chat_template = FINAL_TEMPLATE
        ids = policy.render(PROMPT)
        set_context(len(ids) + budget + answer_room)
        final = policy.sample([PROMPT], n, SamplingParams(max_tokens=budget, seeds=[3], forced_answer=True))[0]
        went_on = [s for s in final if s.mask is not None]
        assert went_on, "no sample ran out of its budget"
        for s in went_on:
            assert all(m == 1.0 for m in s.mask) and budget < len(s.tokens) <= budget + answer_room
            assert OUT_OF_THINKING not in s.text
        return {"continued": continued, "continued_in_final": len(went_on)}
    finally:
        tok.chat_template = saved
