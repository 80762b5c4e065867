"""Throughput and memory of the local policy backend: sampling tok/s, training tok/s, peak memory.

Usage:
    python benchmarks/policy_bench.py                      # tiny model on the CPU (< 1 minute)
    python benchmarks/policy_bench.py --model smollm2 --threads 1   # the real model beside tiny (minutes)
    python benchmarks/policy_bench.py --train-memory       # trainer peak memory, checkpointing off/on
    PYTHONPATH=. python benchmarks/policy_bench.py --train-memory --device cuda   # 0.5B and 8B shapes
    python benchmarks/policy_bench.py --engine vllm        # the same with the vLLM sampling engine
    python benchmarks/policy_bench.py --device cuda --random-init-shape qwen2-0.5b \\
        --batch 64 --new-tokens 512 --train-batch 8 --train-tokens 2048
    python benchmarks/policy_bench.py --model /path/to/hf-folder --device cuda

``--random-init-shape qwen2-0.5b`` builds a random-init model with Qwen2-0.5B's shape (vocab
151,936; 24 layers, hidden 896) from a config, without downloading anything; it reuses the tiny
model's tokenizer (the extra embedding rows are never sampled from in training, only in sampling)
and is saved once under the tttd cache. Peak memory: ``torch.cuda.max_memory_allocated`` on a
GPU, the process's max RSS (``ru_maxrss``) on a CPU (so it includes the Python process). Sampling
uses a real chat prompt at temperature 1 with eos disabled, so every sequence generates exactly
``--new-tokens`` tokens; training uses synthetic completions of ``--train-tokens`` random tokens with
random advantages (throughput does not depend on the values). Each figure is the best of
``--repeats`` timed runs after a warm-up.

``--model smollm2`` (a named real model, ``tttd models install smollm2``) measures at the goal's shape
(issue 33): sampling 64 sequences x 64 new tokens (one step of 8 groups x 8 samples, as one prompt
x 64) and training on exactly those 64 samples: one loop step, whose two parts give the sampling
and training rates (``--loop-only``, the default there: each part alone costs minutes on a CPU),
then the tiny model at the same shapes in the same run (``--compare``), and prints both side by
side. With ``--smoke`` the
tiny model stands in for the real one. On a busy machine pass ``--threads 1``: two torch threads
that share two cores with other work ran the sampler ~10x slower than one (measured, load ~12).

``--engine hf|vllm`` picks the sampling engine (:mod:`tttd.policy.engines`; the trainer is the same).
vLLM runs its engine in another process, so memory is also reported as a peak *sampled every 50 ms*
over the whole phase: the process tree's RSS on a CPU, the device's used memory (all processes,
``torch.cuda.mem_get_info``) on a GPU (``*_sampled_peak_gb``). The train step of the vllm engine
includes putting vLLM to sleep (one GPU) and publishing the new adapter. ``loop_step_s`` is one
full policy step: sample ``--batch`` completions, then one train step on exactly those samples
(random advantages); the task's evaluation is not included (it depends on the task).

GPU, one command per engine (no download; random-init weights):
    PYTHONPATH=. python benchmarks/policy_bench.py --device cuda --random-init-shape qwen2-0.5b \
        --engine vllm --batch 256 --new-tokens 512 --train-batch 8 --train-tokens 2048
    PYTHONPATH=. python benchmarks/policy_bench.py --device cuda --random-init-shape qwen3-8b-like \
        --engine vllm --batch 64 --new-tokens 512 --train-batch 8 --train-tokens 2048
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

SHAPES = {
    "qwen2-0.5b": dict(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, head_dim=64, tie_word_embeddings=True,
        max_position_embeddings=32768, rope_theta=1_000_000.0,
    ),
    "qwen3-8b-like": dict(
        vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, tie_word_embeddings=False,
        max_position_embeddings=32768, rope_theta=1_000_000.0,
    ),
}


def random_init_model(shape: str, progress: bool = True) -> Path:
    """A random-init model folder of a known shape, with the tiny tokenizer (cached)."""
    import shutil

    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    from tttd.policy.tiny import IM_END, PAD_TOKEN, build_tiny_model, cache_root

    if shape not in SHAPES:
        raise SystemExit(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    target = cache_root() / "models" / f"random-{shape}"
    if (target / "config.json").exists():
        return target
    tiny = build_tiny_model("tiny", progress=progress)
    tok = AutoTokenizer.from_pretrained(tiny, local_files_only=True)
    config = Qwen2Config(
        **SHAPES[shape], eos_token_id=tok.convert_tokens_to_ids(IM_END),
        pad_token_id=tok.convert_tokens_to_ids(PAD_TOKEN), bos_token_id=None,
    )
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    GenerationConfig(eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id).save_pretrained(tmp)
    tmp.rename(target)
    return target


def peak_memory_gb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform != "darwin" else rss / 2**30  # KiB on Linux, bytes on macOS


def shape_folder(shape: str) -> Path:
    """A model folder with a shape's config and the tiny tokenizer, but no weights (cached):
    :func:`train_memory` builds the random weights directly on the device."""
    from transformers import AutoTokenizer, Qwen2Config

    from tttd.policy.tiny import IM_END, PAD_TOKEN, build_tiny_model, cache_root

    target = cache_root() / "models" / f"shape-{shape}"
    if (target / "config.json").exists():
        return target
    tiny = build_tiny_model("tiny", pretrain_steps=0, progress=False)  # tokenizer only matters
    tok = AutoTokenizer.from_pretrained(tiny, local_files_only=True)
    config = Qwen2Config(**SHAPES[shape], eos_token_id=tok.convert_tokens_to_ids(IM_END),
                         pad_token_id=tok.convert_tokens_to_ids(PAD_TOKEN), bos_token_id=None)
    tmp = target.with_name(target.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(target)
    return target


def train_memory_one(model: str, device: str, checkpointing: bool, completion: int, lora_rank: int) -> dict:
    """Peak memory of one LoRA train step on one ``completion``-token completion (random ids).

    On CUDA, a ``shape-*`` folder's random weights are built on the GPU in bf16 (no CPU init,
    no weights on disk). Reports the bytes saved for backward (saved-tensor hooks; exact, any
    device) and the peak: ``torch.cuda.max_memory_allocated`` on CUDA, the process's max RSS on
    a CPU (run one configuration per process for that figure to mean anything)."""
    import gc
    from unittest import mock

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from tttd.policy import TrainConfig
    from tttd.policy.local import LocalPolicy
    from tttd.types import TrainDatum

    real_from_pretrained = AutoModelForCausalLM.from_pretrained

    def from_config_on_device(path, dtype=None, **kwargs):
        if not Path(path, "config.json").exists() or list(Path(path).glob("*.safetensors")):
            return real_from_pretrained(path, dtype=dtype, **kwargs)
        config = AutoConfig.from_pretrained(path)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype or torch.float32)
        try:
            with torch.device(device):
                torch.manual_seed(0)
                return AutoModelForCausalLM.from_config(config)
        finally:
            torch.set_default_dtype(previous)

    t0 = time.perf_counter()
    with mock.patch.object(AutoModelForCausalLM, "from_pretrained", side_effect=from_config_on_device):
        policy = LocalPolicy(model, lora_rank=lora_rank, device=device, gradient_checkpointing=checkpointing,
                             micro_batch_tokens=completion + 512)
    build_s = time.perf_counter() - t0
    prompt_ids = policy.render([{"role": "user", "content": "Improve this construction."}])
    g = torch.Generator().manual_seed(0)
    vocab = min(policy.tokenizer.vocab_size, 4000)
    datum = TrainDatum(prompt_ids, torch.randint(10, vocab, (completion,), generator=g).tolist(),
                       [-8.0] * completion, [1.0] * completion)
    saved = 0

    def pack(t):
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() if cuda else 0
    t1 = time.perf_counter()
    result: dict = {"model": Path(model).name, "checkpointing": checkpointing, "completion_tokens": completion,
                    "prompt_tokens": len(prompt_ids), "lora_rank": lora_rank, "dtype": str(policy.dtype).replace("torch.", ""),
                    "parameters": sum(p.numel() for p in policy.model.parameters()),
                    "build_s": round(build_s, 1)}
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            policy.train_step([datum], TrainConfig(learning_rate=1e-6, micro_batch_tokens=completion + 512))
        if cuda:
            torch.cuda.synchronize()
        result.update(ok=True, step_s=round(time.perf_counter() - t1, 2),
                      saved_for_backward_gib=round(saved / 2**30, 3),
                      saved_kib_per_token_per_layer=round(saved / 1024 / (completion + len(prompt_ids))
                                                          / policy.model.config.num_hidden_layers, 1))
    except torch.OutOfMemoryError as exc:
        result.update(ok=False, error=f"out of memory: {str(exc).splitlines()[0][:200]}")
    if cuda:
        result.update(weights_gib=round(before / 2**30, 2), peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2),
                      peak_kind="cuda max_memory_allocated", device_name=torch.cuda.get_device_name())
    else:
        result.update(peak_gib=round(peak_memory_gb("cpu"), 3), peak_kind="process max RSS")
    policy.close()
    del policy
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


def train_memory(args) -> list[dict]:
    """--train-memory: each shape with checkpointing off, then on; one process per configuration
    on a CPU (max RSS is per process), all in this process on CUDA (peaks are reset per run)."""
    import subprocess

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    shapes = args.shapes.split(",") if args.shapes else (["qwen2-0.5b", "qwen3-8b-like"] if device.startswith("cuda") else ["tiny"])
    rows = []
    for shape in shapes:
        model = str(shape_folder(shape)) if shape in SHAPES else shape
        for ckpt in (False, True):
            if device.startswith("cuda"):
                row = train_memory_one(model, device, ckpt, args.completion_tokens, args.lora_rank)
            else:
                cmd = [sys.executable, __file__, "--train-memory-one", model, "--device", device,
                       "--completion-tokens", str(args.completion_tokens), "--lora-rank", str(args.lora_rank)]
                if ckpt:
                    cmd.append("--checkpointing")
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise SystemExit(proc.stderr[-2000:])
                row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["shape"] = shape
            rows.append(row)
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                extra = (f"saved for backward {row['saved_for_backward_gib']:.3f} GiB "
                         f"({row['saved_kib_per_token_per_layer']:.1f} KiB/token/layer), step {row['step_s']} s"
                         if row.get("ok") else row.get("error", ""))
                weights = f", weights+adapter {row['weights_gib']} GiB" if "weights_gib" in row else ""
                print(f"{shape:>14} checkpointing {'on ' if ckpt else 'off'}: peak {row['peak_gib']} GiB "
                      f"({row['peak_kind']}{weights}); {extra}", flush=True)
    return rows


class MemorySampler:
    """Peak memory of the whole process tree (CPU RSS) or of the device (GPU), polled."""

    def __init__(self, device: str, period: float = 0.05) -> None:
        self.device, self.period, self.peak = device, period, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _now(self) -> float:
        if self.device.startswith("cuda"):
            import torch

            free, total = torch.cuda.mem_get_info()
            return (total - free) / 2**30
        import psutil

        proc = psutil.Process()
        total = 0
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**30

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._now())
            self._stop.wait(self.period)

    def __enter__(self) -> "MemorySampler":
        self.peak = self._now()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._now())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="HF folder, hub name, tiny/small, or a named real model "
                    "(smollm2: the demo's shapes by default, side by side with tiny)")
    ap.add_argument("--compare", default=None, help="comma-separated models measured after --model in the same run, "
                    "at the same shapes (default: tiny when --model is a named real model)")
    ap.add_argument("--random-init-shape", choices=sorted(SHAPES), default=None)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--dtype", default=None, help="bf16 / fp32 (default: bf16 on cuda, fp32 on cpu)")
    ap.add_argument("--batch", type=int, default=None, help="sequences per sampling call (default 32; 64 for a named real model)")
    ap.add_argument("--new-tokens", type=int, default=None, help="max new tokens per sample (default 64)")
    ap.add_argument("--train-batch", type=int, default=None, help="sequences per train step (default 16; 64 for a named real model)")
    ap.add_argument("--train-tokens", type=int, default=None, help="completion tokens per sequence (default 256; 64 for a named real model)")
    ap.add_argument("--lora-rank", type=int, default=32)
    ap.add_argument("--full-finetune", action="store_true")
    ap.add_argument("--micro-batch-tokens", type=int, default=None, help="default: the model's own (1024 for smollm2), else 8192")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats after one warm-up (default 2; 1 for a named real model)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--loop-only", action="store_true", default=None,
                    help="measure one loop step only and take the sampling and training rates from its two parts "
                         "(the default for a named real model: each part costs minutes on a CPU)")
    ap.add_argument("--engine", choices=["hf", "vllm"], default="hf", help="sampling engine")
    ap.add_argument("--engine-option", action="append", metavar="KEY=VALUE", default=[],
                    help="vLLM setting, e.g. gpu_memory_utilization=0.5 (JSON values)")
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    ap.add_argument("--train-memory", action="store_true",
                    help="peak memory of one train step on one --completion-tokens completion, checkpointing off/on")
    ap.add_argument("--shapes", default=None, help="--train-memory: comma-separated shapes or model folders "
                    "(default: qwen2-0.5b,qwen3-8b-like on cuda, tiny on cpu)")
    ap.add_argument("--completion-tokens", type=int, default=8192)
    ap.add_argument("--train-memory-one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the command runs (the tests use it); not a measurement")
    args = ap.parse_args(argv)
    # a named real model (smollm2) defaults to the goal's shape: one step of 8 x 8 samples of 64 new
    # tokens and its train step (the tiny model keeps the shapes of the figures in docs/backends.md)
    real_shapes = args.random_init_shape is None and args.model in named_models()
    defaults = dict(batch=64, new_tokens=64, train_batch=64, train_tokens=64, repeats=1, loop_only=True) \
        if real_shapes else dict(batch=32, new_tokens=64, train_batch=16, train_tokens=256, repeats=2, loop_only=False)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.smoke:
        args.batch, args.new_tokens, args.train_batch, args.train_tokens, args.repeats = 2, 4, 2, 8, 1
        args.completion_tokens, args.lora_rank = 64, 4
    if args.train_memory_one:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        model = args.train_memory_one
        if model in ("tiny", "small"):
            from tttd.policy.tiny import build_tiny_model

            model = str(build_tiny_model(model, pretrain_steps=0, progress=False))  # memory: weights irrelevant
        row = train_memory_one(model, args.device or "cpu", args.checkpointing, args.completion_tokens, args.lora_rank)
        print(json.dumps(row))
        return row
    if args.train_memory:
        return {"rows": train_memory(args)}

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    real = args.random_init_shape is None and args.model in named_models()
    compare = [m for m in (args.compare.split(",") if args.compare else (["tiny"] if real else [])) if m]
    if args.smoke and real:  # the smoke check must not need the real model: tiny stands in for it
        print(f"smoke: the tiny model stands in for {args.model} (a check that the command runs)", flush=True)
        args.model = "tiny"
    results = [measure(args, args.model, random_shape=args.random_init_shape)]
    for other in compare:
        results.append(measure(args, other))
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else {"results": results}))
    else:
        for r in results:
            print_result(r)
        if len(results) > 1:
            print_side_by_side(results)
    return results[0] if len(results) == 1 else {"results": results}


def named_models() -> list[str]:
    from tttd.policy.models import NAMED

    return list(NAMED)


def measure(args, model_name: str, random_shape: str | None = None) -> dict:
    """Load ``model_name`` and measure sampling, training and one loop step at ``args``' shapes."""
    import torch

    from tttd.policy import SamplingParams, TrainConfig
    from tttd.policy.local import LocalPolicy
    from tttd.types import TrainDatum

    model = str(random_init_model(random_shape)) if random_shape else model_name
    t0 = time.perf_counter()
    engine_options = {}
    backend_extra = {}
    if args.engine == "vllm":  # vLLM serves LoRA on the attention/MLP layers only (tttd.policy.engines)
        backend_extra["train_unembed"] = False
    for item in args.engine_option:
        key, _, raw = item.partition("=")
        try:
            engine_options[key] = json.loads(raw)
        except json.JSONDecodeError:
            engine_options[key] = raw
    policy = LocalPolicy(
        model, lora_rank=args.lora_rank, full_finetune=args.full_finetune, device=args.device,
        dtype=args.dtype, max_batch_size=args.batch, micro_batch_tokens=args.micro_batch_tokens,
        engine=args.engine, engine_options=engine_options or None, **backend_extra,
    )
    load_s = time.perf_counter() - t0
    device = policy.device.type
    prompt = [{"role": "user", "content": "Write a list of numbers, then improve it."}]
    # sampling: forbid early stops so every sequence generates exactly --new-tokens tokens
    policy.eos_ids = [policy.model.config.vocab_size + 1]  # an id that is never sampled
    if args.engine == "vllm":
        policy.engine.ignore_eos = True
    params = SamplingParams(max_tokens=args.new_tokens, seed=0)
    policy.sample([prompt], min(args.batch, 4), SamplingParams(max_tokens=4, seed=0))  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    sample_rates = []
    loop_only = args.loop_only
    with MemorySampler(device) as sample_mem:
        for _ in range(0 if loop_only else args.repeats):
            t = time.perf_counter()
            out = policy.sample([prompt], args.batch, params)
            dt = time.perf_counter() - t
            sample_rates.append(sum(len(s.tokens) for s in out[0]) / dt)
    sample_peak = peak_memory_gb(device)

    g = torch.Generator().manual_seed(0)
    vocab = min(policy.tokenizer.vocab_size, 4000)
    prompt_ids = policy.render(prompt)
    batch = [
        TrainDatum(
            prompt_tokens=prompt_ids,
            tokens=torch.randint(10, vocab, (args.train_tokens,), generator=g).tolist(),
            logprobs=[-8.0] * args.train_tokens,
            advantages=[float(a) for a in torch.randn(1, generator=g).repeat(args.train_tokens)],
        )
        for _ in range(args.train_batch)
    ]
    cfg = TrainConfig(learning_rate=1e-6, **({} if args.micro_batch_tokens is None else
                                             {"micro_batch_tokens": args.micro_batch_tokens}))
    if not loop_only:
        policy.train_step(batch, cfg)  # warm-up (optimizer state allocation)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    train_rates, step_s = [], []
    with MemorySampler(device) as train_mem:
        for _ in range(0 if loop_only else args.repeats):
            t = time.perf_counter()
            policy.train_step(batch, cfg)
            if device == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t
            step_s.append(dt)
            train_rates.append(sum(len(d.prompt_tokens) + len(d.tokens) for d in batch) / dt)
    train_peak = peak_memory_gb(device)
    engine_timings = dict(getattr(policy.engine, "timings", {}))

    # one full policy step: sample --batch completions, train on exactly those samples
    loop_s = []
    with MemorySampler(device) as loop_mem:
        for r in range(args.repeats):
            t = time.perf_counter()
            got = policy.sample([prompt], args.batch, SamplingParams(max_tokens=args.new_tokens, seed=100 + r))
            sampled_s = time.perf_counter() - t
            advs = torch.randn(len(got[0]), generator=g).tolist()
            step_batch = [TrainDatum(s.prompt_tokens, s.tokens, s.logprobs, [a] * len(s.tokens))
                          for s, a in zip(got[0], advs)]
            t_train = time.perf_counter()
            policy.train_step(step_batch, cfg)
            if device == "cuda":
                torch.cuda.synchronize()
            loop_s.append(time.perf_counter() - t)
            if loop_only:  # the rates come from the loop step's own two parts
                trained_s = time.perf_counter() - t_train
                sample_rates.append(sum(len(x.tokens) for x in got[0]) / sampled_s)
                step_s.append(trained_s)
                train_rates.append(sum(len(d.prompt_tokens) + len(d.tokens) for d in step_batch) / trained_s)
    if loop_only:
        sample_peak = train_peak = peak_memory_gb(device)
        sample_mem.peak = train_mem.peak = loop_mem.peak
    n_params = sum(p.numel() for p in policy.model.parameters())
    n_trainable = sum(p.numel() for p in policy.params)
    result = {
        "engine": args.engine,
        "engine_versions": policy.engine_info().get("versions", {}),
        "model": random_shape or model_name,
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "device": torch.cuda.get_device_name() if device == "cuda" else f"cpu x{torch.get_num_threads()}",
        "dtype": str(policy.dtype).replace("torch.", ""),
        "parameters": n_params,
        "trainable_parameters": n_trainable,
        "load_s": round(load_s, 2),
        "sample_batch": args.batch,
        "new_tokens": args.new_tokens,
        "sample_tok_s": round(max(sample_rates), 1),
        "sample_peak_gb": round(sample_peak, 3),
        "train_batch": args.train_batch,
        "train_tokens": args.train_tokens,
        "train_tok_s": round(max(train_rates), 1),
        "train_step_s": round(min(step_s), 3),
        "train_peak_gb": round(train_peak, 3),
        "peak_kind": "cuda max_memory_allocated" if device == "cuda" else "process max RSS",
        "sample_sampled_peak_gb": round(sample_mem.peak, 3),
        "train_sampled_peak_gb": round(train_mem.peak, 3),
        "loop_step_s": round(min(loop_s), 3),
        "loop_sampled_peak_gb": round(loop_mem.peak, 3),
        "sampled_peak_kind": "device used memory, all processes" if device == "cuda"
                             else "process tree RSS",
        "engine_timings_s": {k: round(v, 3) for k, v in engine_timings.items()},
    }
    result["prompt_tokens"] = len(prompt_ids)
    result["lora"] = "full" if args.full_finetune else f"LoRA r{args.lora_rank}"
    policy.close()  # first: vLLM logs its shutdown on stdout, the figures come last
    return result


