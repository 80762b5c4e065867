"""Tests of the local transformers + peft policy on the tiny model (CPU)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from tttd.policy import Policy, SamplingParams, TrainConfig  # noqa: E402
from tttd.policy.local import LocalPolicy  # noqa: E402
from tttd.policy.tiny import IM_END, chat_text  # noqa: E402
from tttd.types import TrainDatum  # noqa: E402

PROMPTS = [
    [{"role": "user", "content": "Write a list of numbers."}],
    [
        {"role": "system", "content": "Return the value of the named attribute."},
        {"role": "user", "content": "Improve the solution: x = [3, 1, 4]"},
    ],
]


@pytest.fixture(scope="module")
def shared(tiny_model_dir):
    """A policy that tests only sample from (never train)."""
    policy = LocalPolicy(tiny_model_dir, device="cpu", lora_rank=8)
    yield policy
    policy.close()


def datums(samples, advantage=1.0):
    return [
        TrainDatum(s.prompt_tokens, s.tokens, s.logprobs, [advantage] * len(s.tokens))
        for row in samples
        for s in row
    ]


def test_implements_the_protocol(shared):
    assert isinstance(shared, Policy)
    assert shared.trainable


def test_prompts_are_rendered_with_the_chat_template(shared):
    out = shared.sample(PROMPTS, 2, SamplingParams(max_tokens=8, seed=0))
    assert [len(row) for row in out] == [2, 2]
    for prompt, row in zip(PROMPTS, out):
        expected = shared.tokenizer(chat_text(prompt, add_generation_prompt=True),
                                    add_special_tokens=False)["input_ids"]
        assert all(s.prompt_tokens == expected for s in row)


def test_sampler_logprobs_match_the_trainer(shared):
    out = shared.sample(PROMPTS, 4, SamplingParams(max_tokens=24, seed=1))
    batch = datums(out)
    recomputed = shared.logprobs(batch)
    for d, lp in zip(batch, recomputed):
        assert len(d.logprobs) == len(d.tokens) == len(lp)
        assert all(x <= 0 for x in d.logprobs)
        assert max(abs(a - b) for a, b in zip(d.logprobs, lp)) < 1e-3


def test_temperature_logprobs_are_of_the_tempered_distribution(shared):
    temp = 0.7
    out = shared.sample(PROMPTS[:1], 2, SamplingParams(max_tokens=12, temperature=temp, seed=2))
    lm = shared._causal_lm()
    for s in out[0]:
        ids = torch.tensor([s.prompt_tokens + s.tokens])
        with torch.no_grad():
            logits = lm(input_ids=ids).logits[0].float()
        p = len(s.prompt_tokens)
        lp = torch.log_softmax(logits[p - 1 : p - 1 + len(s.tokens)] / temp, dim=-1)
        expected = lp.gather(1, torch.tensor(s.tokens)[:, None]).squeeze(1)
        assert torch.allclose(torch.tensor(s.logprobs), expected, atol=1e-3)


def test_max_tokens_is_honoured(shared):
    out = shared.sample(PROMPTS, 3, SamplingParams(max_tokens=5, seed=3))
    for row in out:
        for s in row:
            assert 1 <= len(s.tokens) <= 5
            assert (s.stop_reason == "length") == (len(s.tokens) == 5 and s.tokens[-1] not in shared.eos_ids)


def test_stop_strings_cut_the_completion(shared):
    stop = "e"
    out = shared.sample(PROMPTS, 6, SamplingParams(max_tokens=40, stop=[stop], seed=4))
    cut = 0
    decode = lambda ids: shared.tokenizer.decode(ids, skip_special_tokens=False)  # noqa: E731
    for row in out:
        for s in row:
            assert stop not in s.text
            assert len(s.logprobs) == len(s.tokens)
            full = decode(s.tokens)
            if stop in full:  # the last token completed the stop string, nothing after it
                cut += 1
                assert s.stop_reason == "stop"
                assert stop not in decode(s.tokens[:-1])
                assert full.startswith(s.text)
    assert cut > 0, "the tiny model never produced the letter 'e' in 12 samples"


def test_eos_token_is_kept_and_the_rest_dropped(shared):
    eos = shared.tokenizer.convert_tokens_to_ids(IM_END)
    assert eos in shared.eos_ids
    a, b, c = shared.tokenizer("x = 1", add_special_tokens=False)["input_ids"][:3]
    sample = shared._finish([7], [a, b, eos, c, c], [-0.1, -0.2, -0.3, -0.4, -0.5], SamplingParams())
    assert sample.tokens == [a, b, eos]
    assert sample.logprobs == [-0.1, -0.2, -0.3]
    assert sample.stop_reason == "stop"
    assert sample.text == shared.tokenizer.decode([a, b])
    sample = shared._finish([7], [a, b], [-0.1, -0.2], SamplingParams(max_tokens=2))
    assert sample.stop_reason == "length" and sample.tokens == [a, b]


def test_sampling_is_seeded(make_policy):
    first, second = make_policy(seed=5), make_policy(seed=5)
    tokens = lambda out: [s.tokens for row in out for s in row]  # noqa: E731
    # without params.seed: successive calls differ, and a fresh policy repeats the sequence
    unseeded = SamplingParams(max_tokens=16)
    run_a = [tokens(first.sample(PROMPTS, 2, unseeded)) for _ in range(2)]
    run_b = [tokens(second.sample(PROMPTS, 2, unseeded)) for _ in range(2)]
    assert run_a == run_b and run_a[0] != run_a[1]
    # with params.seed: the same tokens every time, whatever the call counter
    params = SamplingParams(max_tokens=16, seed=11)
    assert tokens(first.sample(PROMPTS, 2, params)) == tokens(first.sample(PROMPTS, 2, params))
    other = tokens(first.sample(PROMPTS, 2, SamplingParams(max_tokens=16, seed=12)))
    assert other != tokens(first.sample(PROMPTS, 2, params))


@pytest.mark.parametrize("full", [False, True])
def test_advantage_sign_moves_logprob(make_policy, full):
    kwargs = {"full_finetune": True} if full else {}
    lr = 3e-3 if full else 1e-2
    for sign in (1.0, -1.0):
        policy = make_policy(seed=0, **kwargs)
        out = policy.sample(PROMPTS[:1], 1, SamplingParams(max_tokens=12, seed=6))
        batch = datums(out, advantage=sign)
        before = sum(policy.logprobs(batch)[0])
        metrics = policy.train_step(batch, TrainConfig(learning_rate=lr))
        after = sum(policy.logprobs(batch)[0])
        assert math.isfinite(metrics["loss"]) and metrics["grad_norm"] > 0
        assert (after - before) * sign > 0.05, (sign, before, after)


def test_lora_updates_only_the_adapter(make_policy):
    policy = make_policy()
    before = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    out = policy.sample(PROMPTS, 2, SamplingParams(max_tokens=10, seed=7))
    policy.train_step(datums(out), TrainConfig(learning_rate=1e-2))
    changed = {n for n, p in policy.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_" in n for n in changed)
    assert any("lora_B" in n for n in changed)
    trainable = {n for n, p in policy.model.named_parameters() if p.requires_grad}
    assert all("lora_" in n for n in trainable)


def test_full_finetune_updates_base_weights(make_policy):
    policy = make_policy(full_finetune=True)
    emb = policy.model.get_input_embeddings().weight.detach().clone()
    out = policy.sample(PROMPTS, 2, SamplingParams(max_tokens=10, seed=7))
    metrics = policy.train_step(datums(out), TrainConfig(learning_rate=1e-3, kl_coef=0.1))
    assert not torch.equal(emb, policy.model.get_input_embeddings().weight)
    assert abs(metrics["kl_policy_base"]) < 1e-4  # the reference copy equals the start weights


def test_micro_batching_gives_the_same_gradient(make_policy):
    whole = make_policy(seed=1, micro_batch_tokens=100_000)
    split = make_policy(seed=1, micro_batch_tokens=1)  # one sequence per micro-batch
    out = whole.sample(PROMPTS, 3, SamplingParams(max_tokens=20, seed=8))
    batch = datums(out, advantage=0.5)
    batch[1].advantages = [-1.0] * len(batch[1].advantages)
    cfg = TrainConfig(learning_rate=1e-3)
    m_whole = whole.accumulate_gradients(batch, cfg)
    m_split = split.accumulate_gradients(batch, cfg)
    assert m_whole["micro_batches"] == 1 and m_split["micro_batches"] == len(batch)
    assert m_whole["loss"] == pytest.approx(m_split["loss"], rel=1e-5)
    named = [(n, p) for n, p in whole.model.named_parameters() if p.requires_grad]
    assert len(named) == len(split.params)
    for (name, a), b in zip(named, split.params):
        assert torch.allclose(a.grad, b.grad, atol=1e-5, rtol=1e-4), name


def test_kl_option_reports_zero_at_init_then_grows(make_policy):
    policy = make_policy()
    out = policy.sample(PROMPTS, 2, SamplingParams(max_tokens=16, seed=9))
    batch = datums(out)
    cfg = TrainConfig(learning_rate=2e-2, kl_coef=0.1)
    first = policy.train_step(batch, cfg)
    assert abs(first["kl_policy_base"]) < 1e-5
    assert abs(first["kl_sample_train"]) < 1e-3
    # samples from the updated policy now differ from the base (d = logq - logp_base != 0)
    fresh = datums(policy.sample(PROMPTS, 2, SamplingParams(max_tokens=16, seed=9)))
    second = policy.train_step(fresh, cfg)
    assert abs(second["kl_policy_base"]) > 1e-4


def test_clip_option_runs(make_policy):
    policy = make_policy()
    out = policy.sample(PROMPTS[:1], 2, SamplingParams(max_tokens=8, seed=10))
    metrics = policy.train_step(datums(out), TrainConfig(learning_rate=1e-3, clip=0.2))
    assert math.isfinite(metrics["loss"])


def test_save_load_continue_equals_not_stopping(make_policy, tmp_path):
    cfg = TrainConfig(learning_rate=5e-3)
    params = SamplingParams(max_tokens=12)  # unseeded: the policy's call counter matters
    original = make_policy(seed=3)
    original.train_step(datums(original.sample(PROMPTS, 2, params)), cfg)
    original.save(tmp_path / "ckpt")
    original.save(tmp_path / "ckpt")  # overwriting an existing checkpoint works
    # continue without stopping
    out_a = original.sample(PROMPTS, 2, params)
    m_a = original.train_step(datums(out_a), cfg)
    # continue from the checkpoint in a fresh policy
    resumed = make_policy(seed=3)
    resumed.load(tmp_path / "ckpt")
    out_b = resumed.sample(PROMPTS, 2, params)
    m_b = resumed.train_step(datums(out_b), cfg)
    assert [s.tokens for r in out_a for s in r] == [s.tokens for r in out_b for s in r]
    assert m_a["loss"] == pytest.approx(m_b["loss"], rel=1e-6, abs=1e-6)
    for a, b in zip(original.params, resumed.params):
        assert torch.allclose(a, b, atol=1e-7)
    assert resumed.step == original.step == 2
    assert resumed.usage() == original.usage()


def test_save_load_full_finetune(make_policy, tmp_path):
    cfg = TrainConfig(learning_rate=1e-3)
    a = make_policy(full_finetune=True)
    a.train_step(datums(a.sample(PROMPTS[:1], 2, SamplingParams(max_tokens=8, seed=1))), cfg)
    a.save(tmp_path / "full")
    b = make_policy(full_finetune=True)
    b.load(tmp_path / "full")
    for x, y in zip(a.params, b.params):
        assert torch.equal(x, y)
    with pytest.raises(ValueError, match="full_finetune"):
        make_policy().load(tmp_path / "full")


def test_full_finetune_kl_reference_is_the_initial_weights_after_a_resume(make_policy, tmp_path):
    """Issue 32: with full fine-tuning and a KL term, a resumed policy measures its distance to
    the initial weights, as an uninterrupted one (it used to copy the trained weights it had just
    loaded: KL 0 after every resume)."""
    cfg = TrainConfig(learning_rate=2e-2, kl_coef=0.1)
    params = SamplingParams(max_tokens=12, seed=5)
    a = make_policy(full_finetune=True)
    a.train_step(datums(a.sample(PROMPTS, 2, params)), cfg)
    a.save(tmp_path / "full")
    batch = datums(a.sample(PROMPTS, 2, params))
    b = make_policy(full_finetune=True)
    b.load(tmp_path / "full")
    m_a, m_b = a.train_step(batch, cfg), b.train_step(batch, cfg)
    assert abs(m_a["kl_policy_base"]) > 1e-4  # the trained weights moved away from the initial ones
    assert m_b["kl_policy_base"] == pytest.approx(m_a["kl_policy_base"], rel=1e-5, abs=1e-7)
    assert m_b["loss"] == pytest.approx(m_a["loss"], rel=1e-5, abs=1e-7)
    for x, y in zip(a.params, b.params):
        assert torch.allclose(x, y, atol=1e-6)


def test_usage_counts_tokens(make_policy):
    policy = make_policy()
    out = policy.sample(PROMPTS, 2, SamplingParams(max_tokens=6, seed=1))
    usage = policy.usage()
    assert usage.requests == 1
    assert usage.prompt_tokens == sum(len(s.prompt_tokens) for r in out for s in r)
    assert usage.sampled_tokens == sum(len(s.tokens) for r in out for s in r)
    batch = datums(out)
    policy.train_step(batch, TrainConfig())
    assert policy.usage().trained_tokens == sum(len(d.prompt_tokens) + len(d.tokens) for d in batch)


def test_bad_input_is_rejected(shared, tmp_path):
    with pytest.raises(ValueError, match="empty batch"):
        shared.train_step([], TrainConfig())
    with pytest.raises(ValueError, match="same length"):
        shared.train_step([TrainDatum([1, 2], [3, 4], [-1.0], [1.0, 1.0])], TrainConfig())
    with pytest.raises(ValueError, match="n must be"):
        shared.sample(PROMPTS, 0, SamplingParams())
    with pytest.raises(ValueError, match="temperature"):
        shared.sample(PROMPTS, 1, SamplingParams(temperature=0))
    missing = tmp_path / "no-such-model"
    with pytest.raises(ValueError, match="no-such-model"):
        LocalPolicy(str(missing))
    with pytest.raises(ValueError, match="not a LocalPolicy checkpoint"):
        shared.load(tmp_path)


# ------------------------------------------------------------------------------------ issue 15


def test_per_prompt_seeds_make_groups_independent_of_the_batch(make_policy):
    """Each prompt samples from its own seed: identical prompts with different seeds give
    different groups, and a prompt's group does not depend on what else is in the batch or on
    the batch size."""
    policy = make_policy(seed=2)
    tokens = lambda row: [s.tokens for s in row]  # noqa: E731
    p = PROMPTS[0]
    twice = policy.sample([p, p], 3, SamplingParams(max_tokens=12, seeds=[21, 22]))
    assert tokens(twice[0]) != tokens(twice[1])
    alone = policy.sample([p], 3, SamplingParams(max_tokens=12, seeds=[22]))
    assert tokens(alone[0]) == tokens(twice[1])
    policy.max_batch_size = 1
    mixed = policy.sample([PROMPTS[1], p], 3, SamplingParams(max_tokens=12, seeds=[5, 21]))
    assert tokens(mixed[1]) == tokens(twice[0])
    # the recorded log-probs are still the sampler's (the trainer agrees)
    batch = datums(twice)
    for got, want in zip(policy.logprobs(batch), batch):
        assert got == pytest.approx(want.logprobs, abs=1e-4)


def test_chat_template_kwargs_reach_the_template(make_policy):
    policy = make_policy()
    policy.tokenizer.chat_template = (
        "{% if reasoning_effort %}Reasoning: {{ reasoning_effort }}\n{% endif %}" + policy.tokenizer.chat_template)
    policy.chat_template_kwargs = {"reasoning_effort": "high"}
    assert policy.tokenizer.decode(policy.render(PROMPTS[0])).startswith("Reasoning: high\n")
    with pytest.raises(ValueError, match="chat_template_kwargs"):
        make_policy(chat_template_kwargs="high")


def test_train_unembed_puts_a_lora_on_the_output_layer(make_policy):
    on, off = make_policy(), make_policy(train_unembed=False)
    assert on.train_unembed is True  # default, as Tinker's
    assert any("lm_head" in n and "lora_" in n for n, _ in on.model.named_parameters())
    assert not any("lm_head" in n and "lora_" in n for n, _ in off.model.named_parameters())
    out = on.sample(PROMPTS, 2, SamplingParams(max_tokens=8, seed=3))
    on.train_step(datums(out), TrainConfig(learning_rate=1e-2))
    head_b = next(p for n, p in on.model.named_parameters() if "lm_head" in n and "lora_B" in n)
    assert head_b.abs().sum() > 0


def test_gradient_checkpointing_same_gradient_less_saved_memory(make_policy):
    """Checkpointing on: identical gradients, far fewer bytes saved for backward (measured with
    saved-tensor hooks); the model is back in eval mode after the step."""
    plain, ckpt = make_policy(seed=1), make_policy(seed=1, gradient_checkpointing=True)
    assert plain.gradient_checkpointing is False  # CPU default
    out = plain.sample(PROMPTS, 2, SamplingParams(max_tokens=24, seed=8))
    batch = datums(out, advantage=0.5)

    def saved_bytes(policy):
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            policy.accumulate_gradients(batch, TrainConfig())
        return total

    b_plain, b_ckpt = saved_bytes(plain), saved_bytes(ckpt)
    assert b_ckpt < 0.6 * b_plain, (b_plain, b_ckpt)
    for a, b in zip(plain.params, ckpt.params):
        assert torch.allclose(a.grad, b.grad, atol=1e-6, rtol=1e-5)
    assert not ckpt.model.training and not plain.model.training
    assert all(m.p == 0 for m in ckpt.model.modules() if isinstance(m, torch.nn.Dropout))
