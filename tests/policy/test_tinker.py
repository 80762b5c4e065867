"""Tests for the tinker backend.

Offline: request building with the SDK's real types, the KL shift against tttd.losses, the
policy's flow against an in-process stand-in for the service, fail-fast without a key, and a
bounded failure on a dead address. Live (``TINKER_API_KEY`` set): one tiny sample + train step.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest

tinker = pytest.importorskip("tinker")
from tinker import types  # noqa: E402

from tttd.policy import SamplingParams, TrainConfig  # noqa: E402
from tttd.policy import tinker as tp  # noqa: E402
from tttd.types import TrainDatum  # noqa: E402

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    """A small byte-level BPE tokenizer with a chat template, built offline in well under 1 s."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = ["def main():\n    return 42\n", "user assistant system hello world"] * 50
    tok.train_from_iterator(corpus, trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


# ----------------------------------------------------------------------------- pure helpers


def test_render_prompt_uses_chat_template(tokenizer):
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    ids = tp.render_prompt(tokenizer, msgs)
    text = tokenizer.decode(ids)
    assert text == (
        "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    # Special tokens are single ids, not spelled out byte by byte.
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")


def test_render_prompt_rejects_bad_input(tokenizer):
    with pytest.raises(ValueError, match="at least one message"):
        tp.render_prompt(tokenizer, [])
    with pytest.raises(ValueError, match="role"):
        tp.render_prompt(tokenizer, [{"content": "x"}])


def test_build_datum_shifts_tokens_and_pads_prompt_positions():
    d = TrainDatum(
        prompt_tokens=[10, 11, 12],
        tokens=[20, 21],
        logprobs=[-0.5, -1.5],
        advantages=[2.0, 2.0],
    )
    datum = tp.build_datum(d)
    assert isinstance(datum, types.Datum)
    assert datum.model_input.to_ints() == [10, 11, 12, 20]  # all but the last token
    inputs = datum.loss_fn_inputs
    assert set(inputs) == {"target_tokens", "logprobs", "advantages"}
    assert all(isinstance(v, types.TensorData) for v in inputs.values())
    assert inputs["target_tokens"].dtype == "int64"
    assert inputs["target_tokens"].tolist() == [11, 12, 20, 21]  # all but the first
    assert inputs["logprobs"].dtype == "float32"
    np.testing.assert_allclose(inputs["logprobs"].tolist(), [0.0, 0.0, -0.5, -1.5])
    np.testing.assert_allclose(inputs["advantages"].tolist(), [0.0, 0.0, 2.0, 2.0])
    # Override advantages (after the KL shift).
    datum2 = tp.build_datum(d, advantages=[1.0, 3.0])
    np.testing.assert_allclose(datum2.loss_fn_inputs["advantages"].tolist(), [0, 0, 1.0, 3.0])
    # The datum serialises for the wire.
    assert datum2.loss_fn_inputs["target_tokens"].to_numpy().shape == (4,)


@pytest.mark.parametrize(
    "bad, msg",
    [
        (TrainDatum([], [1], [-1.0], [1.0]), "prompt_tokens is empty"),
        (TrainDatum([1], [], [], []), "completion"),
        (TrainDatum([1], [2, 3], [-1.0], [1.0, 1.0]), "equal lengths"),
        (TrainDatum([1], [2], [float("nan")], [1.0]), "non-finite"),
    ],
)
def test_build_datum_rejects_bad_datums(bad, msg):
    with pytest.raises(ValueError, match=msg):
        tp.build_datum(bad)


def test_build_sampling_params(tokenizer):
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tp.stop_token_ids(tokenizer) == [eos]
    sp = tp.build_sampling_params(SamplingParams(max_tokens=17, temperature=0.7), [eos], "<|im_end|>")
    assert isinstance(sp, types.SamplingParams)
    assert (sp.max_tokens, sp.temperature, sp.stop, sp.top_k, sp.top_p) == (17, 0.7, [eos], -1, 1.0)
    sp = tp.build_sampling_params(
        SamplingParams(max_tokens=5, stop=["```\n"], seed=3), [eos], "<|im_end|>"
    )
    assert sp.stop == ["```\n", "<|im_end|>"] and sp.seed == 3
    sp = tp.build_sampling_params(SamplingParams(), [], None, seed=9)
    assert sp.stop is None and sp.seed == 9
    with pytest.raises(ValueError, match="max_tokens"):
        tp.build_sampling_params(SamplingParams(max_tokens=0))
    with pytest.raises(ValueError, match="temperature"):
        tp.build_sampling_params(SamplingParams(temperature=0.0))


def test_adam_params_match_paper():
    p = tp.adam_params(4e-5)
    assert isinstance(p, types.AdamParams)
    assert (p.learning_rate, p.beta1, p.beta2, p.eps, p.weight_decay) == (4e-5, 0.9, 0.95, 1e-8, 0.0)
    with pytest.raises(ValueError, match="learning_rate"):
        tp.adam_params(0.0)


def test_kl_shift_matches_losses_module():
    torch = pytest.importorskip("torch")
    from tttd.losses import kl_advantage_shift

    rng = np.random.default_rng(0)
    lengths = [3, 5, 1]
    adv = [list(rng.normal(size=n)) for n in lengths]
    q = [list(-rng.random(n) * 3) for n in lengths]
    base = [list(-rng.random(n) * 3) for n in lengths]
    shifted, dbar = tp.kl_shift(adv, q, base, 0.1)

    T = max(lengths)
    pad = lambda rows: torch.tensor(  # noqa: E731
        [r + [0.0] * (T - len(r)) for r in rows], dtype=torch.float64
    )
    mask = torch.tensor([[1.0] * n + [0.0] * (T - n) for n in lengths], dtype=torch.float64)
    ref, ref_dbar = kl_advantage_shift(pad(adv), pad(q), pad(base), mask, 0.1)
    assert dbar == pytest.approx(ref_dbar, abs=1e-12)
    for i, n in enumerate(lengths):
        np.testing.assert_allclose(shifted[i], ref[i, :n].numpy(), atol=1e-12)
    # Hand check of the formula on one token.
    d00 = q[0][0] - base[0][0]
    assert shifted[0][0] == pytest.approx(adv[0][0] + 0.1 * (dbar - d00))


def test_ppo_config():
    assert tp._loss_fn(TrainConfig()) == ("importance_sampling", None)
    name, cfg = tp._loss_fn(TrainConfig(clip=0.2))
    assert name == "ppo" and cfg == pytest.approx({"clip_low_threshold": 0.8, "clip_high_threshold": 1.2})
    with pytest.raises(ValueError, match="clip"):
        tp._loss_fn(TrainConfig(clip=1.5))


# ----------------------------------------------------------------------------- connection errors


def test_no_key_fails_fast(monkeypatch, tmp_path):
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    monkeypatch.delenv("TINKER_CREDENTIAL_CMD", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no stored credentials
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="TINKER_API_KEY"):
        tp.TinkerPolicy("Qwen/Qwen3-8B")
    assert time.monotonic() - t0 < 2.0


def test_dead_address_fails_within_timeout(monkeypatch):
    monkeypatch.delenv("TINKER_BASE_URL", raising=False)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=r"127\.0\.0\.1:9"):
        tp.TinkerPolicy(
            "Qwen/Qwen3-8B",
            base_url="http://127.0.0.1:9",
            api_key="tml-not-a-real-key",
            connect_timeout_s=3,
        )
    assert time.monotonic() - t0 < 10.0


# ----------------------------------------------------------------------------- flow, stand-in service


class _Done:
    def __init__(self, value):
        self.value = value

    def result(self, timeout=None):
        return self.value


class FakeSampler:
    """Deterministic 'model': completion = prompt's last two tokens, then EOS."""

    def __init__(self, version, eos, calls):
        self.version, self.eos, self.calls = version, eos, calls

    def sample(self, prompt, num_samples, sampling_params):
        assert isinstance(prompt, types.ModelInput)
        assert isinstance(sampling_params, types.SamplingParams)
        self.calls.append(("sample", self.version, prompt.to_ints(), num_samples, sampling_params))
        ids = prompt.to_ints()
        seqs = []
        for j in range(num_samples):
            toks = [ids[-2], ids[-1], self.eos] if j % 2 == 0 else [ids[-1], ids[-1]]
            seqs.append(
                types.SampledSequence(
                    stop_reason="stop" if j % 2 == 0 else "length",
                    sequence_id=f"s{j}",
                    tokens_np=np.array(toks, dtype=np.int32),
                    logprobs_np=np.array([-0.25 * (k + 1) for k in range(len(toks))], np.float32),
                )
            )
        return _Done(types.SampleResponse(sequences=seqs))

    def compute_logprobs(self, prompt):
        ids = prompt.to_ints()
        self.calls.append(("compute_logprobs", ids))
        return _Done([None] + [-1.0] * (len(ids) - 1))


class FakeTraining:
    def __init__(self, service, state="init"):
        self.service, self.state = service, state
        self.version = 0

    def get_tokenizer(self):
        return self.service.tokenizer

    def save_weights_and_get_sampling_client(self):
        self.version += 1
        return _Done(FakeSampler((self.state, self.version), self.service.eos, self.service.calls))

    def forward_backward(self, data, loss_fn, loss_fn_config=None):
        self.service.calls.append(("forward_backward", data, loss_fn, loss_fn_config))
        outs = [
            {"logprobs": types.TensorData.from_numpy(
                np.full(d.loss_fn_inputs["target_tokens"].shape, -0.5, np.float32))}
            for d in data
        ]
        return _Done(types.ForwardBackwardOutput(
            loss_fn_output_type="ArrayRecord", loss_fn_outputs=outs, metrics={"loss:sum": 1.25}))

    def optim_step(self, params):
        self.service.calls.append(("optim_step", params))
        return _Done(None)

    def save_state(self, name):
        self.service.calls.append(("save_state", name))
        return _Done(types.SaveWeightsResponse(path=f"tinker://run/weights/{name}"))


class FakeService:
    def __init__(self, tokenizer, models=("fake/model",)):
        self.tokenizer = tokenizer
        self.eos = tokenizer.eos_token_id
        self.calls: list = []
        self.models = list(models)

    def create_lora_training_client(self, base_model, rank, seed, **kwargs):
        self.calls.append(("create", base_model, rank, seed))
        self.create_kwargs = kwargs
        return _Done(FakeTraining(self))

    def get_server_capabilities(self):
        self.calls.append(("capabilities",))
        return types.GetServerCapabilitiesResponse(
            supported_models=[types.SupportedModel(model_name=m) for m in self.models])

    def create_sampling_client(self, base_model):
        self.calls.append(("base_sampler", base_model))
        return _Done(FakeSampler("base", self.eos, self.calls))

    def create_training_client_from_state_with_optimizer(self, path):
        self.calls.append(("restore", path))
        return _Done(FakeTraining(self, state=path))

    def close(self, status):
        self.calls.append(("close", status))
        return _Done(None)


def _policy(tokenizer, **kwargs):
    svc = FakeService(tokenizer)
    return tp.TinkerPolicy("fake/model", lora_rank=8, seed=1, service_client=svc, **kwargs), svc


def test_sample_flow(tokenizer):
    pol, svc = _policy(tokenizer)
    assert svc.calls == [("capabilities",)]  # the training client is made on first use
    prompts = [[{"role": "user", "content": "hello"}], [{"role": "user", "content": "world"}]]
    out = pol.sample(prompts, 3, SamplingParams(max_tokens=9))
    assert svc.calls[1] == ("create", "fake/model", 8, 1)
    assert [len(g) for g in out] == [3, 3]
    sample_calls = [c for c in svc.calls if c[0] == "sample"]
    assert len(sample_calls) == 2 and all(c[3] == 3 for c in sample_calls)
    assert sample_calls[0][4].stop == [svc.eos] and sample_calls[0][4].max_tokens == 9
    s0 = out[0][0]
    assert s0.prompt_tokens == tp.render_prompt(tokenizer, prompts[0])
    assert s0.tokens == s0.prompt_tokens[-2:] + [svc.eos]
    assert s0.logprobs == [-0.25, -0.5, -0.75]
    assert s0.stop_reason == "stop" and out[0][1].stop_reason == "length"
    assert s0.text == tokenizer.decode(s0.tokens, skip_special_tokens=True)
    assert "<|im_end|>" not in s0.text
    u = pol.usage()
    assert u.requests == 2
    assert u.prompt_tokens == sum(len(g[0].prompt_tokens) for g in out)
    assert u.sampled_tokens == sum(len(s.tokens) for g in out for s in g)


def test_train_step_flow_with_kl(tokenizer):
    pol, svc = _policy(tokenizer)
    first_sampler = pol._sampler
    batch = [
        TrainDatum([1, 2, 3], [4, 5], [-0.2, -0.4], [1.0, 1.0]),
        TrainDatum([1, 2], [6], [-3.0], [-1.0]),
    ]
    m = pol.train_step(batch, TrainConfig(learning_rate=1e-4, kl_coef=0.1))
    fb = next(c for c in svc.calls if c[0] == "forward_backward")
    _, data, loss_fn, cfg = fb
    assert loss_fn == "importance_sampling" and cfg is None
    # base logprobs are -1 everywhere: d = q + 1 -> [0.8, 0.6, -2.0], dbar = -0.2
    assert m["kl_policy_base"] == pytest.approx(-0.2)
    np.testing.assert_allclose(
        data[0].loss_fn_inputs["advantages"].tolist(),
        [0, 0, 1.0 + 0.1 * (-0.2 - 0.8), 1.0 + 0.1 * (-0.2 - 0.6)], rtol=1e-6)
    np.testing.assert_allclose(
        data[1].loss_fn_inputs["advantages"].tolist(), [0, -1.0 + 0.1 * (-0.2 + 2.0)], rtol=1e-6)
    opt = next(c for c in svc.calls if c[0] == "optim_step")[1]
    assert (opt.learning_rate, opt.beta2, opt.eps) == (1e-4, 0.95, 1e-8)
    assert m["loss"] == 1.25 and m["tokens"] == 3 and m["sequences"] == 2
    # learner logprobs are -0.5 -> v1 = mean(q - (-0.5))
    assert m["kl_sample_train_v1"] == pytest.approx(np.mean([0.3, 0.1, -2.5]))
    assert pol._sampler is not first_sampler  # sampling refreshed after the step
    assert pol.usage().trained_tokens == (3 + 2 - 1) + (2 + 1 - 1)
    # issue 32: the base-model log-probs of the KL term are requests with whole sequences as their
    # prompts (prefill): paid for, 2 of them, plus forward_backward and optim_step
    assert pol.usage().prompt_tokens == (3 + 2) + (2 + 1) and pol.usage().requests == 2 + 2
    # order: forward_backward, then optim_step
    names = [c[0] for c in svc.calls]
    assert names.index("forward_backward") < names.index("optim_step")


def test_train_step_ppo_and_empty(tokenizer):
    pol, svc = _policy(tokenizer)
    m = pol.train_step([], TrainConfig())
    assert m["skipped"] == 1.0 and not any(c[0] == "forward_backward" for c in svc.calls)
    pol.train_step([TrainDatum([1], [2], [-1.0], [0.5])], TrainConfig(clip=0.2))
    fb = next(c for c in svc.calls if c[0] == "forward_backward")
    assert fb[2] == "ppo" and fb[3]["clip_high_threshold"] == pytest.approx(1.2)
    assert not any(c[0] == "base_sampler" for c in svc.calls)  # no KL, no base model


def test_save_load_roundtrip(tokenizer, tmp_path):
    pol, svc = _policy(tokenizer, save_every=1)
    pol.train_step([TrainDatum([1], [2], [-1.0], [0.5])], TrainConfig())
    pol.save(str(tmp_path / "ckpt"))
    state = json.loads((tmp_path / "ckpt" / tp.STATE_FILE).read_text())
    assert state["step"] == 1 and state["tinker_path"].startswith("tinker://run/weights/tttd-step000001")
    assert not [p for p in (tmp_path / "ckpt").iterdir() if p.name.startswith(".tmp")]
    seeds_after_save = [pol._rng.random() for _ in range(3)]

    pol2, svc2 = _policy(tokenizer, save_every=1)
    pol2.load(str(tmp_path / "ckpt"))
    assert ("restore", state["tinker_path"]) in svc2.calls
    assert pol2._step == 1
    assert [pol2._rng.random() for _ in range(3)] == seeds_after_save
    assert pol2._sampler.version[0] == state["tinker_path"]  # sampler on the restored weights
    with pytest.raises(FileNotFoundError):
        pol2.load(str(tmp_path / "nothing"))
    pol2.close()
    assert ("close", "success") in svc2.calls
    with pytest.raises(RuntimeError, match="closed"):
        pol2.sample([[{"role": "user", "content": "x"}]], 1, SamplingParams())


# ----------------------------------------------------------------------------- issue 15


def test_identical_prompts_get_one_seed_per_group(tokenizer):
    pol, svc = _policy(tokenizer)
    same = [[{"role": "user", "content": "hello"}]] * 3
    pol.sample(same, 2, SamplingParams(max_tokens=4, seed=7, seeds=[101, 102, 103]))
    sent = [c[4].seed for c in svc.calls if c[0] == "sample"]
    assert sent == [101, 102, 103]
    svc.calls.clear()
    pol.sample(same, 2, SamplingParams(max_tokens=4, seed=7))  # no seeds: derived, distinct
    derived = [c[4].seed for c in svc.calls if c[0] == "sample"]
    assert len(set(derived)) == 3
    svc.calls.clear()
    pol.sample(same, 2, SamplingParams(max_tokens=4))  # neither: from the policy's RNG, distinct
    assert len({c[4].seed for c in svc.calls if c[0] == "sample"}) == 3
    with pytest.raises(ValueError, match="seeds"):
        pol.sample(same, 2, SamplingParams(seeds=[1, 2]))


def test_max_tokens_is_clamped_to_the_context(tokenizer):
    pol, svc = _policy(tokenizer, context_window=80)
    short = [{"role": "user", "content": "hi"}]
    n_prompt = len(tp.render_prompt(tokenizer, short))
    pol.sample([short], 1, SamplingParams(max_tokens=26000))
    assert [c[4].max_tokens for c in svc.calls if c[0] == "sample"] == [80 - n_prompt - 50]
    assert tp.clamp_max_tokens(26000, 7000, 32768) == 32768 - 7000 - 50
    assert tp.clamp_max_tokens(100, 7000, 32768) == 100
    with pytest.raises(ValueError, match="leaves no room"):
        pol.sample([[{"role": "user", "content": "hello world " * 40}]], 1, SamplingParams(max_tokens=5))


def test_chat_template_options_reach_the_template(tokenizer):
    tokenizer = _copy(tokenizer)
    tokenizer.chat_template = (
        "{% if reasoning_effort %}<|im_start|>system\nReasoning: {{ reasoning_effort }}<|im_end|>\n"
        "{% endif %}" + CHAT_TEMPLATE
    )
    msgs = [{"role": "user", "content": "hi"}]
    assert "Reasoning" not in tokenizer.decode(tp.render_prompt(tokenizer, msgs))
    assert "Reasoning: high" in tokenizer.decode(tp.render_prompt(tokenizer, msgs, {"reasoning_effort": "high"}))
    svc = FakeService(tokenizer)
    pol = tp.TinkerPolicy("fake/model", service_client=svc, chat_template_kwargs={"reasoning_effort": "high"})
    out = pol.sample([msgs], 1, SamplingParams(max_tokens=3))
    assert "Reasoning: high" in tokenizer.decode(out[0][0].prompt_tokens)


def _copy(tokenizer):
    import copy

    return copy.deepcopy(tokenizer)


def test_stops_at_end_of_turn_even_when_eos_differs(tokenizer):
    base_model_tok = _copy(tokenizer)
    base_model_tok.eos_token = "<|endoftext|>"  # a Qwen base model: eos is not the end of turn
    eot = base_model_tok.convert_tokens_to_ids("<|im_end|>")
    eos = base_model_tok.convert_tokens_to_ids("<|endoftext|>")
    assert tp.stop_token_ids(base_model_tok) == [eos, eot]
    sp = tp.build_sampling_params(SamplingParams(stop=["```"]), [eos, eot], ["<|endoftext|>", "<|im_end|>"])
    assert sp.stop == ["```", "<|endoftext|>", "<|im_end|>"]
    svc = FakeService(base_model_tok)
    pol = tp.TinkerPolicy("fake/model", service_client=svc)
    pol.sample([[{"role": "user", "content": "x"}]], 1, SamplingParams(max_tokens=3))
    assert next(c for c in svc.calls if c[0] == "sample")[4].stop == [eos, eot]
    pol.sample([[{"role": "user", "content": "x"}]], 1, SamplingParams(max_tokens=3, stop=["```"]))
    assert [c for c in svc.calls if c[0] == "sample"][-1][4].stop == ["```", "<|endoftext|>", "<|im_end|>"]


def test_train_unembed_is_explicit_with_the_same_default_as_local(tokenizer):
    import inspect

    pol, svc = _policy(tokenizer)
    pol.sample([[{"role": "user", "content": "x"}]], 1, SamplingParams(max_tokens=2))
    assert svc.create_kwargs == {"train_unembed": True}
    pol, svc = _policy(tokenizer, train_unembed=False)
    pol.sample([[{"role": "user", "content": "x"}]], 1, SamplingParams(max_tokens=2))
    assert svc.create_kwargs == {"train_unembed": False}
    local = pytest.importorskip("tttd.policy.local")
    default = inspect.signature(tp.TinkerPolicy).parameters["train_unembed"].default
    assert default is True
    assert inspect.signature(local.LocalPolicy).parameters["train_unembed"].default is default


def test_unknown_model_fails_at_construction(tokenizer):
    svc = FakeService(tokenizer, models=["Qwen/Qwen3-8B"])
    with pytest.raises(ValueError, match="does not serve 'fake/model'"):
        tp.TinkerPolicy("fake/model", service_client=svc)


def test_service_state_is_saved_every_n_steps_and_resume_is_direct(tokenizer, tmp_path):
    from tttd.rundir import POLICY_INCOMPLETE

    pol, svc = _policy(tokenizer, save_every=2, total_steps=3)
    datum = [TrainDatum([1], [2], [-1.0], [0.5])]
    saved = []
    for k in range(3):
        pol.train_step(datum, TrainConfig())
        folder = tmp_path / f"step{k}"
        pol.save(str(folder))
        state = json.loads((folder / tp.STATE_FILE).read_text())
        saved.append((state["complete"], (folder / POLICY_INCOMPLETE).exists(),
                      sum(c[0] == "save_state" for c in svc.calls)))
    # step 0: not due (marked incomplete); step 1: every 2nd; step 2: the last step (total_steps)
    assert saved == [(False, True, 0), (True, False, 1), (True, False, 2)]
    pol2, svc2 = _policy(tokenizer, save_every=2)
    with pytest.raises(ValueError, match="incomplete"):
        pol2.load(str(tmp_path / "step0"))
    pol2.load(str(tmp_path / "step1"))
    names = [c[0] for c in svc2.calls]
    assert "create" not in names and names.count("restore") == 1  # no throwaway client
    assert pol2._step == 2
    pol2.save(str(tmp_path / "again"))  # counting continues: the 3rd save is not due (no total)
    assert json.loads((tmp_path / "again" / tp.STATE_FILE).read_text())["complete"] is False


def test_paper_preset_dry_run_info():
    from tttd.config import resolve_config

    cfg = resolve_config(preset="paper", flag_values={"backend": "tinker", "backend_options": {
        "chat_template_kwargs": {"reasoning_effort": "high"}}})
    info = tp.TinkerPolicy.dry_run_info(cfg.max_tokens, cfg.backend_options, prompt_tokens=7000)
    assert "min(26000, 32768 - prompt - 50)" in info["token budget"]
    assert "prompts up to 6718 tokens get the full 26000" in info["token budget"]
    assert "7000 tokens -> 25718" in info["token budget"]
    assert info["chat template options"] == "reasoning_effort='high'"
    assert "every 5 steps" in info["service checkpoints"]
    plain = tp.TinkerPolicy.dry_run_info(100, {})
    assert plain["chat template options"].startswith("none")
    too_long = tp.TinkerPolicy.dry_run_info(100, {"context_window": 1000}, prompt_tokens=990)
    assert "leaves no room" in too_long["token budget"]


@pytest.mark.slow
def test_render_with_tiny_model_tokenizer(tiny_model_dir):
    """The real path: a Qwen2Tokenizer loaded from a model folder with a ChatML template."""
    from transformers import AutoTokenizer

    model_dir = tiny_model_dir
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    ids = tp.render_prompt(tok, [{"role": "user", "content": "hi there"}])
    assert tok.decode(ids) == "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n"
    assert ids.count(tok.convert_tokens_to_ids("<|im_start|>")) == 2
    assert tp.stop_token_ids(tok) == [tok.convert_tokens_to_ids("<|im_end|>")]
    # The service decodes what we send: re-encoding the decoded text gives the same ids.
    assert tok.encode(tok.decode(ids), add_special_tokens=False) == ids


# ----------------------------------------------------------------------------- live


@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("TINKER_API_KEY"), reason="needs TINKER_API_KEY")
def test_live_sample_and_train(tmp_path):
    model = os.environ.get("TTTD_TINKER_TEST_MODEL", "meta-llama/Llama-3.2-1B")
    pol = tp.TinkerPolicy(model, lora_rank=8, connect_timeout_s=60)
    try:
        msgs = [[{"role": "user", "content": "Say hi."}]]
        out = pol.sample(msgs, 2, SamplingParams(max_tokens=8))
        assert len(out[0]) == 2 and all(len(s.tokens) == len(s.logprobs) > 0 for s in out[0])
        batch = [TrainDatum(s.prompt_tokens, s.tokens, s.logprobs, [1.0] * len(s.tokens))
                 for s in out[0]]
        m = pol.train_step(batch, TrainConfig(learning_rate=1e-5, kl_coef=0.1))
        assert math.isfinite(m["loss"]) and math.isfinite(m["kl_policy_base"])
        pol.save(str(tmp_path))
        assert Path(tmp_path, tp.STATE_FILE).is_file()
    finally:
        pol.close()


