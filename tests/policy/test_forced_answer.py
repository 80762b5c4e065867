"""The forced final answer (tttd.policy.forced_answer): the pure planning and joining, the tinker
request path with a stand-in sampler, and the hf engine with the tiny model and a chat template
with analysis/final channels (the vllm engine: test_vllm_engine.py; a live Tinker-compatible
server: test_tinker_skyrl.py)."""

from __future__ import annotations

import pytest

from tttd.policy import SamplingParams, sub_seed
from tttd.policy.forced_answer import (HARMONY, OUT_OF_THINKING, PHASE2_SALT, THINK, continue_samples, describe,
                                       detect, join)
from tttd.types import Sample, TrainDatum

from tests.policy.forced_answer_checks import ANALYSIS_TEMPLATE, FINAL_TEMPLATE


def test_detect_and_describe():
    assert detect(ANALYSIS_TEMPLATE) is HARMONY and detect(FINAL_TEMPLATE) is HARMONY
    assert detect("{{ x }}<think>\n</think>") is THINK
    assert detect("{% for m in messages %}{{ m['content'] }}{% endfor %}") is None and detect(None) is None
    assert "no effect" in describe(None) and "harmony" in describe(ANALYSIS_TEMPLATE)


def test_suffix_as_the_authors_sampler():
    head = "<|start|>assistant<|channel|>final<|message|>"
    # thinking, not at a channel end: close the analysis, then the final header
    assert HARMONY.suffix("...<|channel|>analysis<|message|>", "let me think") == OUT_OF_THINKING + "<|end|>" + head
    # the analysis just ended: no second <|end|>
    assert HARMONY.suffix("p", "thought.<|end|>") == OUT_OF_THINKING + head
    # already in the final channel (in the completion, or opened by the prompt): continue
    assert HARMONY.suffix("p", "a<|end|><|start|>assistant<|channel|>final<|message|>def f") == ""
    assert HARMONY.suffix("x<|start|>assistant<|channel|>final<|message|>", "def f") == ""
    assert THINK.suffix("<|im_start|>assistant\n", "<think>hmm") == OUT_OF_THINKING + "\n</think>\n\n"
    assert THINK.suffix("<|im_start|>assistant\n<think>\n\n</think>\n\n", "code") == ""


def _smp(tokens, reason="length", prompt=(1, 2)):
    return Sample(list(prompt), list(tokens), [-0.5] * len(tokens), "t" * len(tokens), reason)  # type: ignore[arg-type]


def test_continue_samples_masks_the_appended_tokens_and_seeds_phase_two():
    groups = [[_smp([10, 11]), _smp([12], "stop")], [_smp([13, 14])]]
    seen = {}

    def more(requests, seeds):
        seen["requests"], seen["seeds"] = requests, seeds
        return [_smp([20, 21], "stop", prompt=r) for r in requests[:-1]] + [None]  # last: no room

    out = continue_samples(groups, [7, 9], HARMONY, encode=lambda t: [99, 98], decode=lambda ids: "thinking",
                           text_of=lambda ids: "<A>", sample_more=more)
    assert seen["requests"] == [[1, 2, 10, 11, 99, 98], [1, 2, 13, 14, 99, 98]]
    assert seen["seeds"] == [sub_seed(7, 0, PHASE2_SALT), sub_seed(9, 0, PHASE2_SALT)]
    a = out[0][0]
    assert a.tokens == [10, 11, 99, 98, 20, 21] and a.mask == [1, 1, 0, 0, 1, 1]
    assert a.logprobs == [-0.5, -0.5, 0.0, 0.0, -0.5, -0.5] and a.text == "tt<A>tt" and a.stop_reason == "stop"
    assert out[0][1] is groups[0][1] and out[1][0] is groups[1][0]  # stopped / no room: unchanged
    d = TrainDatum.from_sample(a, 2.0)
    assert d.advantages == [2.0, 2.0, 0.0, 0.0, 2.0, 2.0] and d.mask == [1, 1, 0, 0, 1, 1]
    assert continue_samples(groups, [7, 9], None, lambda t: [], lambda i: "", lambda i: "", more) is groups
    twice = join(a, [5], "x", _smp([6], "stop"))  # masks compose
    assert twice.mask == [1, 1, 0, 0, 1, 1, 0, 1]


