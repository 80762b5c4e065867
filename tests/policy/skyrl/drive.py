"""Drive tttd's tinker backend against a live SkyRL Tinker-compatible server on the CPU.

Run with the server's virtual environment's python (tinker SDK 0.24.1) and PYTHONPATH at the
repository; prints one JSON object of measurements as its last line (the pytest side in
``tests/policy/test_tinker_skyrl.py`` checks them). Builds a tiny random Qwen3 (2 layers, hidden
64) with a locally trained tokenizer, starts the server (``launch.py``), then: samples with
log-probs (per-group seeds), trains with the importance-sampling loss (+ KL to the base model),
saves every 2nd step on the service, and resumes in a fresh policy from the saved state.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_model(folder: Path) -> None:
    """A tiny random Qwen3 with a byte-level BPE tokenizer (ChatML template), built offline.
    The tokenizer's eos is <|endoftext|> (as Qwen base models): stopping at <|im_end|> is the
    backend's end-of-turn handling."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["def main():\n    return 42\n", "user assistant system hello world 0123456789"] * 50, trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    hf.chat_template = CHAT_TEMPLATE
    hf.save_pretrained(folder)
    torch.manual_seed(0)
    cfg = Qwen3Config(vocab_size=len(hf), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
                      tie_word_embeddings=False, eos_token_id=hf.eos_token_id, pad_token_id=hf.pad_token_id,
                      bos_token_id=None)
    Qwen3ForCausalLM(cfg).save_pretrained(folder)


def forced_answer_checks(model_dir: Path, work: Path, common: dict) -> dict:
    """Issue 20: the forced final answer on the tinker backend. The tokenizer gets a chat template
    with Harmony-style analysis/final channels (plain-text markers); the context is sized so that
    phase 2 has 12 tokens of room."""
    import shutil

    from tttd.policy import SamplingParams, TrainConfig
    from tttd.policy import tinker as tp
    from tttd.policy.forced_answer import HARMONY, OUT_OF_THINKING
    from tttd.types import TrainDatum

    sys.path.insert(0, str(HERE.parents[2]))
    from tests.policy.forced_answer_checks import ANALYSIS_TEMPLATE

    tok_dir = work / "harmony-tokenizer"
    shutil.copytree(model_dir, tok_dir, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    tok.chat_template = ANALYSIS_TEMPLATE
    tok.save_pretrained(str(tok_dir))
    prompt = [{"role": "user", "content": "hello world"}]
    budget = 6
    probe = tp.TinkerPolicy(str(model_dir), **{**common, "tokenizer": str(tok_dir)})
    n_prompt = len(probe.render(prompt))
    added = list(probe.tokenizer.encode(OUT_OF_THINKING + HARMONY.close + HARMONY.header, add_special_tokens=False))
    probe.close()
    context = n_prompt + budget + len(added) + 50 + 12
    pol = tp.TinkerPolicy(str(model_dir), **{**common, "tokenizer": str(tok_dir), "context_window": context})
    plain = pol.sample([prompt], 3, SamplingParams(max_tokens=budget, seeds=[21]))[0]
    forced = pol.sample([prompt], 3, SamplingParams(max_tokens=budget, seeds=[21], forced_answer=True))[0]
    res: dict = {"fa_added_tokens": len(added), "fa_continued": 0, "fa_phase1_same": True, "fa_layout_ok": True,
                 "fa_phase2_logprob_gap": 0.0, "fa_phase2_lengths": []}
    from tinker import types

    for a, b in zip(plain, forced):
        res["fa_phase1_same"] &= b.tokens[:len(a.tokens)] == a.tokens
        if a.stop_reason != "length":
            res["fa_layout_ok"] &= b.tokens == a.tokens and b.mask is None
            continue
        res["fa_continued"] += 1
        n1, k = len(a.tokens), len(added)
        n2 = len(b.tokens) - n1 - k
        res["fa_phase2_lengths"].append(n2)
        res["fa_layout_ok"] &= (b.tokens[n1:n1 + k] == added and b.mask == [1.0] * n1 + [0.0] * k + [1.0] * n2
                                and b.logprobs[n1:n1 + k] == [0.0] * k and 1 <= n2 <= 12)
        lps = pol._get_sampler().compute_logprobs(types.ModelInput.from_ints(b.prompt_tokens + b.tokens)).result()
        tail = [float(x) for x in list(lps)[-len(b.tokens):]]
        gap = max(abs(x - y) for x, y, m in zip(b.logprobs, tail, b.mask) if m)
        res["fa_phase2_logprob_gap"] = max(res["fa_phase2_logprob_gap"], gap)
    batch = [TrainDatum.from_sample(s, 1.0) for s in forced]
    m = pol.train_step(batch, TrainConfig(learning_rate=0.02, kl_coef=0.1))
    res["fa_train_tokens"] = m["tokens"]
    res["fa_kl_finite"] = math.isfinite(m["kl_policy_base"])
    pol.close()
    return res


def loop_spend_checks(model_dir: Path, work: Path, common: dict) -> dict:
    """Issue 32: a 2-step loop run through the server (KL on; the digit-fraction task's rewards vary,
    so steps train): the run's ledger is the backend's own usage, KL-reference requests included."""
    from tttd.config import resolve_config
    from tttd.loop import Discovery
    from tttd.policy import tinker as tp

    task = str(HERE.parents[1] / "digit_fraction_task.py")
    cfg = resolve_config(flag_values=dict(task=task, steps=2, groups=1, group_size=4, max_tokens=12, kl_coef=0.1,
                                          learning_rate=0.02, seed=3, backend="tinker", model=str(model_dir)))
    pol = tp.TinkerPolicy(str(model_dir), **common)
    run = Discovery(cfg, work / "loop-run", policy=pol)
    run.start()
    run.run()
    led, used = run.ledger, pol.usage()
    pol.close()
    keys = ("prompt_tokens", "sampled_tokens", "trained_tokens", "requests")
    return {"loop_ledger": {k: getattr(led, k) for k in keys}, "loop_usage": {k: getattr(used, k) for k in keys},
            "loop_trained_steps": sum(1 for line in (work / "loop-run" / "metrics.jsonl").read_text().splitlines()
                                      if json.loads(line)["trained"])}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} not up within {timeout_s} s")


