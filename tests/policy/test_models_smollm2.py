"""The real pretrained model (issue 33): SmolLM2-135M-Instruct as `tttd models install smollm2`
installs it (CI installs it in .ci/run; here it is installed when missing, never skipped).

One run through the CLI is killed with SIGKILL while it trains and resumed; it must end with the
same adapter, archive, metrics and rollouts as an uninterrupted run. Together with the sampling
checks this exercises the real-architecture path on every change: the GGUF-converted folder, its
own tokenizer and chat template, padding with pad = eos, LoRA on the Llama projections.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from tttd.rundir import read_jsonl  # noqa: E402

TIMING = ("seconds", "spend")


@pytest.fixture(scope="module")
def smollm2():
    from tttd.policy import models

    if not models.installed("smollm2"):  # CI installs it beforehand (.ci/run)
        models.install("smollm2", say=print)
    return models.model_dir("smollm2")


def tttd(*args, env_extra=None, timeout=600):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "tttd.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def run_args(out):
    # the demo task: its digits may sit anywhere in the chatty answer, so the real model's groups have
    # distinct rewards and both steps train (tests/digit_fraction_task.py gave it all-zero groups)
    return ["run", "demo", "--model", "smollm2", "--steps", "2", "--groups", "2", "--group-size", "4",
            "--max-tokens", "24", "--lr", "1e-3", "--seed", "3", "--out", str(out), "--quiet",
            "--backend-option", "lora_rank=4"]


def strip(row):
    return {k: v for k, v in row.items() if not k.startswith(TIMING)}


def adapter_tensors(run: Path) -> dict:
    from safetensors.torch import load_file

    found = sorted(run.glob("checkpoint/**/*.safetensors"))
    assert found, f"no adapter weights under {run}/checkpoint"
    return {f.relative_to(run).as_posix(): load_file(str(f)) for f in found}


@pytest.mark.slow
def test_loads_samples_and_agrees_with_the_trainer(smollm2):
    """Its own chat template and eos, LoRA on the Llama projections, padded batches that give each
    prompt the same samples as alone, and sampler log-probs the trainer reproduces."""
    import torch

    from tttd.policy import SamplingParams, TrainConfig
    from tttd.policy.local import LocalPolicy
    from tttd.types import TrainDatum

    policy = LocalPolicy("smollm2", lora_rank=4, device="cpu", seed=0)
    try:
        assert policy.model_path == str(smollm2)
        short = [{"role": "user", "content": "Write 8 digits."}]
        long = [{"role": "user", "content": "Write a step function as a string of digits 0-9, then stop. "
                                            "Answer with digits only."}]
        text = policy.tokenizer.decode(policy.render(short))
        assert text.startswith("<|im_start|>system") and text.endswith("<|im_start|>assistant\n")
        assert policy.tokenizer.convert_ids_to_tokens(policy.eos_ids) == ["<|im_end|>"]
        lora = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in policy.model.named_parameters() if "lora_A" in n}
        assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"} <= lora
        params = SamplingParams(max_tokens=10, seeds=[11, 12])
        both = policy.sample([short, long], 2, params)
        alone = policy.sample([long], 2, SamplingParams(max_tokens=10, seeds=[12]))
        assert [s.tokens for s in both[1]] == [s.tokens for s in alone[0]]  # left padding changes nothing
        assert any(s.text.strip() for g in both for s in g)  # real text from a real model
        batch = [TrainDatum(s.prompt_tokens, s.tokens, s.logprobs, [1.0] * len(s.tokens)) for g in both for s in g]
        again = policy.logprobs(batch)
        for d, lp in zip(batch, again):
            assert torch.allclose(torch.tensor(lp), torch.tensor(d.logprobs), atol=2e-3)
        metrics = policy.train_step(batch, TrainConfig(learning_rate=1e-3))
        assert metrics["tokens"] == sum(len(d.tokens) for d in batch) and metrics["grad_norm"] > 0
        after = policy.logprobs(batch)
        assert after != again  # the step changed the policy
    finally:
        policy.close()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # three short runs of a 135M model: ~12 min on 2 cores at load ~16
def test_kill_during_training_then_resume_equals_uninterrupted(smollm2, tmp_path):
    ref = tmp_path / "ref"
    done = tttd(*run_args(ref), "--json")
    assert done.returncode == 0, done.stderr
    rows = list(read_jsonl(ref / "metrics.jsonl"))
    assert len(rows) == 2 and all(r["trained"] for r in rows), "every step must train for this test to mean anything"
    out = tmp_path / "run"
    killed = tttd(*run_args(out), env_extra={"TTTD_FAULT": "train:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = tttd("resume", str(out), "--json", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert [strip(r) for r in read_jsonl(out / "metrics.jsonl")] == [strip(r) for r in rows]
    assert json.loads((out / "archive.json").read_text()) == json.loads((ref / "archive.json").read_text())
    assert list(read_jsonl(out / "rollouts.jsonl")) == list(read_jsonl(ref / "rollouts.jsonl"))
    got, want = adapter_tensors(out), adapter_tensors(ref)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].keys() == want[name].keys()
        for key in want[name]:
            assert (got[name][key] == want[name][key]).all(), f"{name}:{key} differs"