def test_async_steps_sample_from_the_previous_sampler_before_training(tokenizer, tmp_path):
    """Issue 35, ``--async-steps 1`` on tinker: step t+1's sampling requests go to the sampling
    client of the weights after step t-1 (the one in hand), before step t's forward_backward;
    every rollout records that version."""
    from tttd.config import resolve_config
    from tttd.loop import Discovery
    from tttd.rundir import read_jsonl
    from tttd.task import Objective, Task
    from tttd.types import Candidate, Evaluation, State

    class LengthTask(Task):  # the stand-in's two completions differ in length: every group trains
        name = "length"
        objective = Objective("maximize", "identity")
        runs_code = False

        def initial_states(self, n, rng):
            return [State(id=f"root{i}", value=None) for i in range(n)]

        def prompt(self, state, parent=None):
            return [{"role": "user", "content": f"hello world {state.id}"}]

        def parse(self, completion, state):
            return Candidate(text=completion, data=completion)

        def verify(self, data, state=None):
            return Evaluation(valid=True, value=float(len(data)), reward=float(len(data)), artifact={"t": data})

    pol, svc = _policy(tokenizer)
    cfg = resolve_config(flag_values=dict(task="demo", backend="tinker", model="fake/model", steps=4, groups=2,
                                          group_size=2, max_tokens=8, async_steps=1, workers=1, seed=1))
    run = Discovery(cfg, tmp_path / "run", task=LengthTask(), policy=pol)
    run.start()
    run.run()
    order = [("sample", c[1][1]) if c[0] == "sample" else ("fb",) for c in svc.calls
             if c[0] in ("sample", "forward_backward")]
    s = lambda v: [("sample", v)] * 2  # noqa: E731 - one request per group
    # sampler 1: the initial weights; sampler v+2: the weights after step v's update
    assert order == s(1) + s(1) + [("fb",)] + s(2) + [("fb",)] + s(3) + [("fb",), ("fb",)]
    versions = {r["step"]: r["policy_version"] for r in read_jsonl(tmp_path / "run" / "rollouts.jsonl")}
    assert versions == {0: -1, 1: -1, 2: 0, 3: 1}