def main() -> None:
    from tttd.policy import SamplingParams, TrainConfig
    from tttd.policy import tinker as tp
    from tttd.rundir import POLICY_INCOMPLETE
    from tttd.types import TrainDatum

    work = Path(tempfile.mkdtemp(prefix="tttd-skyrl-"))
    model_dir = work / "tiny-qwen3"
    build_model(model_dir)
    port = free_port()
    log = open(work / "server.log", "w")
    cmd = [sys.executable, str(HERE / "launch.py"), "api", "--host", "127.0.0.1", "--port", str(port),
           "--base-model", str(model_dir), "--backend", "jax",
           "--backend-config", json.dumps({"max_lora_adapters": 8, "max_lora_rank": 8}),
           "--database-url", f"sqlite:///{work / 'db.sqlite'}", "--checkpoints-base", str(work / "ckpts")]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    out: dict = {}
    t_start = time.monotonic()
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_http(f"{base_url}/api/v1/healthz", server, 120)
        out["server_up_s"] = round(time.monotonic() - t_start, 1)
        common = dict(base_url=base_url, api_key="tml-local-skyrl", lora_rank=8, seed=3,
                      tokenizer=str(model_dir), connect_timeout_s=60, setup_timeout_s=300,
                      request_timeout_s=300, save_every=2, context_window=512)
        pol = tp.TinkerPolicy(str(model_dir), **common)
        prompt = [{"role": "user", "content": "hello world"}]
        # the same prompt twice, one seed per group: the groups must differ
        t0 = time.monotonic()
        groups = pol.sample([prompt, prompt], 2, SamplingParams(max_tokens=12, seeds=[11, 12]))
        out["first_sample_s"] = round(time.monotonic() - t0, 1)
        out["logprobs_aligned"] = all(len(s.tokens) == len(s.logprobs) > 0 for g in groups for s in g)
        out["groups_distinct"] = [s.tokens for s in groups[0]] != [s.tokens for s in groups[1]]
        again = pol.sample([prompt], 2, SamplingParams(max_tokens=12, seeds=[11]))
        out["seed_repeats"] = [s.tokens for s in again[0]] == [s.tokens for s in groups[0]]
        out["prompt_len"] = len(groups[0][0].prompt_tokens)
        out["budget_clamped"] = pol.max_new_tokens(10_000, out["prompt_len"])
        im_end = pol.tokenizer.convert_tokens_to_ids("<|im_end|>")
        out["stop_ids_have_im_end"] = im_end in tp.stop_token_ids(pol.tokenizer)

        # +1 advantage on the first group's completions: they must become more likely
        target = groups[0]
        batch = [TrainDatum(s.prompt_tokens, s.tokens, s.logprobs, [1.0] * len(s.tokens)) for s in target]

        def seq_logprob(policy) -> float:
            from tinker import types

            total = 0.0
            for s in target:
                lps = policy._get_sampler().compute_logprobs(
                    types.ModelInput.from_ints(s.prompt_tokens + s.tokens)).result()
                total += sum(float(x) for x in list(lps)[-len(s.tokens):])
            return total

        before = seq_logprob(pol)
        out["sampler_vs_sample_logprob_gap"] = abs(before - sum(sum(s.logprobs) for s in target))
        m1 = pol.train_step(batch, TrainConfig(learning_rate=0.02, kl_coef=0.1))
        out["kl_policy_base_finite"] = math.isfinite(m1["kl_policy_base"])
        out["kl_sample_train_v1"] = m1.get("kl_sample_train_v1")
        save1 = work / "step0" / "policy"
        pol.save(str(save1))
        out["first_save_incomplete"] = (save1 / POLICY_INCOMPLETE).exists()
        pol.train_step(batch, TrainConfig(learning_rate=0.02))
        after = seq_logprob(pol)
        out["logprob_before_after"] = [before, after]
        save2 = work / "step1" / "policy"
        pol.save(str(save2))
        out["second_save_complete"] = not (save2 / POLICY_INCOMPLETE).exists()
        state = json.loads((save2 / tp.STATE_FILE).read_text())
        out["saved_path"] = state["tinker_path"]
        next_draws = [pol._rng.random() for _ in range(3)]

        # resume in a fresh policy: weights, optimizer, step and RNG come back
        pol2 = tp.TinkerPolicy(str(model_dir), **common)
        out["resume_created_no_client_before_load"] = pol2._training is None
        pol2.load(str(save2))
        out["resumed_step"] = pol2._step
        out["resumed_rng_same"] = [pol2._rng.random() for _ in range(3)] == next_draws
        restored = seq_logprob(pol2)
        out["restored_logprob"] = restored
        m3 = pol2.train_step(batch, TrainConfig(learning_rate=0.02))
        out["train_after_resume_tokens"] = m3["tokens"]
        try:
            pol.load(str(save1))
            out["incomplete_load_refused"] = False
        except ValueError:
            out["incomplete_load_refused"] = True
        out.update(forced_answer_checks(model_dir, work, common))
        out.update(loop_spend_checks(model_dir, work, common))
        pol.close()
        pol2.close()
    finally:
        out["wall_s"] = round(time.monotonic() - t_start, 1)
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
        log.close()
        out["server_log_tail"] = (work / "server.log").read_text()[-1500:]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