def test_masked_tokens_get_no_kl_shift_on_the_tinker_path():
    from tttd.policy.tinker_requests import kl_shift

    adv, dbar = kl_shift([[1.0, 0.0, 1.0]], [[-1.0, 0.0, -3.0]], [[-2.0, -9.0, -2.0]], 0.5,
                         masks=[[1.0, 0.0, 1.0]])
    assert dbar == pytest.approx(0.0)  # d = (1, -, -1): the masked token stays out of the mean
    assert adv[0][1] == 0.0 and adv[0][0] == pytest.approx(1.0 - 0.5) and adv[0][2] == pytest.approx(1.5)


class _Tok:
    """A character tokenizer with a Harmony template (for the tinker stand-in)."""

    chat_template = ANALYSIS_TEMPLATE
    eos_token_id = 0

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True, **kw):
        return "".join(f"<|start|>{m['role']}<|message|>{m['content']}<|end|>" for m in messages) + \
            "<|start|>assistant<|channel|>analysis<|message|>"

    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i) for i in ids)

    def get_vocab(self):
        return {}

    def convert_ids_to_tokens(self, ids):
        return [chr(i) for i in ids]


class _Seq:
    def __init__(self, tokens, reason):
        self.tokens, self.logprobs, self.stop_reason = tokens, [-1.0] * len(tokens), reason


class _Sampler:
    """Phase 1 thinks until the budget ends; phase 2 answers 'ok' and stops."""

    def __init__(self):
        self.calls = []

    def sample(self, prompt, num_samples, sampling_params):
        ids = prompt.to_ints()
        self.calls.append((len(ids), sampling_params.max_tokens, sampling_params.seed))

        class R:
            pass

        r = R()
        if OUT_OF_THINKING in "".join(chr(i) for i in ids):
            r.sequences = [_Seq([ord("o"), ord("k")], "stop") for _ in range(num_samples)]
        else:
            r.sequences = [_Seq([ord("z")] * sampling_params.max_tokens, "length") for _ in range(num_samples)]
        return r


def test_tinker_backend_continues_with_a_second_request():
    pytest.importorskip("tinker")
    from tttd.policy.tinker import TinkerPolicy

    pol = TinkerPolicy.__new__(TinkerPolicy)  # no service: the sampler is a stand-in
    sampler = _Sampler()
    pol.__dict__.update(_closed=False, _tokenizer=_Tok(), chat_template_kwargs={}, context_window=400,
                        request_timeout_s=5, request_retries=0, retry_backoff_s=0.0, base_url=None,
                        _sampler=sampler, _rng=__import__("random").Random(0))
    from tttd.policy import TokenUsage

    pol._usage = TokenUsage()
    prompt = [{"role": "user", "content": "hi"}]
    [[plain]] = pol.sample([prompt], 1, SamplingParams(max_tokens=5, seeds=[4]))
    [[forced]] = pol.sample([prompt], 1, SamplingParams(max_tokens=5, seeds=[4], forced_answer=True))
    assert plain.tokens == [ord("z")] * 5 and plain.mask is None
    added = [ord(c) for c in OUT_OF_THINKING + HARMONY.close + HARMONY.header]
    assert forced.tokens == plain.tokens + added + [ord("o"), ord("k")]
    assert forced.mask == [1.0] * 5 + [0.0] * len(added) + [1.0, 1.0]
    assert forced.logprobs[5:5 + len(added)] == [0.0] * len(added) and forced.stop_reason == "stop"
    n_prompt = len(plain.prompt_tokens)
    # phase 2: the continuation prompt, the room left (context - prompt - 50), its own seed
    assert sampler.calls[-1] == (n_prompt + 5 + len(added), 400 - (n_prompt + 5 + len(added)) - 50,
                                 sub_seed(4, 0, PHASE2_SALT))


# ------------------------------------------------------------------------------- hf engine

@pytest.mark.slow
def test_hf_engine_forced_answer_with_analysis_and_final_channels(tiny_model_dir):
    pytest.importorskip("torch")
    from tests.policy.forced_answer_checks import check_forced_answer
    from tttd.policy.local import LocalPolicy

    policy = LocalPolicy(tiny_model_dir, device="cpu", lora_rank=8)
    cfg = policy._causal_lm().config
    real = cfg.max_position_embeddings
    try:
        counts = check_forced_answer(policy, lambda n: setattr(cfg, "max_position_embeddings", n))
        assert counts["continued"] >= 1
    finally:
        cfg.max_position_embeddings = real
        policy.close()
