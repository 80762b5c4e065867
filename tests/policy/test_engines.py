"""Engine choice, per-prompt seeds, the hf engine, and the engine's CLI/config plumbing (no vllm)."""

from __future__ import annotations

import pytest

from tttd.config import ConfigError, resolve_config
from tttd.policy import SamplingParams
from tttd.policy import engines
from tttd.policy.engines import choose_engine, prompt_seeds


def test_engine_choice(monkeypatch):
    monkeypatch.setattr(engines, "vllm_installed", lambda: False)
    assert choose_engine("hf", full_finetune=False, model_path="m") == ("hf", "requested")
    name, reason = choose_engine("auto", full_finetune=False, model_path="m")
    assert name == "hf" and "not installed" in reason
    with pytest.raises(ValueError, match="engine vllm unavailable: vllm is not installed"):
        choose_engine("vllm", full_finetune=False, model_path="m")
    monkeypatch.setattr(engines, "vllm_installed", lambda: True)
    monkeypatch.setattr(engines, "_vllm_supports", lambda arch: arch == "Qwen2ForCausalLM")
    assert choose_engine("auto", full_finetune=False, model_path="hub/name")[0] == "vllm"
    name, reason = choose_engine("auto", full_finetune=False, model_path="hub/name", device="cpu")
    assert name == "hf" and "CPU" in reason
    assert choose_engine("vllm", full_finetune=False, model_path="m", device="cpu")[0] == "vllm"
    name, reason = choose_engine("auto", full_finetune=True, model_path="m")
    assert name == "hf" and "full fine-tuning keeps the hf engine" in reason
    with pytest.raises(ValueError, match="full fine-tuning keeps the hf engine"):
        choose_engine("vllm", full_finetune=True, model_path="m")
    with pytest.raises(ValueError, match="unknown engine"):
        choose_engine("sglang", full_finetune=False, model_path="m")


def test_unsupported_architecture_falls_back(monkeypatch, tmp_path):
    (tmp_path / "config.json").write_text('{"architectures": ["MysteryForCausalLM"]}')
    monkeypatch.setattr(engines, "vllm_installed", lambda: True)
    monkeypatch.setattr(engines, "_vllm_supports", lambda arch: False)
    name, reason = choose_engine("auto", full_finetune=False, model_path=str(tmp_path))
    assert name == "hf" and "MysteryForCausalLM" in reason


def test_prompt_seeds():
    assert prompt_seeds(SamplingParams(seeds=[4, 4, 9]), 3, fallback=0) == [4, 4, 9]
    with pytest.raises(ValueError, match="2 seeds for 3 prompts"):
        prompt_seeds(SamplingParams(seeds=[1, 2]), 3, fallback=0)
    derived = prompt_seeds(SamplingParams(seed=7), 5, fallback=0)
    assert len(set(derived)) == 5 and derived == prompt_seeds(SamplingParams(seed=7), 5, fallback=1)
    assert prompt_seeds(SamplingParams(), 2, fallback=3) == prompt_seeds(SamplingParams(seed=3), 2, 0)


def test_engine_config_and_flags():
    assert resolve_config().engine == "auto"
    assert resolve_config(flag_values={"engine": "hf"}).engine == "hf"
    with pytest.raises(ConfigError, match="engine must be auto, hf or vllm"):
        resolve_config(flag_values={"engine": "sglang"})
    with pytest.raises(ConfigError, match="local backend only"):
        resolve_config(flag_values={"backend": "api", "engine": "vllm"})


def test_kl_warning_in_the_progress_line():
    from tttd.cli.common import KL_WARN, kl_warning

    assert kl_warning(None) == "" and kl_warning(1e-6) == "" and kl_warning(-KL_WARN / 2) == ""
    assert "WARNING sampler-trainer KL 0.05" in kl_warning(0.05)
    assert "WARNING" in kl_warning(-0.05)