def print_result(result: dict) -> None:
    print(f"engine {result['engine']} {result['engine_versions']}")
    print(f"model {result['model']} ({result['parameters']:,} parameters, {result['trainable_parameters']:,} trainable, "
          f"{result['dtype']}) on {result['device']}, load average {result['load_avg_1min']}")
    print(f"  sampling: {result['sample_tok_s']:,.0f} tok/s  (batch {result['sample_batch']} x {result['new_tokens']} new tokens)"
          f"  peak {result['sample_peak_gb']:.2f} GB")
    print(f"  training: {result['train_tok_s']:,.0f} tok/s  ({result['train_batch']} x ~{result['train_tokens'] + result['prompt_tokens']} tokens,"
          f" {result['train_step_s']:.2f} s/step, {result['lora']})"
          f"  peak {result['train_peak_gb']:.2f} GB ({result['peak_kind']})")
    print(f"  polled peaks ({result['sampled_peak_kind']}): sampling {result['sample_sampled_peak_gb']:.2f} GB,"
          f" training {result['train_sampled_peak_gb']:.2f} GB, loop step {result['loop_sampled_peak_gb']:.2f} GB")
    print(f"  one loop step (sample {result['sample_batch']} + train on them): {result['loop_step_s']:.2f} s"
          + (f"  engine {result['engine_timings_s']}" if result['engine_timings_s'] else ""), flush=True)


def print_side_by_side(results: list[dict]) -> None:
    """The models of one run in columns (the same shapes, the same machine, one after another)."""
    rows = [("parameters", lambda r: f"{r['parameters']:,}"),
            ("load (s)", lambda r: f"{r['load_s']:.1f}"),
            ("sampling tok/s", lambda r: f"{r['sample_tok_s']:,.1f}"),
            ("training tok/s", lambda r: f"{r['train_tok_s']:,.1f}"),
            ("train step (s)", lambda r: f"{r['train_step_s']:.2f}"),
            ("loop step (s)", lambda r: f"{r['loop_step_s']:.2f}"),
            ("peak RSS (GB)", lambda r: f"{max(r['sample_sampled_peak_gb'], r['train_sampled_peak_gb'], r['loop_sampled_peak_gb']):.2f}"),
            ("load average", lambda r: f"{r['load_avg_1min']}")]
    r0 = results[0]
    print(f"side by side (sampling {r0['sample_batch']} x {r0['new_tokens']} new tokens; training "
          f"{r0['train_batch']} x ~{r0['train_tokens'] + r0['prompt_tokens']} tokens; loop step = sample "
          f"{r0['sample_batch']} + train on them; {r0['device']}):")
    width = max(12, *(len(r["model"]) for r in results))
    print(f"  {'':<16}" + "".join(f"{r['model']:>{width + 2}}" for r in results))
    for name, cell in rows:
        print(f"  {name:<16}" + "".join(f"{cell(r):>{width + 2}}" for r in results))


if __name__ == "__main__":
    main()