def test_hf_engine_records_itself_and_honours_seeds(tiny_model_dir):
    pytest.importorskip("peft")
    from tttd.policy.local import LocalPolicy

    policy = LocalPolicy(tiny_model_dir, device="cpu", lora_rank=8, engine="hf")
    try:
        info = policy.engine_info()
        assert info["engine"] == "hf" and info["reason"] == "requested" and info["versions"]["torch"]
        prompts = [[{"role": "user", "content": "Write a list of numbers."}]] * 2
        a = policy.sample(prompts, 2, SamplingParams(max_tokens=8, seeds=[1, 2]))
        b = policy.sample(prompts, 2, SamplingParams(max_tokens=8, seeds=[1, 2]))
        c = policy.sample(prompts, 2, SamplingParams(max_tokens=8, seeds=[1, 3]))
        tokens = lambda out: [[s.tokens for s in row] for row in out]  # noqa: E731
        assert tokens(a) == tokens(b) and tokens(a) != tokens(c)
    finally:
        policy.close()


def test_cli_refuses_vllm_when_missing_in_one_line(monkeypatch, capsys, tmp_path, tiny_model_dir):
    pytest.importorskip("peft")
    monkeypatch.setattr(engines, "vllm_installed", lambda: False)
    from tttd.cli import main

    rc = main(["run", "demo", "--engine", "vllm", "--model", str(tiny_model_dir), "--steps", "1",
               "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "engine vllm unavailable" in err[0]
    assert not (tmp_path / "r").exists()


def test_tensor_parallel_size_fits_the_heads():
    from tttd.policy.engines.vllm import _tensor_parallel

    assert _tensor_parallel(14, 2, count=8) == 2  # Qwen2-0.5B: 7 divides 14 but not the 2 KV heads
    assert _tensor_parallel(32, 8, count=8) == 8  # Qwen3-8B
    assert _tensor_parallel(32, 8, count=6) == 4
    assert _tensor_parallel(4, 2, count=0) == 1


def test_reaper_kills_the_orphans_of_a_killed_parent(tmp_path):
    """The parent is SIGKILLed and left a zombie (never waited for) while its orphan holds the
    pipe the test reads: the watchdog must still notice and kill the orphan."""
    import subprocess

    import psutil  # a dependency of tttd[local] (the reaper's)
    import sys
    import time

    (tmp_path / "adapter").mkdir()
    code = (
        "import os, signal, subprocess, sys\n"
        "from tttd.policy.engines import reaper\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"reaper.watch({{child.pid}}, ({str(tmp_path / 'adapter')!r},))\n"
        "print(child.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    deadline = time.monotonic() + 20
    while psutil.pid_exists(child) and time.monotonic() < deadline:
        try:
            if psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.Error:
            break
        time.sleep(0.2)
    alive = psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE
    parent.wait()
    assert not alive
    deadline = time.monotonic() + 5
    while (tmp_path / "adapter").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (tmp_path / "adapter").exists()  # the adapter folder goes with the engine


def test_output_layer_lora_keeps_hf_or_is_refused_for_vllm(monkeypatch):
    """vLLM cannot serve a LoRA on lm_head (train_unembed, on by default as on Tinker): auto keeps
    hf and says why; an explicit vllm request is refused with the way out."""
    from tttd.policy import engines

    monkeypatch.setattr(engines, "vllm_installed", lambda: True)
    name, reason = engines.choose_engine("auto", full_finetune=False, model_path="/nonexistent",
                                         device="cuda", train_unembed=True)
    assert name == "hf" and "train_unembed=false" in reason
    with pytest.raises(ValueError, match="train_unembed=false"):
        engines.choose_engine("vllm", full_finetune=False, model_path="/nonexistent", device="cuda",
                              train_unembed=True)
    assert engines.choose_engine("vllm", full_finetune=False, model_path="/nonexistent",
                                 device="cuda", train_unembed=False)[0] == "vllm"
